"""Every variant through the verify gate on the public series of ``benchmarks/classical.py`` (issue 30).

    python benchmarks/gates.py [--json benchmarks/gates_results.json] [--markdown benchmarks/gates.md]

For each series: ``edgernn.train`` with its defaults and ``seed=0`` (as the classical table), ``edgernn.export``
of all seven variants with the gate on (the held-out test split, every installed interpreter and TFLM), and
each variant's verdict, NRMSE against the float model and clipped share. Exit 1 when any variant fails.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import edgernn  # noqa: E402
from classical import CASES, EDGERNN  # noqa: E402


def gate_case(case, scratch: Path) -> dict:
    values = case.load()
    names = EDGERNN.get(case.name)
    data = scratch / f"{case.name}.csv"
    np.savetxt(data, values if names else values[:, None], delimiter=",", header=",".join(names or ["value"]),
               comments="", fmt="%.10g")
    started = time.perf_counter()
    options = {"columns": names, "targets": [names[0]]} if names else {}
    trained = edgernn.train(str(data), scratch / f"{case.name}.keras", seed=0, quiet=True, **options)
    result = edgernn.export(trained.model_path, scratch / f"{case.name}-bundle", quiet=True)
    rows = [{"variant": r.variant, "backend": r.backend,
             "result": "SKIP" if r.skipped else "PASS" if r.passed else "FAIL",
             "nrmse_pct": r.vs_float.get("nrmse_pct"), "clipped_pct": r.clipped_pct, "reasons": r.reasons,
             "coverage_0.9": r.coverage.get("0.9"), "coverage_points": r.coverage_points}
            for r in result.verify.variants]
    failed = [f"{r['variant']} on {r['backend']}" for r in rows if r["result"] == "FAIL"]
    print(f"  {case.name}: {len(rows)} rows, {'all pass' if not failed else 'FAIL: ' + ', '.join(failed)} "
          f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return {"series": case.name, "seasonal": trained.columns.lag > 1,
            "rows": rows, "failed": failed}


def markdown(results: list[dict]) -> str:
    lines = ["# Every variant through the verify gate on the public series", "",
             "`python benchmarks/gates.py --json benchmarks/gates_results.json --markdown benchmarks/gates.md`: "
             "each series of [classical.md](classical.md) trained with the defaults (seed 0), exported (all seven "
             "variants) and gated on its held-out test split on every interpreter here and TFLM (the gate holds the "
             "0.9 interval to 87-93 % of at least 400 test values; fewer are reported, not judged).", "",
             "| series | rows passed | worst int8 NRMSE % | most clipped % | 0.9 interval covers (test values) | "
             "failures |", "|---|---|---|---|---|---|"]
    for case in results:
        rows = [r for r in case["rows"] if r["result"] != "SKIP"]
        integer = [r["nrmse_pct"] for r in rows if "int8" in r["variant"]]
        reasons = sorted({re.sub(r"\d+(\.\d+)?% of", "N% of", reason.split(" (")[0])
                          for r in rows if r["result"] == "FAIL" for reason in r["reasons"]})
        covered = [r["coverage_0.9"] for r in rows if r.get("coverage_0.9") is not None]
        coverage = (f"{100 * min(covered):.1f}-{100 * max(covered):.1f} % ({rows[0]['coverage_points']})"
                    if covered else "- (no intervals)")
        lines.append(f"| {case['series']} | {sum(r['result'] == 'PASS' for r in rows)} of {len(rows)} | "
                     f"{max(integer):.3f} | {max(r['clipped_pct'] for r in rows):.2f} | {coverage} | "
                     f"{'; '.join(reasons) or '-'} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        results = [gate_case(case, Path(scratch)) for case in CASES]
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    if args.markdown:
        args.markdown.write_text(markdown(results))
    return 1 if any(r["failed"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
