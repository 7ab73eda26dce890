"""What one input value becomes in ``edgernn stream``: the output line, and an anomaly alert when one is due.

Plain: the prediction. With ``--interval LEVEL``: ``prediction,low,high`` (the interval of the next value). With
``--anomalies`` also ``score,anomaly`` for the value just read: its distance from the prediction made for it,
in half-widths (above 1: outside its interval, anomaly 1), and an alert line naming the input line, the value
and the range it was expected in. A value with no prediction made for it (the first, one after a skipped NaN)
scores ``nan``, anomaly 0.
"""

from __future__ import annotations

import math

ANOMALY_LEVEL = 0.99  # --anomalies without --interval


def number(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.9g}"


class PlainLines:
    """One prediction per line."""

    monitor = None

    def __init__(self, predictor):
        self._step = predictor.step

    def __call__(self, value: float, line: int) -> tuple[str, str | None]:
        return number(self._step(value)) + "\n", None


class IntervalLines:
    """``prediction,low,high[,score,anomaly]`` per line through a ``Monitor``; alerts for anomalies."""

    def __init__(self, monitor, anomalies: bool):
        self.monitor = monitor
        self.anomalies = anomalies
        self.flagged = 0

    def __call__(self, value: float, line: int) -> tuple[str, str | None]:
        expected = self.monitor.expected() if self.anomalies else None
        checked = self.monitor.step(value)
        text = f"{number(checked.prediction)},{number(checked.low)},{number(checked.high)}"
        if not self.anomalies:
            return text + "\n", None
        text += f",{number(checked.score)},{int(checked.anomaly)}\n"
        if not checked.anomaly:
            return text, None
        self.flagged += 1
        low, high = expected
        return text, (f"line {line}: anomaly: {value:.9g} is outside the expected [{low:.6g}, {high:.6g}] "
                      f"(score {checked.score:.3g}, level {self.monitor.level:g})\n")
