"""One stream of a one-column model differenced over a season, in Python floats: the seasonal fast path.

The general row path (``StreamingPredictor._season_rows``) pays a dozen numpy calls a step for what is, with
one stream and one value, a deque and four multiplies: input ``(x[t] - x[t-P] - offset) / divisor``, output
``y * divisor + offset + x[t+1-P]``. The same arithmetic as ``Columns.encode_past``/``decode`` in the same order
(bit-equal), specialised by numbers; the predictor hands its pieces in and keeps the state (the ring is written
back into its ``past`` array whenever the state is read). With Holt-Winters under the network
(``edgernn.runtime.smoothing``), its level, trend and season are floats and a deque too, and the forecast takes
the place of ``x[t-P]`` and ``x[t+1-P]``.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from edgernn.runtime import smoothing as holt_winters


class SeasonStep:
    """``step(value, states) -> (prediction, states)``; NaN (state untouched) until a season of values is in."""

    def __init__(self, columns, run, x, quantize_x, dequantize_y, hand_over, ranges):
        column, output = columns.inputs[0], columns.outputs[0]
        self.period = column.period
        self.ring = deque([math.nan] * self.period, maxlen=self.period)  # the last P values, oldest first
        self._in = (column.offset, column.divisor)
        self._out = (output.offset, output.divisor)
        self._run, self._x, self._quantize_x, self._dequantize_y = run, x, quantize_x, dequantize_y
        self._hand_over = hand_over  # None when the state outputs feed the next step as they are
        self._guard, self._calibrated, self._representable, self._limit = ranges
        self.counts = None  # the predictor's out-of-range and clipped counts ([1, 1] arrays), set on reset
        self._smoothing = column.smoothing
        self.smooth = None  # Holt-Winters' [level, trend, season deque] once a season of values is in
        if column.smoothing is not None:
            self.step = self._smoothed_step

    def load(self, past, smooth=None) -> None:
        """Take the ring from a ``[P]`` sequence of floats (oldest first), and Holt-Winters' ``[2 + P]`` state
        (NaN: not started)."""
        self.ring = deque((float(v) for v in past), maxlen=self.period)
        self.smooth = None
        if smooth is not None and not np.isnan(smooth).any():
            self.smooth = [float(smooth[0]), float(smooth[1]), deque((float(v) for v in smooth[2:]),
                                                                    maxlen=self.period)]

    def smooth_state(self) -> np.ndarray:
        """Holt-Winters' state as the general path keeps it: ``[level, trend, season...]``, NaN if not started."""
        if self.smooth is None:
            return np.full(2 + self.period, np.nan)
        return np.array([self.smooth[0], self.smooth[1], *self.smooth[2]])

    def _smoothed_step(self, value: float, states: list) -> tuple[float, list]:
        ring, smooth = self.ring, self.smooth
        if smooth is None:
            if ring[0] != ring[0]:  # NaN: not a season of values yet
                ring.append(value)
                return math.nan, states
            started = holt_winters.start(np.array([list(ring)]), np.array(self._smoothing.season))[0]
            smooth = self.smooth = [float(started[0]), float(started[1]),
                                    deque((float(v) for v in started[2:]), maxlen=self.period)]
        level, trend, season = smooth
        old = season[0]
        offset, divisor = self._in
        states = self._model((value - (level + trend + old) - offset) / divisor, states)
        s = self._smoothing
        new_level = s.alpha * (value - old) + (1 - s.alpha) * (level + trend)
        new_trend = s.beta * (new_level - level) + (1 - s.beta) * trend
        season.append(s.gamma * (value - level - trend) + (1 - s.gamma) * old)
        smooth[0], smooth[1] = new_level, new_trend
        ring.append(value)
        offset, divisor = self._out
        return self._y * divisor + offset + (new_level + new_trend + season[0]), states

    def _model(self, z: float, states: list) -> list:
        """Run the model on input ``z``, counted and clipped as the general path does; its output in ``_y``."""
        if not self._guard[0] <= z <= self._guard[1]:  # rare: outside the calibrated range, or absurd
            if not self._calibrated[0] <= z <= self._calibrated[1]:
                self.counts[0][0, 0] += 1
                if not self._representable[0] <= z <= self._representable[1]:
                    self.counts[1][0, 0] += 1
            z = min(self._limit, max(-self._limit, z))
        self._x[0, 0] = self._quantize_x(z)
        out = self._run([self._x, *states])
        self._y = self._dequantize_y(out[0][0, 0])
        return out[1:] if self._hand_over is None else self._hand_over(out)

    def step(self, value: float, states: list) -> tuple[float, list]:
        ring = self.ring
        back = ring[0]  # x[t - P]
        ring.append(value)
        if back != back:  # NaN: not a season of values yet
            return math.nan, states
        offset, divisor = self._in
        states = self._model((value - back - offset) / divisor, states)
        offset, divisor = self._out
        return self._y * divisor + offset + ring[0], states
