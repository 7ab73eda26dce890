"""What a season costs per step: one stream of a seasonal SimpleRNN(50) beside the same model without a season.

    python benchmarks/seasonal_speed.py [--period 168] [--steps 5000] [--json out.json]

Trains three streaming SimpleRNN(50) models on one synthetic series (a random weekly profile on a wandering level;
a few epochs: the speed does not depend on the fit): one differenced over the season (``season=[P],
baseline="naive"``), one with Holt-Winters under it (``season=[P]``, when it wins on validation, as here), one
without a season; exports tflite-float32 and tflite-int8 of each, and calls a seasonal and the plain predictor's
``step`` in turn on each value (``edgernn.bench.measure.interleaved_medians``: the same moments of the machine for both).
The issue's target: a seasonal step at most 1.3x a plain one.
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
    from edgernn.bench.measure import interleaved_medians
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
        for kind, options in (("seasonal", {"season": [args.period], "baseline": "naive"}),
                              ("holt-winters", {"season": [args.period]}), ("plain", {"season": "none"})):
            trained = edgernn.train(str(data), Path(tmp) / f"{kind}.keras", epochs=3, quiet=True, **options)
            columns = trained.columns
            assert (columns.lag == args.period) == (kind != "plain")
            assert bool(columns.smoothed) == (kind == "holt-winters"), kind
            bundles[kind] = edgernn.export(trained.model_path, Path(tmp) / kind, variants=",".join(VARIANTS),
                                           verify=False, quiet=True).bundle
        inputs = np.resize(values, args.steps).tolist()
        result = {"period": args.period, "steps": args.steps, "variants": {}}
        for variant in VARIANTS:
            plain = StreamingPredictor.load(bundles["plain"], variant).step
            figures = result["variants"][variant] = {}
            for kind in ("seasonal", "holt-winters"):
                seasonal = StreamingPredictor.load(bundles[kind], variant).step
                seasonal_us, plain_us = interleaved_medians(seasonal, plain, inputs)
                figures[kind] = {"seasonal_us": seasonal_us, "plain_us": plain_us, "ratio": seasonal_us / plain_us}
                print(f"{variant}: {kind} {seasonal_us:.2f} us, plain {plain_us:.2f} us per step: "
                      f"{seasonal_us / plain_us:.2f}x (target 1.3x)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
