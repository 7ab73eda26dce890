"""The forecasters a trained model is held beside, on its own split: is the network worth deploying at all?

Persistence is ``edgernn.training.trainer.evaluate``'s; here are seasonal naive (the value one period back) for each
period ``edgernn.data.seasons.choose`` keeps, and one classical peer from statsmodels: additive Holt-Winters at the
best period, or exponential smoothing without one, its trend (on or off) chosen by validation RMSE. Both are
honest one-step forecasts: parameters fitted on the training split only, then run forward over validation and
test with every parameter fixed, each prediction made from the values before it (statsmodels' own recursion,
``initialization_method="known"`` and ``fit(optimized=False)``), as a device would. RMSEs are in raw units.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np

from edgernn.data import seasons

BUDGET_SECONDS = 10.0  # the classical peer is skipped (with a log line) beyond this
FIT_POINTS = 5000  # the classical peer is fitted on at most the last this many training points (time bound)
SECONDS_PER_POINT = 4e-5  # statsmodels' fixed-parameter run (a Python loop), measured on x86_64: 2.5 s per 65k
MAX_PERIOD = 2000  # a longer season has as many initial states to carry: no Holt-Winters (seasonal naive only)
NOT_INSTALLED = "statsmodels not installed: pip install 'edgernn[train]'"


@dataclass(frozen=True)
class Peer:
    """One forecaster's figures on the split: ``name`` as the summary shows it."""

    name: str
    val_rmse: float
    test_rmse: float


def _rmse(predictions: np.ndarray, truth: np.ndarray) -> float:
    error = predictions - truth
    return float(np.sqrt(np.mean(error**2))) if error.size else float("nan")


def seasonal_naive(values: np.ndarray, period: int, train_end: int, val_end: int) -> Peer:
    return Peer(f"seasonal naive (period {period})", seasons.seasonal_naive_rmse(values, period, train_end, val_end),
                seasons.seasonal_naive_rmse(values, period, val_end, values.size))


def _shape(period: int | None, trend: bool) -> dict:
    return dict(trend="add" if trend else None, seasonal="add" if period else None, seasonal_periods=period)


