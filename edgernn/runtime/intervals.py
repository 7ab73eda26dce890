"""Prediction intervals and anomaly scores on the device: split conformal prediction around a StreamingPredictor.

Export runs each variant statefully over held-out data and stores, per level, the half-width its absolute
next-value residuals stayed within (``conformal_half_widths``; ``Intervals`` in the manifest): each variant its
own, since quantization has its own error. On the device a ``Monitor`` wraps the predictor: each incoming value
is first scored against the prediction made for it one step earlier (residual, score = |residual| / half-width,
an anomaly when the score exceeds 1), then stepped, and the new prediction comes with its interval. The plain
``StreamingPredictor.step`` is untouched, so a device that wants no intervals pays nothing.

``adaptive=True`` tracks the half-width online instead of holding it fixed: quantile tracking, the "P" part of
Angelopoulos, Candès and Tibshirani, "Conformal PID Control for Time Series Prediction" (NeurIPS 2023). After
each scored value, ``w += rate * w0 * (miss - (1 - level))``: a miss widens the interval, a hit narrows it a
little, and the long-run miss rate is held at ``1 - level`` whatever the data does (their Proposition 1), so a
level shift or drift that a fixed width under-covers is followed. Its state is saved with the hidden state.

Locally adaptive (normalized) conformal intervals, for bundles whose manifest has a ``scale``: the half-width in
force is the calibrated one times the recent size of the residuals, relative to the held-out data's (an
exponentially weighted mean of |residual| with the manifest's half-life, ``scale_ratios``). Export takes each
level's quantile over residuals divided by that scale, so the interval widens in a volatile spell and narrows in
a calm one, and a test period livelier than the validation one (Beijing's winter after its autumn, issue 30) is
covered at the level asked, not 8 points under it. A residual counts as at most ``SCALE_CLIP`` scales in that
mean (a spike cannot widen the intervals enough to hide the next one) and the scale never falls under
``SCALE_FLOOR``.

``clean=True`` keeps an anomaly out of the model: a reading outside its interval is fed to the predictor clipped
to the interval's nearer edge (Huber's psi applied to the input, as a robust filter does), so the hidden state,
the seasonal ring buffer and the smoothing states never see the spike, and the predictions after it are not
the model's echo of it (issue 30: on Nino 1+2 SST 3 of 4 false flags were such echoes). Clipping, not replacing
the reading by the prediction: a value just outside keeps nearly all it says (replacing it raised the false
flags on clean sine data from 0.67 % to 0.94 %; clipping leaves them at 0.66 %). The reported residual
and score stay the raw ones. At most ``CLEAN_RUN`` readings in a row are clipped: a longer run outside means the
level moved, and the model is fed the readings again to follow it.
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

import numpy as np

from edgernn.errors import EdgernnError, StateError
from edgernn.runtime.inputs import values_per_stream

_new_tuple = tuple.__new__  # builds a Checked without NamedTuple's keyword handling (half its cost)
ADAPTIVE_RATE = 0.2  # quantile tracking's step, as a share of the calibrated half-width (measured: README)
OUTLIER_MADS = 6.0  # calibration leaves out residuals this many robust standard deviations from their median
SCALE_HALF_LIFE = 24  # steps: the residual scale's memory (measured on the public series: benchmarks/gates.md)
SCALE_CLIP = 2.0  # one residual counts as at most this many scales in the scale's mean (Huber's k = 2)
SCALE_FLOOR = 0.1  # the scale never falls under this share of the held-out data's
CLEAN_RUN = 3  # clean=True clips at most this many flagged readings in a row (more: the level moved)


def scale_decay(half_life: float) -> float:
    """The exponentially weighted mean's step for ``half_life`` steps."""
    return 1.0 - 2.0 ** (-1.0 / half_life)


def scale_ratios(residuals: np.ndarray, half_life: float, start: float, clip: float = SCALE_CLIP,
                 floor: float = SCALE_FLOOR) -> np.ndarray:
    """The scale in force for each residual, as a share of ``start`` (the held-out data's mean |residual|): 1 at
    first, then after each finite residual ``r <- r + decay * (min(|residual| / start, clip * r) - r)``, at
    least ``floor``. The ``Monitor`` runs the same recurrence one value at a time."""
    decay, ratio = scale_decay(half_life), 1.0
    sizes = np.abs(np.asarray(residuals, dtype=np.float64).reshape(-1)) / start
    out = np.empty(sizes.size)
    for i, size in enumerate(sizes.tolist()):
        out[i] = ratio
        if size - size == 0.0:  # finite
            ratio += decay * (min(size, clip * ratio) - ratio)
            ratio = ratio if ratio > floor else floor
    return out


