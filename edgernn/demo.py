"""``edgernn demo``: the whole pipeline on built-in data, in one command, inside one output directory.

Stages grow with the toolkit: train a streaming model on the built-in sine; export, verify and stream are
added as they land. Everything is written under ``out``; nothing outside it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

DEMO_UNITS = 50


def new_demo_dir(base: Path | None = None) -> Path:
    """``./edgernn-demo``, or ``-2``, ``-3``... so a demo never overwrites an earlier one."""
    base = base or Path.cwd()
    candidate = base / "edgernn-demo"
    n = 2
    while candidate.exists():
        candidate = base / f"edgernn-demo-{n}"
        n += 1
    return candidate


def _stage(name: str) -> float:
    print(f"== {name}", file=sys.stderr, flush=True)
    return time.perf_counter()


def run_demo(out: Path, cell: str = "simple_rnn", quick: bool = False) -> dict:
    """Run every stage; returns the summary the CLI prints. Raises on the first failing stage."""
    from edgernn.training import train

    out.mkdir(parents=True, exist_ok=False)
    started = _stage(f"train: streaming {cell} ({DEMO_UNITS} units) on the built-in sine")
    result = train("sine", out / "model.keras", cell=cell, units=DEMO_UNITS, epochs=15 if quick else 40,
                   lr=5e-3 if quick else 1e-3,
                   seed=0, quiet=False)
    return {
        "out": out,
        "model_path": result.model_path,
        "metrics": result.metrics,
        "train_seconds": time.perf_counter() - started,
    }
