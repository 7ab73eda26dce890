"""Does reading several channels pay, and what does quantization cost a multivariate model?

    python benchmarks/multivariate.py [--epochs 40] [--json out.json]

For each series, a default-size model (SimpleRNN(50), streaming) of the target alone and one of every column,
trained the same way by ``edgernn train``; each reports its test RMSE beside persistence, and the multivariate
one is exported (all seven variants) and verified on its held-out test split against the float model:
- ``lagged``: the built-in synthetic table, a follower repeating a driver 3 steps late (target: follower);
- ``beijing``: hourly PM2.5 at the US Embassy in Beijing with the airport's dew point, temperature, pressure and
  cumulated wind speed, 2014 (``benchmarks/data/beijing_pm25_2014.csv``, from the UCI "Beijing PM2.5 Data" set,
  Liang et al. 2015, Proc. R. Soc. A 471: 20150257; CC BY 4.0), target: pm25, the next hour.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DATA = Path(__file__).resolve().parent / "data"
SERIES = {
    "lagged": dict(data="lagged", target="follower"),
    "beijing": dict(data=str(DATA / "beijing_pm25_2014.csv"), target="pm25", time_column="time"),
}


def main() -> None:
    import edgernn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--series", default=",".join(SERIES))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    found = {}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for name in args.series.split(","):
            spec = SERIES[name]
            common = dict(data=spec["data"], epochs=args.epochs, seed=0, quiet=True, force=True)
            if "time_column" in spec:
                common["time_column"] = spec["time_column"]
            alone = edgernn.train(out=root / f"{name}-alone.keras", column=spec["target"], **common)
            both = edgernn.train(out=root / f"{name}-all.keras", columns="all", targets=[spec["target"]], **common)
            result = edgernn.export(both.model_path, root / f"{name}-bundle", quiet=True)
            row = {"target alone": alone.metrics["test_rmse"], "every column": both.metrics["test_rmse"],
                   "persistence": both.metrics["persistence_rmse"],
                   "gain_pct": 100 * (1 - both.metrics["test_rmse"] / alone.metrics["test_rmse"]),
                   "variants": {f"{v.variant} on {v.backend}": {"nrmse_pct": v.vs_float["nrmse_pct"],
                                                                 "passed": v.passed, "reasons": v.reasons}
                                for v in result.verify.variants}}
            found[name] = row
            print(f"{name}: test RMSE, target alone {row['target alone']:.4g}, every column "
                  f"{row['every column']:.4g} ({row['gain_pct']:.0f} % lower), persistence {row['persistence']:.4g}")
            for label, figures in row["variants"].items():
                print(f"  {label:<28} NRMSE vs float {figures['nrmse_pct']:.3f} %  "
                      f"{'PASS' if figures['passed'] else 'FAIL: ' + '; '.join(figures['reasons'])}")
    if args.json:
        args.json.write_text(json.dumps(found, indent=2) + "\n")


if __name__ == "__main__":
    main()