def conformal_half_widths(residuals: np.ndarray, levels) -> list[float | None]:
    """Split conformal half-widths: at level L the ceil((n + 1) L)-th smallest |residual| of the n finite ones,
    which covers a new exchangeable residual with probability >= L; None where n is too small for L."""
    magnitudes = np.sort(np.abs(np.asarray(residuals, dtype=np.float64)))
    magnitudes = magnitudes[np.isfinite(magnitudes)]
    n = magnitudes.size
    widths = []
    for level in levels:
        rank = math.ceil((n + 1) * level - 1e-9)
        widths.append(float(magnitudes[rank - 1]) if 1 <= rank <= n else None)
    return widths


def without_outliers(residuals: np.ndarray, mads: float = OUTLIER_MADS) -> np.ndarray:
    """The finite residuals within ``mads`` robust standard deviations (1.4826 x the median absolute deviation)
    of their median: what the conformal quantile is taken over, so that anomalies in the held-out data (spikes)
    cannot widen the intervals meant to flag them. All of them when the MAD is 0.

    Leaving outliers out rather than scaling from the MAD keeps the quantile free of any assumed distribution
    for the residuals that remain. Why 6: a normal residual lies beyond it once in 5e8, and heavy tails lose
    little (1e6 draws: the 0.99 half-width then covers 0.988 of Laplace residuals, 0.989 of Student t5, 0.984
    of t3; the 0.9 one 0.898, 0.899, 0.894), while a spike that would set the 0.99 half-width (issue 30: 3 spikes
    in the validation split made it 11x the 0.9 one, about 18 sigma) is left out.
    """
    residuals = np.asarray(residuals, dtype=np.float64)
    return residuals[inliers(residuals, mads)]


def inliers(residuals: np.ndarray, mads: float = OUTLIER_MADS) -> np.ndarray:
    """The mask of ``without_outliers``: finite and within ``mads`` robust standard deviations of the median."""
    residuals = np.asarray(residuals, dtype=np.float64)
    mask = np.isfinite(residuals)
    finite = residuals[mask]
    if not finite.size:
        return mask
    center = float(np.median(finite))
    spread = 1.4826 * float(np.median(np.abs(finite - center)))
    if spread > 0:
        with np.errstate(invalid="ignore"):
            mask &= np.abs(residuals - center) <= mads * spread
    return mask


class Checked(NamedTuple):
    """One step of a ``Monitor``: floats for one stream, ``[streams]`` arrays otherwise."""

    prediction: float  # the next value's prediction, raw units
    low: float  # its interval at the monitor's level
    high: float
    residual: float  # the value just fed minus the prediction made for it (NaN: none was made, or NaN fed)
    score: float  # |residual| / the half-width in force for it: above 1 is outside the interval
    anomaly: bool  # score > 1


