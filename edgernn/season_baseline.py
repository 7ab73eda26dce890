"""A season as the baseline under the network: seasonal differencing chosen on the validation split.

When "the same time one season ago" predicts a target better than "the latest value" on the validation split,
the target's column is differenced over that season: the model sees ``x[t] - x[t-P]`` and predicts the change
from the value one season before the predicted step, so its output is seasonal naive plus what the network
learned (the hybrid of M4's winner, Smyl 2018: the classical part carries the season, the network the rest).
An untrained network adds about nothing, so the model starts from the baseline instead of from zero; the int8
input and output scales cover the seasonal changes, not the level. The device keeps each stream's last P rows.
"""

from __future__ import annotations

import math

import numpy as np

from edgernn.data import Split
from edgernn.runtime.columns import InputColumn

MIN_TRAIN_SEASONS = 2  # a season is only considered when the training split holds at least this many of it


def naive_rmse(values: np.ndarray, split: Split, back: int) -> float:
    """Validation RMSE of predicting each value by the one ``back`` rows earlier (1: persistence)."""
    start = max(split.train_end, back)
    error = values[start: split.val_end] - values[start - back: split.val_end - back]
    return float(np.sqrt(np.mean(error ** 2))) if error.size else math.inf


def choose_season(values: np.ndarray, split: Split, seasons, horizon: int) -> tuple[int, str]:
    """The season to difference one column over (1: none), and why; ``seasons``: candidate periods in rows.

    A season wins when its seasonal naive beats persistence on the validation split; among several, the one
    with the lowest validation RMSE. A season must exceed the horizon (so each step has a value one season
    before it) and fit ``MIN_TRAIN_SEASONS`` times in the training split.
    """
    usable = [p for p in dict.fromkeys(seasons or ()) if p > horizon and p * MIN_TRAIN_SEASONS <= split.train_end]
    if not usable:
        return 1, ""
    persistence = naive_rmse(values, split, 1)
    scores = {p: naive_rmse(values, split, p) for p in usable}
    best = min(scores, key=scores.get)
    figures = ", ".join(f"season {p} {r:.4g}" for p, r in scores.items())
    if scores[best] < persistence:
        return best, (f"seasonal naive (season {best}) beats persistence on validation (RMSE {figures}; "
                      f"persistence {persistence:.4g})")
    return 1, f"no season beats persistence on validation (RMSE {figures}; persistence {persistence:.4g})"


def seasonal_changes(values: np.ndarray, period: int) -> np.ndarray:
    """``x[t] - x[t - period]`` for every ``t >= period``."""
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is checked by the caller, by name
        return values[period:] - values[:-period]


def seasonal_input(name: str, period: int, offset: float, divisor: float) -> InputColumn:
    """A column differenced over ``period`` rows, scaled by ``(offset, divisor)`` fitted on its training changes."""
    return InputColumn(name, True, offset, divisor, None, period)
