"""What one input value becomes in ``edgernn stream``: the output line, and an anomaly alert when one is due.

Plain: the prediction. With ``--interval LEVEL``: ``prediction,low,high`` (the interval of the next value). With
``--anomalies`` also ``score,anomaly`` for the value just read: its distance from the prediction made for it,
in half-widths (above 1: outside its interval, anomaly 1), and an alert line naming the input line, the value
and the range it was expected in. A value with no prediction made for it (the first, one after a skipped NaN)
scores ``nan``, anomaly 0.

A multivariate model (``RowLines``) reads one row of F comma-separated numbers per line and writes one CSV row
of predictions per line, or with ``--json-lines`` one JSON object naming each output.

A CSV with a header line (the file a model was trained on) is read by name (``Picker``): the header is looked
for only where a line fails to parse as the model's input, so plain numbers cost nothing more per line. The
columns come from ``--column``/``--columns`` (then a header is required) or are the model's own names.
"""

from __future__ import annotations

import csv
import math
import re
from datetime import datetime, timezone

import numpy as np

from edgernn.runtime import safe_json
from edgernn.errors import HeaderMismatch
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


class Picker:
    """Which cells of a CSV line feed the model, from a header line naming the columns.

    ``wanted``: the names the model reads, in its order (``--column``/``--columns``, else the model's own);
    ``given``: they were asked for, so a header lacking one (or no header before the first value) is an error.
    ``indices`` (the cells, in the model's order) are saved with the state: a restart past the header reads on.
    """

    def __init__(self, wanted, given: bool, time: str | None = None):
        self.wanted, self.given, self.time = list(wanted), given or time is not None, time
        self.indices: list[int] | None = None
        self.time_index: int | None = None  # the time column's cell (``--time-column``): rows in time order
        self.last_time: float | None = None  # the last row's time, in seconds (a number, or ISO 8601's epoch)
        self.unordered = 0  # rows skipped this run for a time not after the last row's
        self.pending: float | None = None

    def header(self, raw: bytes, first: bool = True) -> bool:
        """Whether ``raw`` is a header naming the wanted columns (then they are picked from now on).

        ``first``: nothing has been read yet, so a header that does not name them is an error; later (a rotated
        log starting again with its header, or a stray line of words) it is only a line that is not a value.

        Raises:
            HeaderMismatch: a first header that does not name them, where they were asked for (or are several),
                or names one twice.
        """
        text, _ = line_text(raw)
        cells = [c.strip() for c in _split((text or "").lstrip("\ufeff"))]
        named = [c for c in cells if c]  # a table's index column may have no name
        if not named or not all(any(ch.isalpha() for ch in c) for c in named):  # numbers, not names
            return False
        missing = [name for name in self.wanted if name not in cells]
        twice = [name for name in self.wanted if cells.count(name) > 1]
        if (missing or twice) and first and (self.given or len(self.wanted) > 1 or len(cells) > 1):
            what = f"names {','.join(twice)[:200]} twice" if twice else f"does not name {','.join(missing)[:200]}"
            if self.given:
                why = f"asked for by {'--column' if len(self.wanted) == 1 else '--columns'}"
            else:
                why = f"the model reads {','.join(self.wanted)[:200]}; " + (
                    "--column NAME" if len(self.wanted) == 1 else "--columns A,B,...")
            raise HeaderMismatch(f"the input's header {','.join(cells)[:200]} {what} ({why})")
        if missing or twice:
            return False
        if self.time is not None and cells.count(self.time) != 1:
            if first:
                raise HeaderMismatch(f"the input's header {','.join(cells)[:200]} does not name the time column "
                                     f"{self.time[:200]} once (--time-column)")
            return False
        self.indices = [cells.index(name) for name in self.wanted]
        self.time_index = None if self.time is None else cells.index(self.time)
        return True

    def record(self) -> dict | None:
        """What a state saves: the names asked for and the cells they were found in (None before a header); with
        a time column, its cell and the last row's time."""
        if self.indices is None:
            return None
        record = {"names": self.wanted, "cells": self.indices}
        if self.time is not None:
            record.update(time=self.time, time_cell=self.time_index, last_time=self.last_time)
        return record

    def restore(self, record) -> None:
        """The cells a saved state read, when it read the same names and time column (a crafted or older
        record: nothing, so the header is looked for again)."""
        if not isinstance(record, dict) or record.get("names") != self.wanted:
            return
        if record.get("time") != self.time:
            said = "no time column" if record.get("time") is None else f"the time column {str(record['time'])[:200]}"
            raise HeaderMismatch(f"the state was saved reading {said}; give the same --time-column, or "
                                 "--reset-state to start over")
        indices = record.get("cells")
        if self.time is not None and isinstance(indices, list):
            indices = [*indices, record.get("time_cell")]
        if not (isinstance(indices, list) and len(indices) == len(self.wanted) + (self.time is not None)
                and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < 65536 for i in indices)):
            return
        last = record.get("last_time")
        if self.time is not None and last is not None and not safe_json.finite_number(last):
            return
        self.indices, self.time_index = indices[:len(self.wanted)], indices[-1] if self.time is not None else None
        self.last_time = last  # an int stays exact (epoch nanoseconds)

    def cells(self, raw: bytes) -> tuple[list[str] | None, str | None]:
        """The wanted cells of a line, or (None, why not); (None, None) for a blank line."""
        text, problem = line_text(raw)
        if not text:
            return None, problem
        cells = _split(text)
        widest = max(self.indices) if self.time_index is None else max(*self.indices, self.time_index)
        if len(cells) <= widest:
            return None, f"{text[:40]!r} has {len(cells)} cell(s); the header named {widest + 1} or more"
        if self.time_index is not None:
            problem = self._in_order(cells[self.time_index].strip())
            if problem is not None:
                return None, problem
        return [cells[i].strip() for i in self.indices], None

    def _in_order(self, cell: str) -> str | None:
        """None when the row's time comes after the last row's (then it is the last), else why it is skipped."""
        moment = time_seconds(cell)
        if moment is None:
            return f"its time {cell[:40]!r} (column {self.time[:40]}) is neither a number nor an ISO 8601 time"
        if self.last_time is not None and moment <= self.last_time:
            self.unordered += 1
            return (f"its time {cell[:40]!r} {'repeats' if moment == self.last_time else 'comes before'} the last "
                    "row's (rows are read in time order)")
        self.pending = moment  # the last time once this row's value is read (``took``)
        return None

    def took(self) -> None:
        """The row just read gave a value: its time is now the last row's."""
        self.last_time = self.pending