class Monitor:
    """Intervals at one level, and each value scored against its prediction, around a ``StreamingPredictor``.

    Use ``predictor.monitor(level, adaptive=...)``. ``step(x)`` returns a ``Checked``; ``coverage`` is the share
    of scored values that fell inside their interval so far. ``save_state``/``load_state`` carry the monitor's
    own state (the pending prediction, an adaptive half-width, the residual scale, the counts) with the
    predictor's. ``scale``: (half-life, held-out mean |residual|, clip, floor) for a scaled interval (the
    manifest's ``Intervals.scaling``), None for a fixed one. ``clean``: flagged readings are fed to the
    predictor clipped to their interval (see the module's docstring).
    """

    def __init__(self, predictor, level: float, width: float, adaptive: bool = False, rate: float = ADAPTIVE_RATE,
                 scale: tuple[float, float, float, float] | None = None, clean: bool = False):
        if not 0 < rate <= 10 or not math.isfinite(rate):
            raise EdgernnError(f"adaptive rate must be in (0, 10], got {rate!r}")
        self.predictor = predictor
        self.level = float(level)
        self.adaptive = bool(adaptive)
        self.clean = bool(clean)
        self.calibrated = float(width)
        self._decay = scale_decay(scale[0]) if scale else 0.0  # 0: a fixed interval, the scale stays 1
        self._unit = 1.0 / scale[1] if scale else 0.0  # residual -> its size in held-out scales
        self._clip, self._floor = (scale[2], scale[3]) if scale else (SCALE_CLIP, SCALE_FLOOR)
        self._gain = rate * width  # quantile tracking's step, in raw units
        self._miss_rate = 1.0 - self.level
        self._one = predictor.streams == 1
        self._step = predictor.step
        self.reset()

    def reset(self) -> None:
        """No pending predictions, half-widths back to the calibrated one, counts zero (the predictor untouched)."""
        streams = self.predictor.streams
        self._previous = math.nan if self._one else np.full(streams, np.nan)
        self._width = self.calibrated if self._one else np.full(streams, self.calibrated)
        self._ratio = 1.0 if self._one else np.ones(streams)  # the residual scale, a share of the held-out one
        self._scored = 0 if self._one else np.zeros(streams, dtype=np.int64)
        self._covered = 0 if self._one else np.zeros(streams, dtype=np.int64)
        self._run = 0 if self._one else np.zeros(streams, dtype=np.int64)  # flagged readings in a row

    @property
    def coverage(self):
        """Share of scored values inside their interval (NaN before the first)."""
        if self._one:
            return self._covered / self._scored if self._scored else math.nan
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self._scored > 0, self._covered / np.maximum(self._scored, 1), np.nan)

    @property
    def scored(self):
        """Values scored so far (those with a prediction made for them)."""
        return self._scored if self._one else self._scored.copy()

    @property
    def half_width(self):
        """The half-width in force for the next value (the calibrated one unless adaptive or scaled)."""
        return self._width * self._ratio

    def expected(self):
        """The interval the next value is expected in: the pending prediction +- the half-width in force."""
        width = self.half_width
        return self._previous - width, self._previous + width

    def step(self, x) -> Checked:
        """Score ``x`` against the prediction made for it, then step the predictor; returns a ``Checked``."""
        if self._one:
            try:
                return self._step_one(float(x))
            except TypeError:
                pass  # an array: checked below
        values = values_per_stream(x, self.predictor.streams)
        return self._step_one(float(values[0])) if self._one else self._step_many(values)

    def _step_one(self, value: float, fed: float | None = None) -> Checked:
        """The scalar path (plain floats, one tuple built): what keeps a monitored step close to a plain one."""
        feed = value if fed is None else fed
        width, ratio = self._width, self._ratio
        residual = value - self._previous  # NaN when either is NaN
        if residual - residual == 0.0:  # finite: a NaN or inf reading (skipped by the predictor) is not scored
            size = residual if residual >= 0 else -residual
            in_force = width * ratio
            if in_force > 0:
                score = size / in_force
            else:
                score = 0.0 if size == 0 else math.inf
            anomaly = score > 1.0
            self._scored += 1
            if not anomaly:
                self._covered += 1
                self._run = 0
            elif self.clean:
                self._run += 1
                if self._run <= CLEAN_RUN:  # fed at the interval's nearer edge, not where the reading is
                    feed = self._previous + (in_force if residual > 0 else -in_force)
            if self.adaptive:
                width = width + self._gain * (anomaly - self._miss_rate)
                width = self._width = width if width > 0 else 0.0
            if self._decay:  # the recurrence of scale_ratios
                ratio += self._decay * (min(size * self._unit, self._clip * ratio) - ratio)
                ratio = self._ratio = ratio if ratio > self._floor else self._floor
        else:
            score, anomaly = math.nan, False
        prediction = self._previous = self._step(feed)
        width *= ratio
        return _new_tuple(Checked, (prediction, prediction - width, prediction + width, residual, score, anomaly))

    def step_some(self, values, active: np.ndarray, fed=None) -> Checked:
        """Many streams where only the ``active`` ones have a reading (the MQTT bridge's rounds): the others are
        fed NaN and keep their pending prediction and width, as if this step had not happened for them.
        ``fed``: what the predictor steps each stream with instead of its reading (the bridge's held value for a
        missing one, ``--on-nan hold``): the reading is scored, ``fed`` is stepped, as a predictor loaded with
        ``on_nan="hold"`` does with a NaN."""
        values = np.array(values, dtype=np.float64).reshape(-1)
        fed = None if fed is None else np.array(fed, dtype=np.float64).reshape(-1)
        if self._one:
            return self._step_one(float(values[0]), None if fed is None else float(fed[0]))
        return self._step_many(values, np.asarray(active, dtype=bool), fed)

    def _step_many(self, values: np.ndarray, active: np.ndarray | None = None, fed=None) -> Checked:
        feed = values if fed is None else fed
        width = self._width * self._ratio
        residual = values - self._previous
        scored = np.isfinite(residual)
        size = np.abs(residual)
        with np.errstate(invalid="ignore", divide="ignore"):
            score = np.where(width > 0, size / np.where(width > 0, width, 1.0), np.where(size == 0, 0.0, np.inf))
        score = np.where(scored, score, np.nan)
        anomaly = scored & (score > 1.0)
        self._scored += scored
        self._covered += scored & ~anomaly
        if self.clean:
            self._run = np.where(anomaly, self._run + 1, np.where(scored, 0, self._run))
            clipped = anomaly & (self._run <= CLEAN_RUN)  # fed at the nearer edge
            feed = np.where(clipped, self._previous + np.sign(residual) * width, feed)
        if self.adaptive:
            step = self._gain * (anomaly - self._miss_rate)
            self._width = np.where(scored, np.maximum(0.0, self._width + step), self._width)
        if self._decay:  # the recurrence of scale_ratios, where a value was scored
            with np.errstate(invalid="ignore"):
                moved = self._ratio + self._decay * (np.minimum(size * self._unit, self._clip * self._ratio)
                                                     - self._ratio)
            self._ratio = np.where(scored, np.maximum(moved, self._floor), self._ratio)
        width = self._width * self._ratio
        predictions = np.asarray(self._step(feed), dtype=np.float64)
        self._previous = predictions if active is None else np.where(active, predictions, self._previous)
        return Checked(predictions, predictions - width, predictions + width, residual, score, anomaly)

    def run(self, values) -> dict[str, np.ndarray]:
        """Step through ``values`` (``[n]``); returns each ``Checked`` field as an ``[n]`` array."""
        rows = [self.step(value) for value in np.asarray(values, dtype=np.float64)]
        return {name: np.array([getattr(row, name) for row in rows]) for name in Checked._fields}

    # -- state -----------------------------------------------------------------------------------------------

    def state(self) -> dict:
        """JSON values: the pending predictions (None for NaN), the half-widths in force and the counts."""
        def listed(value, kind):
            return [None if kind is float and not math.isfinite(v) else kind(v) for v in np.atleast_1d(value)]

        return {"level": self.level, "adaptive": self.adaptive, "previous": listed(self._previous, float),
                "half_width": listed(self._width, float), "scale": listed(self._ratio, float),
                "scored": listed(self._scored, int), "covered": listed(self._covered, int),
                "flagged_in_a_row": listed(self._run, int)}

    def restore(self, record: dict | None, where: str = "state") -> None:
        """Take back a ``state()`` record (untrusted: each field checked). An adaptive half-width saved for
        another level or mode is not carried over: it starts again from the calibrated one."""
        self.reset()
        if record is None:
            return
        streams = self.predictor.streams
        try:
            fields = [record[k] for k in ("previous", "half_width", "scored", "covered")]
            if not all(isinstance(f, list) and len(f) == streams for f in fields):
                raise ValueError
            previous = [math.nan if v is None else _number(v) for v in fields[0]]
            width = [_number(v) for v in fields[1]]
            scored, covered = ([_count(v) for v in f] for f in fields[2:])
            if any(w < 0 or not math.isfinite(w) for w in width) or any(c > s for c, s in zip(covered, scored)):
                raise ValueError
            ratio = record.get("scale", [1.0] * streams)  # a record from before scaled intervals: 1
            if not isinstance(ratio, list) or len(ratio) != streams:
                raise ValueError
            ratio = [_number(v) for v in ratio]
            if not all(self._floor <= v < 1e12 for v in ratio):
                raise ValueError
            run = record.get("flagged_in_a_row", [0] * streams)  # a record from before clean: none
            if not isinstance(run, list) or len(run) != streams:
                raise ValueError
            run = [_count(v) for v in run]
        except (ValueError, KeyError, TypeError):
            raise StateError(f"{where} has a malformed interval monitor record; use --reset-state to start "
                             "over") from None
        same = record.get("level") == self.level and record.get("adaptive") == self.adaptive
        if self._one:
            self._previous, self._scored, self._covered = previous[0], scored[0], covered[0]
            self._width = width[0] if same and self.adaptive else self.calibrated
            self._ratio = ratio[0] if self._decay else 1.0
            self._run = run[0]
        else:
            self._previous = np.array(previous)
            self._scored, self._covered = np.array(scored), np.array(covered)
            self._width = np.array(width) if same and self.adaptive else self._width
            self._ratio = np.array(ratio) if self._decay else self._ratio
            self._run = np.array(run, dtype=np.int64)
        if not same:
            self._scored, self._covered = (0, 0) if self._one else (self._scored * 0, self._covered * 0)

    def save_state(self, path: str | os.PathLike, extra: dict | None = None) -> None:
        """The predictor's state with this monitor's beside it (atomic; see ``StreamingPredictor.save_state``)."""
        self.predictor.save_state(path, extra={**(extra or {}), "monitor": self.state()})

    def load_state(self, path: str | os.PathLike) -> dict:
        """Restore the predictor's and this monitor's state; returns the caller's other ``extra`` values."""
        extra = self.predictor.load_state(path)
        self.restore(extra.pop("monitor", None), f"state file {path}")
        return extra


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError
    return float(value)


def _count(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**62:  # an int64 counter's
        raise ValueError
    return value
