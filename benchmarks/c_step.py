"""The one-stream step on the c backend against the raw LiteRT floor, per cell, 50 units (issue 31).

    python benchmarks/c_step.py [--steps 20000] [--json benchmarks/c_step_results.json] [--markdown benchmarks/c_step.md]

For SimpleRNN, GRU and LSTM (50 units, the default size; trained on the built-in sine for 2 epochs: the cost of
a step does not depend on how well it predicts), the tflite-float32 variant is stepped one value at a time:
by hand on LiteRT (set_tensor, invoke, get_tensor: the floor an interpreter allows, ``edgernn.bench``), through
``StreamingPredictor`` on LiteRT, and through ``StreamingPredictor`` on the c backend (the fused one-stream C
call). Each pair is interleaved call by call (``interleaved_medians``), so both see the same machine; the
ratios are what the issue judges. The c backend's predictions are checked against LiteRT's on the way.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgernn.bench import _inputs, _raw_step, interleaved_medians  # noqa: E402
from edgernn.runtime import StreamingPredictor  # noqa: E402

CELLS = ("simple_rnn", "gru", "lstm")
VARIANT = "tflite-float32"


def measure(bundle: Path, steps: int) -> dict:
    values = _inputs(steps)
    raw = _raw_step(bundle)
    litert = StreamingPredictor.load(bundle, VARIANT, backend="litert")
    c = StreamingPredictor.load(bundle, VARIANT, backend="c")
    check = values[:2000]
    difference = float(np.max(np.abs(c.run(check) - litert.run(check))))
    c.reset()
    litert.reset()
    floor, c_us = interleaved_medians(raw, c.step, values)
    floor_again, litert_us = interleaved_medians(_raw_step(bundle), litert.step, values)
    return {"raw_floor_us": floor, "c_us": c_us, "c_vs_floor": c_us / floor,
            "raw_floor_us_with_litert": floor_again, "litert_us": litert_us,
            "litert_vs_floor": litert_us / floor_again, "max_abs_difference_c_litert": difference}


def run(steps: int) -> list[dict]:
    import edgernn

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for cell in CELLS:
            trained = edgernn.train("sine", Path(tmp) / f"{cell}.keras", cell=cell, units=50, epochs=2, seed=0,
                                    baseline="none", season="none", quiet=True)
            bundle = edgernn.export(trained.model_path, Path(tmp) / cell, variants=VARIANT, quiet=True,
                                    verify=False).bundle
            row = {"cell": cell, "units": 50, **measure(bundle, steps)}
            print(f"  {cell}: c {row['c_us']:.2f} us, raw LiteRT floor {row['raw_floor_us']:.2f} us "
                  f"({row['c_vs_floor']:.2f}x); StreamingPredictor on litert {row['litert_us']:.2f} us", file=sys.stderr)
            rows.append(row)
    return rows


def markdown(rows: list[dict], steps: int) -> str:
    lines = ["# The one-stream step on the c backend against the raw LiteRT floor", "",
             f"`python benchmarks/c_step.py --steps {steps}`: 50-unit models, tflite-float32, one value at a time, "
             "medians of interleaved calls (µs).", "",
             "| cell | raw LiteRT floor | c backend (StreamingPredictor) | c / floor | litert (StreamingPredictor) | "
             "litert / floor | max abs difference c vs litert |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['cell']} | {r['raw_floor_us']:.2f} | {r['c_us']:.2f} | {r['c_vs_floor']:.2f}x | "
                     f"{r['litert_us']:.2f} | {r['litert_vs_floor']:.2f}x | {r['max_abs_difference_c_litert']:.1e} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    rows = run(args.steps)
    text = markdown(rows, args.steps)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"steps": args.steps, "rows": rows}, indent=1) + "\n")
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