def one_step(values: np.ndarray, start: int, train_end: int, period: int | None, trend: bool) -> np.ndarray:
    """Exponential smoothing fitted on ``values[start:train_end]``, then run with its parameters fixed over
    ``values[start:]``: the one-step prediction of each value from ``start`` on (``[n - start]``)."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    shape = _shape(period, trend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter: the validation RMSE says how well it did
        # no brute-force grid for the starting values: 5x faster with a trend, the same fit on the series tried
        fit = ExponentialSmoothing(values[start:train_end], initialization_method="heuristic", **shape).fit(
            use_brute=False)
        p = fit.params
        known = dict(initialization_method="known", initial_level=p["initial_level"],
                     initial_trend=p["initial_trend"] if trend else None,
                     initial_seasonal=p["initial_seasons"] if period else None)
        fixed = {name: p[name] for name in ("smoothing_level", "smoothing_trend", "smoothing_seasonal")
                 if np.isfinite(p.get(name, np.nan))}
        run = ExponentialSmoothing(values[start:], **shape, **known).fit(optimized=False, **fixed)
    return np.asarray(run.fittedvalues, dtype=np.float64)


def classical(values: np.ndarray, train_end: int, val_end: int, period: int | None, log,
              budget: float = BUDGET_SECONDS) -> Peer | None:
    """Holt-Winters at ``period`` (exponential smoothing when None), trend on or off by validation RMSE; None
    (and a log line) when statsmodels is missing, a fit fails, or the fits outrun ``budget`` seconds."""
    try:
        import statsmodels.tsa.holtwinters  # noqa: F401 - the one optional dependency, reported by name
    except ImportError:
        log(f"peers: no classical peer: {NOT_INSTALLED}")
        return None
    if period is not None and period > MAX_PERIOD:
        log(f"peers: no Holt-Winters: season {period} is beyond {MAX_PERIOD} steps (its fit would outrun the "
            f"{budget:g} s budget)")
        return None
    start = max(0, train_end - max(FIT_POINTS, 3 * (period or 0)))
    expected = 2 * (values.size - start) * SECONDS_PER_POINT  # two runs (trend off, on) dominate the fits
    if expected > budget:
        log(f"peers: no {_name(period, False)}: its runs over {values.size - start} points would take about "
            f"{expected:.0f} s, beyond the {budget:g} s budget")
        return None
    started, best = time.perf_counter(), None
    for trend in (False, True):
        try:
            predicted = one_step(values, start, train_end, period, trend)
        except (ValueError, np.linalg.LinAlgError) as exc:  # e.g. too short for the heuristic start
            log(f"peers: {_name(period, trend)} could not be fitted ({str(exc).splitlines()[0][:80]}); left out")
            continue
        offset = train_end - start
        peer = Peer(_name(period, trend), _rmse(predicted[offset : val_end - start], values[train_end:val_end]),
                    _rmse(predicted[val_end - start :], values[val_end:]))
        if np.isfinite(peer.val_rmse) and (best is None or peer.val_rmse < best.val_rmse):
            best = peer
        spent = time.perf_counter() - started
        if not trend and 3 * spent > budget:  # the trend fit costs about twice as much again
            log(f"peers: {_name(period, True)} skipped: {_name(period, False)} took {spent:.1f} s of a "
                f"{budget:g} s budget")
            break
    return best


def _name(period: int | None, trend: bool) -> str:
    if period:
        return f"Holt-Winters ({'trend, ' if trend else ''}season {period})"
    return "Holt (trend)" if trend else "exponential smoothing"


def compare(values: np.ndarray, train_end: int, val_end: int, periods: list[int], log) -> list[Peer]:
    """Seasonal naive for each of ``periods`` (best first) and the classical peer at the first of them."""
    values = np.asarray(values, dtype=np.float64)
    found = [seasonal_naive(values, p, train_end, val_end) for p in periods]
    peer = classical(values, train_end, val_end, periods[0] if periods else None, log)
    return found + ([peer] if peer is not None else [])


def best(peers: list[Peer]) -> Peer | None:
    """The peer of lowest validation RMSE (the first of equals), or None."""
    finite = [p for p in peers if np.isfinite(p.val_rmse)]
    return min(finite, key=lambda p: p.val_rmse) if finite else None


# -- the figures in a model's metrics dict (flat: the .keras metadata keeps numbers only) ----------------------

def metrics_for(values: np.ndarray, train_end: int, val_end: int, spacing: float | None, season, log,
                output: str | None = None) -> dict:
    """Each peer's ``peer_val_rmse[NAME]`` and ``peer_test_rmse[NAME]`` (``[OUTPUT: NAME]`` for a multivariate
    model's output), the periods chosen on the training split (``season``: see ``seasons.choose``'s ``user``)."""
    periods, notes = seasons.choose(values, train_end, val_end, spacing, season)
    for note in notes:
        log(f"peers: {note}")
    prefix = f"{output}: " if output is not None else ""
    found = {}
    for peer in compare(values, train_end, val_end, periods, log):
        found[f"peer_val_rmse[{prefix}{peer.name}]"] = peer.val_rmse
        found[f"peer_test_rmse[{prefix}{peer.name}]"] = peer.test_rmse
    return found


def rows(metrics: dict, output: str | None = None) -> list[Peer]:
    """The model, persistence and every peer of ``metrics`` (one output's, for a multivariate model)."""
    at, prefix = (f"[{output}]", f"{output}: ") if output is not None else ("", "")
    found = [Peer("the model", metrics.get(f"val_rmse{at}", np.nan), metrics.get(f"test_rmse{at}", np.nan)),
             Peer("persistence", metrics.get(f"val_persistence_rmse{at}", np.nan),
                  metrics.get(f"persistence_rmse{at}", np.nan))]
    head = f"peer_val_rmse[{prefix}"
    for key, value in metrics.items():
        name = key[len(head) : -1]
        if key.startswith(head) and (output is not None or ": " not in name):
            found.append(Peer(name, value, metrics.get(f"peer_test_rmse[{prefix}{name}]", np.nan)))
    return [Peer(p.name, _number(p.val_rmse), _number(p.test_rmse)) for p in found]


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def verdict(metrics: dict, output: str | None = None) -> str | None:
    """One line when the model does not beat the best peer (persistence included) on validation, else None."""
    model, *others = rows(metrics, output)
    top = best(others)
    if top is None or model.val_rmse < top.val_rmse:
        return None
    what = top.name.split(" (")[0]
    return (f"{output + ': ' if output is not None else ''}the model does not beat {top.name} on validation (RMSE "
            f"{model.val_rmse:.4g} vs {top.val_rmse:.4g}): deploy {what} instead, or try --season, more --epochs "
            "or --units")
