"""``edgernn demo``: the whole pipeline on built-in data, in one command, inside one output directory.

Train a streaming model on the built-in sine, export all seven variants, verify them against the float model,
and stream a few hundred values through ``StreamingPredictor`` on tflite-int8 as a device would. Everything is
written under ``out``; nothing outside it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from edgernn.runtime.cell_table import DEFAULT_CELL
from edgernn.runtime.variants import DEFAULT_VARIANT

DEMO_UNITS = 50


def new_demo_dir(base: Path | None = None) -> Path:
    """``./edgernn-demo``, or ``-2``, ``-3``... so a demo never overwrites an earlier one."""
    base = base or Path()  # relative: the summary names edgernn-demo/..., as the README shows it
    candidate = base / "edgernn-demo"
    n = 2
    while candidate.exists():
        candidate = base / f"edgernn-demo-{n}"
        n += 1
    return candidate


def _stage(name: str) -> float:
    print(f"== {name}", file=sys.stderr, flush=True)
    return time.perf_counter()


def run_demo(out: Path, cell: str = DEFAULT_CELL, quick: bool = False) -> dict:
    """Run every stage; returns the summary the CLI prints. Raises on the first failing stage."""
    from edgernn.training.tf_import import import_tensorflow
    from edgernn.training.trainer import train

    import_tensorflow()  # a missing TensorFlow is reported before anything is written
    out.mkdir(parents=True, exist_ok=False)
    started = _stage(f"train: streaming {cell} ({DEMO_UNITS} units) on the built-in sine")
    result = train("sine", out / "model.keras", cell=cell, units=DEMO_UNITS, epochs=15 if quick else 40,
                   lr=5e-3 if quick else 1e-3,
                   seed=0, quiet=False)
    train_seconds = time.perf_counter() - started

    from edgernn import export

    _stage("export: every variant, then verify's gate: each against the float model, state carried")
    exported = export(result.model_path, out / "bundle", verify_steps=2000 if quick else None, quiet=False)
    bundle, outcome = exported.bundle, exported.verify

    from edgernn.data.series import sine_series
    from edgernn.runtime import StreamingPredictor

    _stage(f"stream: 500 values through StreamingPredictor on {DEFAULT_VARIANT}")
    predictor = StreamingPredictor.load(bundle, DEFAULT_VARIANT)
    values = sine_series(600, seed=1)[100:]
    t0 = time.perf_counter()
    predictions = predictor.run(values)
    step_us = (time.perf_counter() - t0) / values.size * 1e6
    stream_rmse = float(np.sqrt(np.mean((predictions[:-1] - values[1:]) ** 2)))
    return {
        "out": out,
        "model_path": result.model_path,
        "bundle": bundle,
        "metrics": result.metrics,
        "train_seconds": train_seconds,
        "verify": outcome,
        "stream_step_us": step_us,
        "stream_rmse": stream_rmse,
    }
