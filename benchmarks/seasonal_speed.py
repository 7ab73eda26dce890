"""What a season costs per step: one stream of a seasonal SimpleRNN(50) beside the same model without a season.

    python benchmarks/seasonal_speed.py [--period 168] [--steps 5000] [--json out.json]

Trains two streaming SimpleRNN(50) models on one synthetic series (a random weekly profile on a wandering level;
a few epochs: the speed does not depend on the fit), one differenced over the season (``season=[P]``), one
without, exports tflite-float32 and tflite-int8 of each, and calls both predictors' ``step`` in turn on each
value (``edgernn.bench.interleaved_medians``: the same moments of the machine for both). The issue's target: a
seasonal step at most 1.3x a plain one.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANTS = ("tflite-float32", "tflite-int8")


def series(period: int, n: int = 4000) -> np.ndarray:
    rng = np.random.default_rng(0)
    level = np.cumsum(rng.normal(0, 0.1, n))
    return 50 + np.tile(rng.normal(0, 2, period), n // period + 1)[:n] + level


def main() -> None:
    import edgernn
    from edgernn.bench import interleaved_medians
    from edgernn.runtime import StreamingPredictor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--period", type=int, default=168)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "series.npy"
        values = series(args.period)
        np.save(data, values)
        bundles = {}
        for kind, season in (("seasonal", [args.period]), ("plain", None)):
            trained = edgernn.train(str(data), Path(tmp) / f"{kind}.keras", season=season, epochs=3, quiet=True)
            assert (trained.columns is not None and trained.columns.lag == args.period) == (kind == "seasonal")
            bundles[kind] = edgernn.export(trained.model_path, Path(tmp) / kind, variants=",".join(VARIANTS),
                                           verify=False, quiet=True).bundle
        inputs = np.resize(values, args.steps).tolist()
        result = {"period": args.period, "steps": args.steps, "variants": {}}
        for variant in VARIANTS:
            seasonal = StreamingPredictor.load(bundles["seasonal"], variant).step
            plain = StreamingPredictor.load(bundles["plain"], variant).step
            seasonal_us, plain_us = interleaved_medians(seasonal, plain, inputs)
            result["variants"][variant] = {"seasonal_us": seasonal_us, "plain_us": plain_us,
                                           "ratio": seasonal_us / plain_us}
            print(f"{variant}: seasonal {seasonal_us:.2f} us, plain {plain_us:.2f} us per step: "
                  f"{seasonal_us / plain_us:.2f}x (target 1.3x)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
