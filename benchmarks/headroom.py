"""What ``export --headroom`` buys and costs: the integer variants' NRMSE vs float and clipped steps, per headroom.

    python benchmarks/headroom.py [--units 50] [--json out.json]

Two default-size SimpleRNN models trained by edgernn on 6,000 values:
- ``growing``: a sine whose amplitude grows by half over the series, so the test split (the last 15 %) goes
  beyond the training range, as real series do (a bigger sunspot cycle in the test years);
- ``steady``: the same sine at a constant amplitude: what headroom costs when the data stays in range.
Each is exported at headroom 0, 0.1, 0.25 and 0.5 (tflite-int8, tflite-int16x8) and verified on its held-out
test split (repeated forwards to 10,000 steps, state carried), against the float model.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HEADROOMS = (0.0, 0.1, 0.25, 0.5)
VARIANTS = "tflite-int8,tflite-int16x8"


def series(kind: str, points: int = 6000) -> np.ndarray:
    t = np.arange(points)
    amplitude = 1 + 0.5 * t / points if kind == "growing" else np.ones(points)
    return amplitude * np.sin(2 * np.pi * t / 40) + np.random.default_rng(0).normal(0, 0.03, points)


def main() -> None:
    import edgernn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=50)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for kind in ("growing", "steady"):
            np.save(root / f"{kind}.npy", series(kind))
            model = edgernn.train(data=str(root / f"{kind}.npy"), out=root / f"{kind}.keras", units=args.units,
                                  epochs=15, lr=0.005, difference="off", seed=0, quiet=True, force=True)
            for headroom in HEADROOMS:
                result = edgernn.export(model.model_path, root / f"{kind}-{headroom}", variants=VARIANTS,
                                        headroom=headroom, quiet=True)
                for row in result.verify.variants:
                    if row.backend == "tflm":
                        continue
                    rows.append({"series": kind, "headroom": headroom, "variant": row.variant,
                                 "nrmse_pct": row.vs_float["nrmse_pct"], "clipped_pct": row.clipped_pct,
                                 "out_of_range_pct": row.out_of_range_pct})
                    print(f"{kind:<8} headroom {headroom:<5g} {row.variant:<15} NRMSE vs float "
                          f"{row.vs_float['nrmse_pct']:6.3f} %  clipped {row.clipped_pct:5.1f} % of steps "
                          f"(outside the calibrated range {row.out_of_range_pct:.1f} %)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
