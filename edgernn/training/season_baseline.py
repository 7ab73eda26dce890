"""A season as the baseline under the network: seasonal differencing chosen on the validation split.

When "the same time one season ago" predicts a target better than "the latest value" on the validation split,
the target's column is differenced over that season: the model sees ``x[t] - x[t-P]`` and predicts the change
from the value one season before the predicted step, so its output is seasonal naive plus what the network
learned (the hybrid of M4's winner, Smyl 2018: the classical part carries the season, the network the rest).
An untrained network adds about nothing, so the model starts from the baseline instead of from zero; the int8
input and output scales cover the seasonal changes, not the level. The device keeps each stream's last P rows.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from edgernn.data.series import Split
from edgernn.runtime.columns import Columns, InputColumn, output_base
from edgernn.runtime.smoothing import Smoothing, forecasts
from edgernn.data.seasons import choose, seasonal_naive_rmse

MIN_TRAIN_SEASONS = 2  # a season is only considered when the training split holds at least this many of it
FIT_POINTS = 5000  # Holt-Winters' parameters are fitted on at most the training split's last this many values
# a season found (not given) reaches the model when, on validation, its seasonal naive forecast's RMSE is at most
# this share of persistence's, or the better of its two naive forecasts (``season_rmse``) at most the second
CLEAR_MARGINS = (0.9, 0.5)


def naive_rmse(values: np.ndarray, split: Split, back: int) -> float:
    """Validation RMSE of predicting each value by the one ``back`` rows earlier (1: persistence); inf when no
    validation value has one (the peers' ``seasonal_naive_rmse`` on the validation split)."""
    rmse = seasonal_naive_rmse(values, back, max(split.train_end, back), split.val_end)
    return rmse if math.isfinite(rmse) else math.inf


def season_rmse(values: np.ndarray, split: Split, period: int) -> float:
    """Validation RMSE of the better of the two naive forecasts a model differenced over ``period`` starts
    from: seasonal naive (``x[t+1-P]``) and the seasonal change carried on (``x[t] + x[t+1-P] - x[t-P]``)."""
    start = max(split.train_end, period + 1)
    t = np.arange(start, split.val_end)
    if not t.size:
        return math.inf
    carried = values[t] - (values[t - 1] + values[t - period] - values[t - period - 1])
    return min(naive_rmse(values, split, period), float(np.sqrt(np.mean(carried ** 2))))


def clear_seasons(values: np.ndarray, split: Split, spacing: float | None) -> list[int]:
    """The seasons found on the training split (``edgernn.data.seasons.choose``: autocorrelation peaks, the time
    column's spacing) that clearly beat persistence on validation (``CLEAR_MARGINS``).

    A season nobody named is offered to the model only when the data clearly repeats it: a weak season (the
    built-in sine's two periods, a cycle whose length varies: sunspots, El Nino) costs a second training and,
    measured, can lose on the test split; a clear one (half-hourly electricity demand: the week's change carried
    on has 0.2x persistence's error; a daily profile) is where the network alone loses to "the same time last
    week".
    """
    found, _ = choose(values, split.train_end, split.val_end, spacing)
    persistence = naive_rmse(values, split, 1)
    naive, either = CLEAR_MARGINS
    return [p for p in found if naive_rmse(values, split, p) <= naive * persistence
            or season_rmse(values, split, p) <= either * persistence]


def choose_season(values: np.ndarray, split: Split, seasons, horizon: int) -> tuple[int, str]:
    """The season to difference one column over (1: none), and why; ``seasons``: candidate periods in rows.

    A season wins when the better of its naive forecasts (``season_rmse``) beats persistence on the validation
    split; among several, the one with the lowest validation RMSE. A season must exceed the horizon (so each
    step has a value one season before it) and fit ``MIN_TRAIN_SEASONS`` times in the training split.
    """
    usable = [p for p in dict.fromkeys(seasons or ()) if p > horizon and p * MIN_TRAIN_SEASONS <= split.train_end]
    if not usable:
        return 1, ""
    persistence = naive_rmse(values, split, 1)
    scores = {p: season_rmse(values, split, p) for p in usable}
    best = min(scores, key=scores.get)
    figures = ", ".join(f"season {p} {r:.4g}" for p, r in scores.items())
    if scores[best] < persistence:
        return best, (f"season {best} beats persistence on validation (seasonal naive or its change carried "
                      f"on, RMSE {figures}; persistence {persistence:.4g})")
    return 1, f"no season beats persistence on validation (RMSE {figures}; persistence {persistence:.4g})"


def persistence_beats_the_mean(values: np.ndarray, split: Split) -> bool:
    """Whether "the latest value" predicts the validation split better than the training mean does: then the
    model's output is the change from the latest value (persistence as its baseline), whatever its inputs are,
    so a smooth series is never predicted worse than by repeating its last value because the network missed
    its level."""
    mean = float(np.mean(values[: split.train_end]))
    level = float(np.sqrt(np.mean((values[split.train_end: split.val_end] - mean) ** 2)))
    return naive_rmse(values, split, 1) < level


def seasonal_changes(values: np.ndarray, period: int) -> np.ndarray:
    """``x[t] - x[t - period]`` for every ``t >= period``."""
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is checked by the caller, by name
        return values[period:] - values[:-period]


def seasonal_input(name: str, period: int, offset: float, divisor: float) -> InputColumn:
    """A column differenced over ``period`` rows, scaled by ``(offset, divisor)`` fitted on its training changes."""
    return InputColumn(name, True, offset, divisor, None, period)


SHARE_RANGE = (0.0, 1.0)  # the network's share of a relative output: never amplified; 0 ships the baseline alone


def network_shares(predictions: np.ndarray, columns: Columns, values: np.ndarray, split: Split) -> list[float]:
    """Per output, the share of the network's change (prediction - baseline) that minimises the validation
    RMSE (least squares, clipped to ``SHARE_RANGE``; 1 for outputs that are not relative).

    The model's output is ``baseline + share * network``: a network that only adds noise to its baseline on
    validation is turned down towards the baseline, so the model is about as good as its baseline at worst.
    ``predictions``: the float model's ``[n, K*H]`` after each raw row of ``values`` (``predict_rows``)."""
    truth = columns.targets_of(values)
    shares = []
    for k, output in enumerate(columns.outputs):
        if not output.relative:
            shares.append(1.0)
            continue
        rows = np.arange(values.shape[0])
        base = output_base(values, output, columns.inputs)
        keep = ((rows + output.step >= split.train_end) & (rows + output.step < split.val_end)
                & np.isfinite(predictions[:, k]) & np.isfinite(truth[:, k]) & np.isfinite(base))
        network, wanted = predictions[keep, k] - base[keep], truth[keep, k] - base[keep]
        power = float(np.sum(network ** 2))
        share = float(np.sum(network * wanted)) / power if power > 0 else 1.0
        shares.append(float(np.clip(share, *SHARE_RANGE)) if math.isfinite(share) else 1.0)
    return shares


def with_shares(columns: Columns, shares: list[float]) -> Columns:
    """``columns`` whose relative outputs carry the network's share in their scale (``share * (y * divisor +
    offset)``): the exported model, the device and every variant compute the blended output unchanged."""
    outputs = tuple(c if share == 1.0 else dataclasses.replace(c, offset=c.offset * share, divisor=c.divisor * share)
                    for c, share in zip(columns.outputs, shares))
    return Columns(columns.inputs, outputs)


def smoothing_if_better(values: np.ndarray, split: Split, period: int) -> tuple[Smoothing | None, str]:
    """Holt-Winters' parameters when its forecasts (as the device runs them: ``edgernn.runtime.smoothing``)
    beat the season's naive forecasts on validation, and why; ``(None, why)`` otherwise."""
    smoothing = fitted_smoothing(values[max(0, split.train_end - FIT_POINTS): split.train_end], period)
    if smoothing is None:
        return None, ""
    errors = (values - forecasts(values, period, smoothing)[:-1])[split.train_end: split.val_end]
    smoothed, naive = float(np.sqrt(np.mean(errors ** 2))), season_rmse(values, split, period)
    figures = f"validation RMSE {smoothed:.4g} vs {naive:.4g}"
    if math.isfinite(smoothed) and smoothed < naive:
        return smoothing, (f"Holt-Winters (season {period}, alpha {smoothing.alpha:.3g}, gamma {smoothing.gamma:.3g})"
                           f" beats the season's naive forecasts: {figures}; it is the baseline")
    return None, f"Holt-Winters does not beat the season's naive forecasts ({figures})"


def fitted_smoothing(values: np.ndarray, period: int) -> Smoothing | None:
    """Holt-Winters' parameters fitted by statsmodels on ``values`` (the training split's last ``FIT_POINTS``),
    or None when it cannot (too short, not finite, statsmodels not installed: the ``train`` extra)."""
    import warnings

    try:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing
    except ImportError:
        return None

    if values.shape[0] < 2 * period + 2 or not np.isfinite(values).all():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = ExponentialSmoothing(values, trend=None, seasonal="add", seasonal_periods=period).fit()
        except (ValueError, np.linalg.LinAlgError):
            return None
    params = [fit.params.get(key, 0.0) for key in ("smoothing_level", "smoothing_trend", "smoothing_seasonal")]
    params = [0.0 if p is None or not math.isfinite(p) else min(max(float(p), 0.0), 1.0) for p in params]
    profile = np.asarray(fit.season, dtype=np.float64)[-period:]  # the season as fitted by the split's end
    if profile.size != period or not np.isfinite(profile).all():
        return None
    return Smoothing(*params, tuple(profile - profile.mean()))
