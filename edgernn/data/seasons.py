"""Which seasonal periods a series may have: found on the training split only, so the peers stay honest.

Candidates come from the autocorrelation's peaks, the periods the time column's spacing suggests (hourly data:
a day and a week) and the user's ``--season`` list (which replaces detection; ``none`` turns it off). A period
must leave two full cycles in the training split; at most ``KEEP`` survive, ranked by seasonal naive's
validation RMSE (the value one period back), ties by the shorter period. Numpy only, deterministic.
"""

from __future__ import annotations

import numpy as np

from edgernn.errors import DataError

KEEP = 3  # periods kept for the summary
ACF_PEAKS = 5  # autocorrelation peaks considered
ACF_FLOOR = 0.2  # a peak below this autocorrelation is not a season
ACF_PROMINENCE = 0.1  # nor one less than this above the lowest autocorrelation since half its lag
HOUR, DAY = 3600.0, 86400.0
# (spacing in seconds, tolerance share, periods): hourly, half-hourly, quarter-hourly, daily, weekly, monthly,
# quarterly data and their usual seasons
SPACINGS = ((HOUR, 0.02, (24, 168)), (HOUR / 2, 0.02, (48, 336)), (HOUR / 4, 0.02, (96, 672)),
            (DAY, 0.02, (7, 365)), (7 * DAY, 0.02, (52,)), (30.44 * DAY, 0.1, (12,)), (91.3 * DAY, 0.05, (4,)))


def parse_season(text: str | None):
    """``--season`` text: None or ``auto`` (detect), ``none`` (no seasons: ``[]``), or a comma list of integers
    >= 2 (DataError, one line, otherwise)."""
    if text is None or text.strip().lower() == "auto":
        return None
    if text.strip().lower() == "none":
        return []
    periods = []
    for part in text.split(","):
        part = part.strip()
        if not (part.isascii() and part.isdigit()) or int(part) < 2:
            raise DataError(f"expected auto, none or a comma list of whole periods of at least 2 steps "
                            f"(e.g. 24,168), got {text!r}")
        periods.append(int(part))
    return list(dict.fromkeys(periods))


def periods_given(season) -> list[int] | None:
    """``train``'s ``season``: None (detect), ``--season`` text, or a list of whole periods >= 2 (DataError,
    one line, for anything else), checked before any training."""
    if season is None or isinstance(season, str):
        return parse_season(season)
    if not isinstance(season, (list, tuple)) or not all(
            isinstance(p, int) and not isinstance(p, bool) and p >= 2 for p in season):
        raise DataError(f"season must be None, text such as '24,168', or a list of whole periods of at least 2 "
                        f"steps, got {season!r}")
    return list(dict.fromkeys(season))


def spacing_periods(spacing: float | None) -> list[int]:
    """The usual seasons of data spaced ``spacing`` seconds apart (the time column's median step), or none."""
    if not spacing or spacing <= 0:
        return []
    for step, tolerance, periods in SPACINGS:
        if abs(spacing - step) <= tolerance * step:
            return list(periods)
    return []


def autocorrelation(values: np.ndarray, lags: int) -> np.ndarray:
    """The sample autocorrelation at lags 0..``lags`` (statsmodels ``acf(fft=True)``'s estimate), via the FFT."""
    x = np.asarray(values, dtype=np.float64) - np.mean(values)
    size = 1 << int(2 * x.size - 1).bit_length()
    spectrum = np.fft.rfft(x, size)
    acov = np.fft.irfft(spectrum * np.conj(spectrum), size)[: lags + 1]
    return acov / acov[0] if acov[0] > 0 else np.zeros(lags + 1)


def acf_peaks(train: np.ndarray) -> list[int]:
    """Lags (>= 2) where the detrended training values' autocorrelation has its highest prominent maxima."""
    lags = train.size // 3  # nearer n/2 the estimate rests on few pairs: its wiggles are not seasons
    if lags < 3:
        return []
    t = np.arange(train.size, dtype=np.float64)
    detrended = train - np.polyval(np.polyfit(t, train, 1), t)
    r = autocorrelation(detrended, lags)
    inner = np.arange(2, lags)
    peaks = inner[(r[inner] > r[inner - 1]) & (r[inner] >= r[inner + 1]) & (r[inner] >= ACF_FLOOR)]
    # a season's autocorrelation dips between its peaks; a wandering level's decays with small wiggles
    prominent = [lag for lag in peaks.tolist() if r[lag] - np.min(r[lag // 2 : lag]) >= ACF_PROMINENCE]
    ranked = sorted(prominent, key=lambda lag: (-r[lag], lag))
    return ranked[:ACF_PEAKS]


def seasonal_naive_rmse(values: np.ndarray, period: int, start: int, end: int) -> float:
    """RMSE of the value one ``period`` back over targets ``[start, end)`` (``start >= period``)."""
    with np.errstate(over="ignore", invalid="ignore"):  # huge values: inf, which loses every comparison
        error = values[start:end] - values[start - period : end - period]
        return float(np.sqrt(np.mean(error**2))) if error.size else float("nan")


def choose(values: np.ndarray, train_end: int, val_end: int, spacing: float | None = None,
           user: list[int] | None = None) -> tuple[list[int], list[str]]:
    """The seasonal periods to compare, best first, and log lines saying what was dropped and why.

    ``user``: the ``--season`` periods (None: detect from the autocorrelation and ``spacing``; []: none).
    """
    notes = []
    if user is not None:
        candidates = list(user)
    else:
        candidates = list(dict.fromkeys(acf_peaks(values[:train_end]) + spacing_periods(spacing)))
    fitting = [p for p in candidates if 2 <= p and 2 * p <= train_end]
    too_long = [p for p in candidates if p not in fitting]
    if too_long and user is not None:
        notes.append(f"season {', '.join(map(str, too_long))}: fewer than two full periods in the training split "
                     f"({train_end} points); left out")
    scored = sorted(fitting, key=lambda p: (seasonal_naive_rmse(values, p, train_end, val_end), p))
    return scored[:KEEP], notes