def iso_seconds(text: str) -> float | None:
    """An ISO 8601 time as epoch seconds (UTC when it names no offset; ``Z`` read as UTC), else None."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


_INTEGER = re.compile(r"[+-]?[0-9]{1,40}")  # ASCII digits only: int() would also read "١٢" or "1_000"


def time_seconds(cell: str) -> float | None:
    """A time cell as seconds: a finite number as it is (an integer exactly, as epoch nanoseconds need), else an
    ISO 8601 time (``iso_seconds``); else None."""
    if _INTEGER.fullmatch(cell):
        return int(cell)
    try:
        value = strict_float(cell)
    except ValueError:
        return iso_seconds(cell)
    return value if math.isfinite(value) else None


def _is_table_header(raw: bytes) -> bool:
    """A line of two or more cells, each a name (a letter in it, and not a number such as ``inf`` or ``1e5``, nor a
    gap such as ``NA``): a CSV table's header, not a reading."""
    text, _ = line_text(raw)
    cells = [c.strip() for c in _split((text or "").lstrip("\ufeff"))]
    names = [c for c in cells if c]
    return len(cells) > 1 and bool(names) and all(_is_name(c) for c in names)


def _is_name(cell: str) -> bool:
    if not any(ch.isalpha() for ch in cell) or cell.lower() in MISSING:
        return False
    try:
        strict_float(cell)
    except ValueError:
        return True
    return False


def _split(text: str) -> list[str]:
    """A CSV line's cells as training reads them (``csv``: quoted cells, commas inside quotes)."""
    return next(csv.reader([text]), [])


def _number_cell(cell: str) -> float:
    return math.nan if cell.lower() in MISSING else strict_float(cell)


