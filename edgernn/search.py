"""Choice by validation within a time budget: a few more network sizes and learning rates than the default.

The default model (50 units, learning rate 1e-3) is not the best for every series: a small table wants fewer
units, a long smooth series more. ``edgernn train --budget SECONDS`` fits the alternatives in ``CANDIDATES``, in
order, on the data the default model was kept on (its season and baseline), while the next fit is expected to end
within the budget (its time estimated from the fits so far, scaled by its units), and keeps the one with the
lowest validation RMSE. Test RMSE is reported once, for the kept model only; every fit has the same seed, so the
search is deterministic on one machine (its extent is not: it depends on the machine's speed).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass

CANDIDATES = ((16, 3e-3), (100, 1e-3), (32, 1e-2), (50, 3e-3), (100, 3e-4))  # (units, learning rate) after the default


@dataclass(frozen=True)
class Tried:
    """One fitted candidate: what it was, its validation RMSE and how long it took."""

    units: int
    lr: float
    val_rmse: float
    seconds: float

    @property
    def label(self) -> str:
        return f"{self.units} units, lr {self.lr:g}"


def search(fit, prepared, model, metrics, seconds: float, budget: float, log):
    """``(fit, prepared, model, metrics, tried)``: the kept candidate (``fit`` carries its units and learning
    rate) and every one tried, the default first; ``seconds``: what the default's fit took."""
    tried = [Tried(fit.units, fit.lr, metrics["val_rmse"], seconds)]
    best = (fit, prepared, model, metrics)
    spent = seconds
    for units, lr in CANDIDATES:
        if (units, lr) == (fit.units, fit.lr):
            continue
        expected = spent / sum(t.units for t in tried) * units  # seconds grow about with the units
        if spent + expected > budget:
            log(f"search: stopped before {units} units, lr {lr:g} (about {expected:.0f} s more; budget {budget:g} s)")
            break
        candidate = dataclasses.replace(fit, units=units, lr=lr)
        attempt = copy.copy(prepared)  # judging sets the network's share in the columns: each gets its own
        start = time.monotonic()
        candidate_model, candidate_metrics = candidate(attempt)
        took = time.monotonic() - start
        spent += took
        tried.append(Tried(units, lr, candidate_metrics["val_rmse"], took))
        if candidate_metrics["val_rmse"] < best[3]["val_rmse"]:
            best = (candidate, attempt, candidate_model, candidate_metrics)
    return (*best, tried)


def table(tried: list[Tried], kept: Tried) -> list[str]:
    """The training log's table of candidates, the kept one marked."""
    lines = [f"  {'candidate':<22} {'validation RMSE':>15} {'seconds':>8}"]
    lines += [f"{'*' if t == kept else ' '} {t.label:<22} {t.val_rmse:>15.4g} {t.seconds:>8.1f}" for t in tried]
    return lines
