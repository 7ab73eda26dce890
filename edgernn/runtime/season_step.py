"""One stream of a one-column model differenced over a season, in Python floats: the seasonal fast path.

The general row path (``StreamingPredictor._season_rows``) pays a dozen numpy calls a step for what is, with
one stream and one value, a deque and four multiplies: input ``(x[t] - x[t-P] - offset) / divisor``, output
``y * divisor + offset + x[t+1-P]``. The same arithmetic as ``Columns.encode_past``/``decode`` in the same order
(bit-equal), specialised by numbers; the predictor hands its pieces in and keeps the state (the ring is written
back into its ``past`` array whenever the state is read).
"""

from __future__ import annotations

import math
from collections import deque


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

    def load(self, past) -> None:
        """Take the ring from a ``[P]`` sequence of floats (oldest first)."""
        self.ring = deque((float(v) for v in past), maxlen=self.period)

    def step(self, value: float, states: list) -> tuple[float, list]:
        ring = self.ring
        back = ring[0]  # x[t - P]
        ring.append(value)
        if back != back:  # NaN: not a season of values yet
            return math.nan, states
        offset, divisor = self._in
        z = (value - back - offset) / divisor
        if not self._guard[0] <= z <= self._guard[1]:  # rare: outside the calibrated range, or absurd
            if not self._calibrated[0] <= z <= self._calibrated[1]:
                self.counts[0][0, 0] += 1
                if not self._representable[0] <= z <= self._representable[1]:
                    self.counts[1][0, 0] += 1
            z = min(self._limit, max(-self._limit, z))
        self._x[0, 0] = self._quantize_x(z)
        out = self._run([self._x, *states])
        states = out[1:] if self._hand_over is None else self._hand_over(out)
        offset, divisor = self._out
        return self._dequantize_y(out[0][0, 0]) * divisor + offset + ring[0], states
