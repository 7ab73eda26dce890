"""Holt-Winters as the baseline under the network: a level, a trend and a season per stream, updated by each value.

Seasonal naive repeats one noisy value from a season ago; Holt-Winters (additive) keeps a smoothed season and a
level, which is why it beats both seasonal naive and a network alone on sub-daily data. Under a model it is the
classical part of M4's winning hybrid (Smyl 2018): the network learns what it leaves. Its parameters (alpha,
beta, gamma) and its season's profile are fitted at training and fixed; each stream's state is ``[level, trend,
season ring of P]``, started from its first P values (the level their mean, the season the profile turned to the
phase those values are at, no trend: a device starts at any time of day) and updated by each value after: the
same arithmetic on a whole table (training, verify) as one step at a time (the device).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Smoothing:
    """Additive Holt-Winters' smoothing parameters, each in [0, 1] (``beta`` 0: no trend), and the season's
    profile (one value per phase, mean 0) a stream starts from."""

    alpha: float
    beta: float
    gamma: float
    season: tuple[float, ...]

    def __post_init__(self):
        for name in ("alpha", "beta", "gamma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"smoothing {name} must be a number from 0 to 1, got {value!r}")
        if not isinstance(self.season, (list, tuple)) or not all(
                not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) for v in self.season):
            raise ValueError("smoothing season must be a list of finite numbers")
        object.__setattr__(self, "season", tuple(float(v) for v in self.season))

    @classmethod
    def from_dict(cls, data) -> "Smoothing":
        if not isinstance(data, dict) or set(data) != {"alpha", "beta", "gamma", "season"}:
            raise ValueError("smoothing must be an object of alpha, beta, gamma and season")
        return cls(data["alpha"], data["beta"], data["gamma"], data["season"])


def start(past: np.ndarray, profile: np.ndarray) -> np.ndarray:
    """States ``[..., 2 + P]`` from each stream's first ``P`` values ``[..., P]`` (oldest first): the level their
    mean, the season ``profile`` turned to the phase whose shape matches their deviations best (circular
    cross-correlation), no trend."""
    level = past.mean(axis=-1, keepdims=True)
    period = past.shape[-1]
    match = np.fft.irfft(np.conj(np.fft.rfft(past - level)) * np.fft.rfft(profile), n=period)
    phase = np.argmax(match, axis=-1)
    season = profile[(np.arange(period) + phase[..., None]) % period]
    return np.concatenate([level, np.zeros_like(level), season], axis=-1)


def forecast(state: np.ndarray) -> np.ndarray:
    """The next value each state predicts: level + trend + the season one period before the next step."""
    return state[..., 0] + state[..., 1] + state[..., 2]


def update(state: np.ndarray, value: np.ndarray, alpha, beta, gamma) -> np.ndarray:
    """The states after seeing ``value`` (a new array; parameters broadcast over the last state axis's rows)."""
    level, trend, season = state[..., 0], state[..., 1], state[..., 2]
    new_level = alpha * (value - season) + (1 - alpha) * (level + trend)
    new_trend = beta * (new_level - level) + (1 - beta) * trend
    new_season = gamma * (value - level - trend) + (1 - gamma) * season
    return np.concatenate([new_level[..., None], new_trend[..., None], state[..., 3:], new_season[..., None]],
                          axis=-1)


def forecasts(values: np.ndarray, period: int, smoothing: Smoothing) -> np.ndarray:
    """``f[t]``: the forecast of ``values[t]`` made after the values before it, for ``t`` in ``0..n`` (``f[n]``
    after the last); NaN for the first ``period`` (the state starts from them)."""
    n = values.shape[0]
    out = np.full(n + 1, np.nan)
    if n < period:
        return out
    s = smoothing
    state = start(values[:period].astype(np.float64), np.array(smoothing.season))
    level, trend, ring = float(state[0]), float(state[1]), list(state[2:])  # floats: a table is a Python loop
    a, b, g = s.alpha, s.beta, s.gamma
    for t in range(period, n):
        old = ring[(t - period) % period]
        out[t] = level + trend + old
        x = float(values[t])
        new_level = a * (x - old) + (1 - a) * (level + trend)
        ring[(t - period) % period] = g * (x - level - trend) + (1 - g) * old
        trend = b * (new_level - level) + (1 - b) * trend
        level = new_level
    out[n] = level + trend + ring[(n - period) % period]
    return out