class _Lines:
    """What every kind of line shares: the parse in use (plain, or by name once a header picked the columns)."""

    monitor = None

    def __init__(self, picker: Picker | None):
        self.picker = picker
        self.parse = self._parse_plain if picker is None or not picker.given else _header_first

    def take_header(self, raw: bytes, first: bool = True, opening: bool = False) -> bool:
        """A line that did not parse: is it a header naming the model's columns? Then read by name from now on.
        ``first``: no value has been read yet (only then is a header naming other columns an error);
        ``opening``: it is the input's first line.

        Raises:
            HeaderMismatch: the columns were asked for by name and the first line is not a header naming them; or
                the input opens with a CSV table's header and the model records no name to read it by.
        """
        if self.picker is None:
            if opening and _is_table_header(raw):  # a one-value model that records no name, fed a CSV table
                text, _ = line_text(raw)
                raise HeaderMismatch(f"the input starts with a CSV header ({text[:80]}) and this model records no "
                                     "column name: give the column it reads with --column NAME")
            return False
        if self.picker.header(raw, first and self.picker.indices is None):
            self.parse = self._parse_picked
            return True
        if self.picker.given and self.picker.indices is None:
            text, _ = line_text(raw)
            raise HeaderMismatch(f"{'--column' if len(self.picker.wanted) == 1 else '--columns'} "
                                 f"{','.join(self.picker.wanted)[:200]}: the input has no header line naming its "
                                 f"columns before {(text or '')[:40]!r}")
        return False

    def restore(self, record) -> None:
        if self.picker is not None:
            self.picker.restore(record)
            if self.picker.indices is not None:
                self.parse = self._parse_picked

    @property
    def picked(self) -> dict | None:
        return None if self.picker is None else self.picker.record()


def _header_first(raw: bytes):
    """Columns asked for by name: nothing is a value before the header (``take_header`` reads it, or refuses)."""
    text, problem = line_text(raw)
    return None, problem if not text else "not the header line naming the columns"


class PlainLines(_Lines):
    """One prediction per line (``json``: ``{"prediction": ...}``)."""

    def __init__(self, predictor, json_lines: bool = False, picker: Picker | None = None):
        super().__init__(picker)
        self._step = predictor.step
        self._json = json_lines

    _parse_plain = staticmethod(parse_value)

    def _parse_picked(self, raw: bytes):
        cells, problem = self.picker.cells(raw)
        if cells is None:
            return None, problem
        try:
            value = _number_cell(cells[0])
        except ValueError:
            return None, f"{cells[0][:40]!r} (column {self.picker.wanted[0][:40]}) is not a number"
        if self.picker.time is not None:
            self.picker.took()
        return value, None

    def __call__(self, value: float, line: int) -> tuple[str, str | None]:
        prediction = self._step(value)
        if self._json:
            return safe_json.dumps({"prediction": prediction}, non_finite="null") + "\n", None
        return number(prediction) + "\n", None


class RowLines(_Lines):
    """A multivariate model: a row of F numbers in per line, a CSV row (or a JSON object) of its outputs out."""

    def __init__(self, predictor, json_lines: bool = False, picker: Picker | None = None):
        columns = predictor.manifest.columns
        super().__init__(picker or Picker(columns.features, False))
        self._step = predictor.step
        self._features = columns.features
        self._names = columns.output_names()
        self._json = json_lines

    def _parse_plain(self, raw: bytes):
        """A line's row ``[F]``, or (None, why not); (None, None) for a blank line."""
        text, problem = line_text(raw)
        if not text:
            return None, problem
        return self._row([c.strip() for c in text.lstrip("\ufeff").split(",")], text)

    def _parse_picked(self, raw: bytes):
        cells, problem = self.picker.cells(raw)
        if cells is None:
            return None, problem
        row, problem = self._row(cells, ",".join(cells))
        if problem is None and self.picker.time is not None:
            self.picker.took()
        return row, problem

    def _row(self, cells: list[str], text: str):
        try:
            row = np.array([_number_cell(c) for c in cells])
        except ValueError:
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


class IntervalLines(PlainLines):
    """``prediction,low,high[,score,anomaly]`` per line through a ``Monitor`` (``json``: an object with those
    names, as the MQTT bridge publishes them); alerts for anomalies."""

    def __init__(self, monitor, anomalies: bool, picker: Picker | None = None, json_lines: bool = False):
        _Lines.__init__(self, picker)
        self.monitor = monitor
        self.anomalies = anomalies
        self.flagged = 0
        self._json = json_lines

    def __call__(self, value: float, line: int) -> tuple[str, str | None]:
        expected = self.monitor.expected() if self.anomalies else None
        checked = self.monitor.step(value)
        fields = {"prediction": checked.prediction, "low": checked.low, "high": checked.high}
        if self.anomalies:
            fields.update(score=checked.score, anomaly=bool(checked.anomaly))
        if self._json:
            text = safe_json.dumps(fields, non_finite="null") + "\n"
        else:
            text = ",".join(number(v) if not isinstance(v, bool) else str(int(v)) for v in fields.values()) + "\n"
        if not self.anomalies or not checked.anomaly:
            return text, None
        self.flagged += 1
        low, high = expected
        return text, (f"line {line}: anomaly: {value:.9g} is outside the expected [{low:.6g}, {high:.6g}] "
                      f"(score {checked.score:.3g}, level {self.monitor.level:g})\n")
