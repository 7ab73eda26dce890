"""What a row of F readings costs per step: ``edgernn bench`` on a streaming SimpleRNN(50) with F inputs.

    python benchmarks/multivariate_speed.py [--features 8] [--steps 5000] [--json out.json]

Trains (``edgernn train``, 50 units, a few epochs: the speed does not depend on the fit) on a table of F noisy
sines, exports tflite-float32 (the raw floor's variant) and tflite-int8, and runs ``edgernn.bench.measure.bench``: one
stream's ``step`` against the same .tflite driven by hand (interleaved step by step), and 256 streams of rows in
one predictor against 256 predictors. The issue's targets: step <= 1.3x the floor, 256 streams in one invoke.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def write_table(path: Path, features: int, rows: int = 2000) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(rows)
    table = np.stack([np.sin(t / (10 + 3 * i)) + 0.05 * rng.normal(size=rows) for i in range(features)], axis=1)
    header = ",".join(f"s{i}" for i in range(features))
    np.savetxt(path, table, delimiter=",", header=header, comments="", fmt="%.6f")


def main() -> None:
    import edgernn
    from edgernn.bench.measure import bench, format_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        write_table(root / "table.csv", args.features)
        trained = edgernn.train(root / "table.csv", root / "model.keras", columns="all", targets=["s0"], units=50,
                                epochs=20, seed=0, quiet=True, force=True)
        edgernn.export(trained.model_path, root / "bundle", variants="tflite-float32,tflite-int8", quiet=True,
                       verify=False)
        result = bench(root / "bundle", backends=["litert"], steps=args.steps, streams=256)
    print(format_table(result))
    if args.json:
        args.json.write_text(json.dumps({"features": args.features, **result.to_dict()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
