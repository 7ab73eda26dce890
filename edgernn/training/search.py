"""Choice by validation within a time budget: a few more network sizes and learning rates than the default.

The default model (50 units, learning rate 1e-3) is not the best for every series: a small table wants fewer
units, a long smooth series more. ``edgernn train --budget SECONDS`` fits the alternatives in ``CANDIDATES``, in
order, on the data the default model was kept on (its season and baseline), while the next fit is expected to end
within the budget (its time estimated from the fits so far, scaled by its units), and keeps the one with the
lowest validation RMSE. Test RMSE is reported once, for the kept model only; every fit has the same seed, so the
search is deterministic on one machine (its extent is not: it depends on the machine's speed).

Without ``--budget``, a short series is searched anyway (``auto_budget``): at most ``AUTO_ROWS`` training rows,
where each fit takes a second or two and the network's size matters most. Measured with the defaults on the
public series of ``benchmarks/classical.md`` (a 60 s search against none, test RMSE): sunspots 19.0 -> 15.3 (ARIMA
16.9), Nino 1+2 SST 0.579 -> 0.498, quarterly unemployment 0.400 (persistence's) -> 0.361; the longer series
(CO2, Beijing, Taylor: 1,599 to 6,132 training rows) 0-4 % lower for two to three times the training time, so
they, and the built-in sine (2,100), are searched only when asked.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass

DEFAULT_UNITS, DEFAULT_LR = 50, 1e-3  # the default model's size and learning rate: where a search starts
CANDIDATES = ((16, 3e-3), (100, 1e-3), (32, 1e-2), (50, 3e-3), (100, 3e-4))  # (units, learning rate) after the default
AUTO_ROWS = 1000  # a series with at most this many training rows is searched without being asked
AUTO_SECONDS = 30.0  # ... within this budget (the five candidates on 142-512 rows: 8-40 s here)


def auto_budget(training_rows: int, default_model: bool) -> float:
    """The budget when none is given: ``AUTO_SECONDS`` for a short series and the default model (streaming,
    default size and learning rate: a size the user chose is kept, and the classic window exercise stays as it
    is taught), else 0."""
    return AUTO_SECONDS if default_model and training_rows <= AUTO_ROWS else 0.0


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
