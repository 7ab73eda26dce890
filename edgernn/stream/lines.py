"""What one input value becomes in ``edgernn stream``: the output line, and an anomaly alert when one is due.

Plain: the prediction. With ``--interval LEVEL``: ``prediction,low,high`` (the interval of the next value). With
``--anomalies`` also ``score,anomaly`` for the value just read: its distance from the prediction made for it,
in half-widths (above 1: outside its interval, anomaly 1), and an alert line naming the input line, the value
and the range it was expected in. A value with no prediction made for it (the first, one after a skipped NaN)
scores ``nan``, anomaly 0.

A multivariate model (``RowLines``) reads one row of F comma-separated numbers per line (a first line naming
the columns is checked against the model's and skipped) and writes one CSV row of predictions per line, or
with ``--json-lines`` one JSON object naming each output.
"""

from __future__ import annotations

import math

import numpy as np

from edgernn.runtime import safe_json
from edgernn.runtime.errors import HeaderMismatch
from edgernn.runtime.numbers import strict_float

ANOMALY_LEVEL = 0.99  # --anomalies without --interval


def number(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.9g}"


def line_text(raw: bytes) -> tuple[str | None, str | None]:
    """A line's text, stripped, or (None, why it is not text)."""
    try:
        return raw.decode("utf-8").strip(), None
    except UnicodeDecodeError:
        return None, f"{raw[:40]!r} is not UTF-8 text"


def parse_value(raw: bytes) -> tuple[float | None, str | None]:
    """A line's value, or (None, why it is not one); (None, None) for a blank line."""
    text, problem = line_text(raw)
    if not text:
        return None, problem
    try:
        return strict_float(text), None
    except ValueError:
        return None, f"{text[:40]!r} is not a number"


class PlainLines:
    """One prediction per line (``json``: ``{"prediction": ...}``)."""

    monitor = None
    parse = staticmethod(parse_value)

    def __init__(self, predictor, json_lines: bool = False):
        self._step = predictor.step
        self._json = json_lines

    def __call__(self, value: float, line: int) -> tuple[str, str | None]:
        prediction = self._step(value)
        if self._json:
            return safe_json.dumps({"prediction": prediction}, non_finite="null") + "\n", None
        return number(prediction) + "\n", None


class RowLines:
    """A multivariate model: a row of F numbers in per line, a CSV row (or a JSON object) of its outputs out."""

    monitor = None

    def __init__(self, predictor, json_lines: bool = False):
        columns = predictor.manifest.columns
        self._step = predictor.step
        self._features = columns.features
        self._names = columns.output_names()
        self._json = json_lines

    def parse(self, raw: bytes, line: int = 0):
        """A line's row ``[F]``, or (None, why not); (None, None) for a blank line or the header line.

        Raises:
            HeaderMismatch: line 1 names columns, but not the model's in its order.
        """
        text, problem = line_text(raw)
        if line == 1 and text:
            text = text.lstrip("\ufeff")  # a byte order mark, as spreadsheets write one
        if not text:
            return None, problem
        cells = [c.strip() for c in text.split(",")]
        try:
            row = np.array([math.nan if c.lower() in MISSING else strict_float(c) for c in cells])
        except ValueError:
            if line == 1 and all(any(ch.isalpha() for ch in c) for c in cells):  # names, not numbers
                cells = [c.strip('"\'') for c in cells]
                if cells != self._features:
                    raise HeaderMismatch(f"the input's header names {','.join(cells)[:200]}, but the model reads "
                                         f"{','.join(self._features)} (in that order)") from None
                return None, None
            return None, f"{text[:40]!r} is not a row of {len(self._features)} numbers"
        if row.size != len(self._features):
            return None, (f"{text[:40]!r} has {row.size} value(s); the model reads {len(self._features)} "
                          f"({','.join(self._features)})")
        return row, None

    def __call__(self, row, line: int) -> tuple[str, str | None]:
        out = np.asarray(self._step(row), dtype=np.float64).reshape(-1)
        if self._json:
            return safe_json.dumps(dict(zip(self._names, out.tolist())), non_finite="null") + "\n", None
        return ",".join(number(float(v)) for v in out) + "\n", None

    def header(self) -> str:
        """The output's CSV header (the outputs' names)."""
        return ",".join(self._names) + "\n"


# a missing value in a row (a gap: skipped, or held with --on-nan hold): the cells training fills as gaps
MISSING = ("", "na", "nan", "n/a", "null", "none", "-")


class IntervalLines:
    """``prediction,low,high[,score,anomaly]`` per line through a ``Monitor``; alerts for anomalies."""

    parse = staticmethod(parse_value)

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
