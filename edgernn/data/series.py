"""Time series in, one clean float64 array out: built-in series, CSV and .npy files, gap filling, splits.

Everything here is numpy and the standard library, so the same loader serves training, calibration and
verification on the host and ``edgernn verify --data`` on a device.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgernn.errors import DataError, first_line, quoted
from edgernn.runtime.numbers import strict_float
from edgernn.runtime.preprocessing import Preprocessing
from edgernn.data.timestamps import date_spacing, time_order

BUILTIN_SOURCES = ("counting", "sine", "lagged")
MISSING_MARKERS = {"", "na", "nan", "n/a", "null", "none", "-"}
SINE_POINTS = 3000
SINE_SEED = 0
LAGGED_COLUMNS = ("follower", "driver")
LAGGED_STEPS = 3  # the follower repeats the driver this many steps later
NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
# What np.load raises for a damaged .npy: header text that does not tokenize or is not a dict literal (TokenError,
# SyntaxError, ValueError, TypeError, KeyError, RecursionError), a short file (EOFError, ValueError), a declared
# shape beyond memory or a C long (MemoryError, OverflowError); UnicodeError is a ValueError.
NPY_LOAD_ERRORS = (ValueError, TypeError, KeyError, SyntaxError, tokenize.TokenError, RecursionError, EOFError,
                   OSError, OverflowError, MemoryError)
FLOAT32_MAX = float(np.finfo(np.float32).max)
COLUMNS_SHOWN = 20  # header names listed in an error message


@dataclass(frozen=True)
class Series:
    """A loaded series and how it was obtained (reported to the user)."""

    values: np.ndarray  # [n] float64, all finite
    name: str
    filled: int = 0  # cells filled by linear interpolation
    spacing: float | None = None  # seconds between rows (median), when a time column of dates gives it


@dataclass(frozen=True)
class Table:
    """Several columns of one source, rows in time order, each column's gaps filled on its own."""

    values: np.ndarray  # [n, F] float64, all finite
    names: tuple[str, ...]  # the F column names, in the order of ``values``' columns
    name: str  # the source (a built-in's name or the file name), for messages
    filled: tuple[int, ...]  # cells filled by linear interpolation, per column
    spacing: float | None = None  # seconds between rows (median), when a time column of dates gives it
    skipped: tuple[str, ...] = ()  # index-like columns ``all`` left out (see ``_index_like``)

    def column(self, index: int) -> Series:
        """One column as a ``Series``, named as ``load_series`` names it (``source:column``; a one-column
        built-in by its own name)."""
        column = self.names[index]
        return Series(self.values[:, index], self.name if column == self.name else f"{self.name}:{column}",
                      self.filled[index], self.spacing)


@dataclass(frozen=True)
class Split:
    """Chronological boundaries: train is ``[0, train_end)``, validation ``[train_end, val_end)``, test the rest."""

    train_end: int
    val_end: int
    length: int


def counting_series() -> np.ndarray:
    """The classic exercise's sequence 0, 1, ..., 99."""
    return np.arange(100, dtype=np.float64)


def sine_series(points: int = SINE_POINTS, seed: int = SINE_SEED) -> np.ndarray:
    """A seeded noisy sum of two sines (periods 40 and 170 steps): a level series with memory worth learning."""
    rng = np.random.default_rng(seed)
    t = np.arange(points, dtype=np.float64)
    clean = np.sin(2 * np.pi * t / 40.0) + 0.4 * np.sin(2 * np.pi * t / 170.0)
    return clean + rng.normal(0.0, 0.05, points)


def lagged_table(points: int = SINE_POINTS, seed: int = SINE_SEED) -> np.ndarray:
    """A follower that repeats a driver ``LAGGED_STEPS`` steps late, ``[points, 2]`` (follower, driver).

    The driver is a slow sine plus an autoregressive wander (its next step is partly a surprise); the follower is
    ``0.8 * driver[t - 3]`` plus a little noise, so its own past predicts it only as well as the driver's past
    predicts the driver, while a model that also reads the driver knows the follower's next value to the noise.
    """
    rng = np.random.default_rng(seed)
    total = points + LAGGED_STEPS
    shocks = rng.normal(0.0, 0.35, total)
    wander = np.empty(total)
    wander[0] = shocks[0]
    for t in range(1, total):
        wander[t] = 0.7 * wander[t - 1] + shocks[t]
    driver = 0.6 * np.sin(2 * np.pi * np.arange(total) / 50.0) + wander
    follower = 0.8 * driver[:points] + rng.normal(0.0, 0.05, points)
    return np.stack([follower, driver[LAGGED_STEPS:]], axis=1)


def load_series(source: str, column: str | None = None, time_column: str | None = None) -> Series:
    """Load a series by name or path.

    Args:
        source: ``counting``, ``sine``, ``lagged`` (two columns: give ``column``), or a path to a ``.csv`` (with a
            header row) or a 1-D ``.npy`` file.
        column: CSV (or ``lagged``) column to use; default the only numeric column.
        time_column: CSV column to sort rows by: numbers (e.g. epoch seconds) or dates, see
            ``edgernn.data.timestamps.time_order``. Duplicate times are refused.

    Returns:
        A ``Series`` of finite float64 values; NaN/inf/empty cells are filled by linear interpolation.

    Raises:
        DataError: a missing, unreadable or damaged file; an unknown or ambiguous column; a non-numeric cell
            (names line and column); a time that does not parse or repeats; a .npy array that is not a 1-D array
            of real numbers; nothing left to fill gaps from. Always one line naming the file.
    """
    if source == "counting":
        return Series(counting_series(), "counting")
    if source == "sine":
        return Series(sine_series(), "sine")
    if source == "lagged":
        table = load_table(source, None if column is None else [column])
        if len(table.names) != 1:
            raise DataError(f"{source} has several numeric columns; choose one with --column from: "
                            f"{_names(table.names)} (or several with --columns)")
        return table.column(0)
    path = Path(source)
    if not path.exists():
        raise DataError(f"data file not found: {source} (expected counting, sine, lagged, a .csv or a .npy file)")
    if path.is_dir():
        raise DataError(f"data path is a directory, not a file: {source}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if column or time_column:
            raise DataError("--column and --time-column apply to CSV files only")
        values, filled = _fill_gaps(_read_npy(path), path.name)
        return Series(values, path.name, filled)
    if suffix in (".csv", ".txt"):
        raw, spacing = _read_csv_column(path, column, time_column)
        values, filled = _fill_gaps(raw, path.name)
        return Series(values, f"{path.name}:{column}" if column else path.name, filled, spacing)
    raise DataError(f"unsupported data file type {suffix or '(none)'!r}: use a .csv or .npy file")


BUILTIN_TABLES = {"counting": (("counting",), counting_series), "sine": (("sine",), sine_series),
                  "lagged": (LAGGED_COLUMNS, lagged_table)}


def load_table(source: str, columns=None, time_column: str | None = None) -> Table:
    """Load several columns of a source, each column's gaps filled and counted on its own.

    Rows, time stamps, cells and files are handled (and refused, in one line naming the file) exactly as
    ``load_series`` handles them; this reads F columns where that reads one.

    Args:
        source: a built-in (``counting``, ``sine``: one column; ``lagged``: ``follower``, ``driver``), a ``.csv``
            with a header row, a 1-D ``.npy`` file (one column, named after the file) or a 2-D one ``[rows, F]``
            (columns named by their indices ``0``..``F-1``; see ``_npy_header``).
        columns: None or ``"all"`` for every numeric column (the time column left out), or a list of column names
            or 0-based indices (an int, or a string of digits that is no column's name), in the order wanted.
        time_column: CSV column to sort rows by (see ``load_series``).

    Returns:
        A ``Table`` of finite float64 values ``[n, F]``.

    Raises:
        DataError: everything ``load_series`` refuses, plus an unknown, repeated or out-of-range column (listing
            the columns there are) or a column with no numbers at all.
    """
    if source in BUILTIN_TABLES:
        names, make = BUILTIN_TABLES[source]
        values = make().reshape(-1, len(names))
        chosen = _select_columns(list(names), columns, source, list(range(len(names))))
        return Table(values[:, chosen], tuple(names[i] for i in chosen), source, (0,) * len(chosen))
    path = Path(source)
    if path.suffix.lower() == ".npy" and path.is_file():
        if time_column:
            raise DataError("--time-column applies to CSV files only")
        array = _read_npy(path, table=True)
        if array.ndim == 1:
            _select_columns([path.stem], columns, path.name, [0])
            values, filled = _fill_gaps(array, path.name)
            return Table(values[:, None], (path.stem,), path.name, (filled,))
        header = _npy_header(array.shape[1], columns)
        chosen = _select_columns(header, columns, path.name, list(range(len(header))))
        filled = [_fill_gaps(array[:, i], f"{path.name} column {header[i]!r}") for i in chosen]
        return Table(np.stack([values for values, _ in filled], axis=1), tuple(header[i] for i in chosen), path.name,
                     tuple(count for _, count in filled))
    if path.suffix.lower() not in (".csv", ".txt") or not path.is_file():
        load_series(source)  # the same one-line refusal: missing, a directory, an unsupported type
    return _read_csv_table(path, columns, time_column)


def _read_csv_table(path: Path, requested, time_column: str | None) -> Table:
    header, cells, lines = _read_csv_cells(path)
    name = path.name
    time_index = None if time_column is None else _column_index(header, time_column, "time column", name)
    chosen = _select_columns(header, requested, name, _numeric_columns(header, cells, time_column), time_index)
    raw = np.stack([_parse_column(cells[i], lines, name, header[i]) for i in chosen], axis=1)
    index_like = [j for j, i in enumerate(chosen) if requested in (None, "all") and _index_like(header[i], raw[:, j])]
    skipped = tuple(header[chosen[j]] for j in index_like) if len(index_like) < len(chosen) else ()  # never all
    if skipped:
        keep = [j for j in range(len(chosen)) if j not in index_like]
        chosen, raw = [chosen[j] for j in keep], raw[:, keep]
    spacing = None if time_index is None else date_spacing(cells[time_index])
    if time_index is not None:
        raw = raw[_row_order(cells[time_index], lines, name, time_column)]
    filled = [_fill_gaps(raw[:, j], f"{name} column {header[i]!r}") for j, i in enumerate(chosen)]
    return Table(np.stack([values for values, _ in filled], axis=1), tuple(header[i] for i in chosen), name,
                 tuple(count for _, count in filled), spacing, skipped)


def _index_like(header: str, values: np.ndarray) -> bool:
    """Row numbers, not data: no header, pandas' ``Unnamed: 0``, or exactly 0..n-1 or 1..n in file order."""
    rows = np.arange(values.size, dtype=np.float64)
    return (not header or re.fullmatch(r"unnamed: ?\d+(_level_\d+)?", header, re.IGNORECASE) is not None
            or (values.size > 2 and (np.array_equal(values, rows) or np.array_equal(values, rows + 1))))


def _npy_header(width: int, requested) -> list[str]:
    """A 2-D .npy's column names: its indices ``0``..``F-1``; or, when exactly F names are asked for and none is an
    index (a model's features, for calibration or verify data), those names in the array's column order: a .npy
    has no header to check them against."""
    header = [str(i) for i in range(width)]
    if (isinstance(requested, (list, tuple)) and len(requested) == width
            and all(isinstance(item, str) and not item.isdigit() for item in requested)):
        return list(requested)
    return header


def _select_columns(header: list[str], requested, name: str, numeric: list[int],
                    time_index: int | None = None) -> list[int]:
    """The indices of the requested columns: every numeric one (None, ``"all"``), or names/indices as listed."""
    if requested is None or requested == "all":
        if not numeric:
            raise DataError(f"{name} has no numeric column; columns: {_names(header)}")
        return numeric
    if isinstance(requested, (str, int)):
        requested = [requested]
    chosen = [_column_position(header, item, name) for item in requested]
    if not chosen:
        raise DataError(f"no columns chosen from {name}; columns: {_names(header)}")
    for index in chosen:
        if chosen.count(index) > 1:
            raise DataError(f"column {header[index]!r} is chosen {chosen.count(index)} times; choose each once")
        if index == time_index:
            raise DataError(f"column {header[index]!r} is the time column; it cannot also be an input")
    return chosen


def _column_position(header: list[str], item, name: str) -> int:
    """A column given by name (first) or by 0-based index (an int, or digits that name no column)."""
    if isinstance(item, str) and (item.strip() in header or not (item.strip().isascii() and item.strip().isdigit())):
        return _column_index(header, item.strip(), "column", name)
    if isinstance(item, bool) or not isinstance(item, (int, str)):
        raise DataError(f"a column is a name or a 0-based index, got {item!r}")
    index = int(item)
    if not 0 <= index < len(header):
        raise DataError(f"column index {index} is out of range for {name} (0 to {len(header) - 1}); columns: "
                        f"{_names(header)}")
    return index


def _read_npy(path: Path, table: bool = False) -> np.ndarray:
    """A .npy's numbers as float64: a 1-D series, or with ``table`` also a 2-D table ``[rows, columns]``."""
    name = path.name
    try:
        with path.open("rb") as handle:
            head = handle.read(len(NPY_MAGIC))
    except OSError as exc:
        raise DataError(f"cannot read {name}: {exc.strerror or exc}") from None
    if not head:
        raise DataError(f"{name} is empty (0 bytes); expected a .npy array")
    if head.startswith(ZIP_MAGIC):
        raise DataError(f"{name} is a zip archive (an .npz?), not a .npy array; save one array with np.save")
    if head != NPY_MAGIC:
        raise DataError(f"{name} is not a .npy array file (no .npy header; pickled data is never loaded)")
    try:
        array = np.load(path, allow_pickle=False)
    except NPY_LOAD_ERRORS as exc:
        raise DataError(f"{name} is not a readable .npy array ({first_line(exc)})") from None
    if array.ndim == 2 and (array.shape[1] == 1 or (array.shape[0] == 1 and not table)):
        array = array.reshape(-1)  # one column (or, for a series, one row)
    if array.ndim != 1 and not (table and array.ndim == 2):
        raise DataError(f"{name} holds an array of shape {array.shape}; expected a 1-D series"
                        + (" or a 2-D table [rows, columns]" if table else
                           " (a 2-D table [rows, columns] takes --columns)" if array.ndim == 2 else ""))
    dtype = array.dtype
    if dtype.names:
        raise DataError(f"{name} holds structured records (fields {_names(dtype.names)}); expected a plain numeric "
                        "array (save one field)")
    if dtype.kind == "c":
        raise DataError(f"{name} holds complex values; expected real numbers (the imaginary part would be lost)")
    if dtype.kind == "b":
        raise DataError(f"{name} holds booleans; expected numbers")
    if dtype.kind in "US":
        raise DataError(f"{name} holds text ({dtype.str}) values; expected numbers")
    if not np.issubdtype(dtype, np.number):
        raise DataError(f"{name} holds {dtype} values; expected numbers")
    with np.errstate(over="ignore"):  # a long double beyond float64 becomes inf: a gap, like 1e999 in a CSV
        return array.astype(np.float64)


def _parse_cell(text: str) -> float | None:
    """A float, or None for a missing cell; raises ValueError for anything else."""
    stripped = text.strip()
    if stripped.lower() in MISSING_MARKERS:
        return None
    return strict_float(stripped)


def _looks_numeric(cells: list[str]) -> bool:
    present = [c for c in cells if c.strip().lower() not in MISSING_MARKERS]
    if not present:
        return True  # an all-missing column is numeric-shaped; the gap filler reports it
    good = 0
    for cell in present:
        try:
            strict_float(cell.strip())
            good += 1
        except ValueError:
            pass
    return good * 2 > len(present)


def _read_csv_column(path: Path, column: str | None, time_column: str | None) -> tuple[np.ndarray, float | None]:
    header, columns, lines = _read_csv_cells(path)
    name = path.name
    time_index = None if time_column is None else _column_index(header, time_column, "time column", name)
    if column is None:
        candidates = _numeric_columns(header, columns, time_column)
        if len(candidates) != 1:
            which = "no numeric column" if not candidates else "several numeric columns"
            raise DataError(f"{name} has {which}; choose one with --column from: {_names(header)}")
        index, column = candidates[0], header[candidates[0]]
    else:
        index = _column_index(header, column, "column", name)
    values = _parse_column(columns[index], lines, name, column)
    if time_index is None:
        return values, None
    return values[_row_order(columns[time_index], lines, name, time_column)], date_spacing(columns[time_index])


def _read_csv_cells(path: Path) -> tuple[list[str], list[list[str]], list[int]]:
    """A CSV file's header, its cells column by column, and the line each data row ends on."""
    rows, lines = _read_rows(path)
    name = path.name
    if not rows:
        raise DataError(f"{name} is empty: expected a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    repeated = next((h for h in header if header.count(h) > 1), None)
    if repeated is not None:  # two inputs of one name: a model's columns, a manifest's, all ambiguous
        raise DataError(f"column {repeated!r} appears {header.count(repeated)} times in the header of {name}; "
                        "rename all but one")
    body, lines = rows[1:], lines[1:]
    if not body:
        raise DataError(f"{name} has a header but no data rows")
    for at, row in enumerate(body):
        if len(row) != len(header):
            raise DataError(f"{name} line {lines[at]}: {len(row)} cells, but the header has {len(header)} columns")
    return header, [[row[i] for row in body] for i in range(len(header))], lines


def _numeric_columns(header: list[str], columns: list[list[str]], time_column: str | None) -> list[int]:
    """The indices of the columns that look numeric, the time column left out."""
    return [i for i, h in enumerate(header) if h != time_column and _looks_numeric(columns[i])]


def _parse_column(cells: list[str], lines: list[int], name: str, column: str) -> np.ndarray:
    """One column's cells as float64, NaN for a missing cell; a cell that is not a number names line and column."""
    values = np.empty(len(cells), dtype=np.float64)
    for at, cell in enumerate(cells):
        try:
            parsed = _parse_cell(cell)
        except ValueError:
            raise DataError(f"{name} line {lines[at]}, column {column!r}: {quoted(cell.strip())} is not a "
                            "number") from None
        values[at] = math.nan if parsed is None else parsed
    return values


def _row_order(times: list[str], lines: list[int], name: str, time_column: str) -> np.ndarray:
    """The permutation that puts the rows in time order; every row needs a time."""
    for at, cell in enumerate(times):
        if cell.strip().lower() in MISSING_MARKERS:
            raise DataError(f"{name} line {lines[at]}, column {time_column!r}: no time; every row needs one to "
                            "be put in order")
    return time_order(times, lines, name, time_column)


def _read_rows(path: Path) -> tuple[list[list[str]], list[int]]:
    """The non-blank rows of a UTF-8 CSV file (a BOM allowed) and the 1-based line each ends on."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path.name} is not a UTF-8 text CSV file (byte 0x{data[exc.start]:02x} on line "
                        f"{line})") from None
    rows, lines = [], []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append(row)
                lines.append(reader.line_num)
    except csv.Error as exc:  # a field over csv's size limit (an unclosed quote?), for one
        raise DataError(f"{path.name} line {reader.line_num}: unreadable CSV ({first_line(exc)})") from None
    return rows, lines


def _column_index(header: list[str], column: str, what: str, name: str) -> int:
    found = [i for i, h in enumerate(header) if h == column]
    if not found:
        raise DataError(f"{what} {column!r} not in {name}; columns: {_names(header)}")
    return found[0]  # one at most: _read_csv_cells refuses a header that names a column twice


def _names(names) -> str:
    """Column or field names for a message: as they are when short and printable, quoted otherwise; 20 at most."""
    shown = [n if n.isprintable() and 0 < len(n) <= 40 else quoted(n) for n in names[:COLUMNS_SHOWN]]
    more = f" and {len(names) - COLUMNS_SHOWN} more" if len(names) > COLUMNS_SHOWN else ""
    return ", ".join(shown) + more


def _fill_gaps(values: np.ndarray, name: str) -> tuple[np.ndarray, int]:
    """Fill NaN/inf by linear interpolation in time (edges take the nearest value); returns the count filled.

    Each filled value is a weighted mean of its two known neighbours, ``a * (1 - w) + b * w``, which stays between
    them: ``np.interp``'s ``a + (b - a) * w`` overflows when ``b - a`` does (neighbours near +-1.7e308).
    """
    bad = ~np.isfinite(values)
    if bad.all():
        raise DataError(f"{name} has no numeric values to train on (every cell is empty or NaN)")
    if not bad.any():
        return values, 0
    known = np.flatnonzero(~bad)
    gaps = np.flatnonzero(bad)
    after = np.searchsorted(known, gaps)  # position in ``known`` of each gap's right neighbour
    left = known[np.maximum(after - 1, 0)]  # before the first known value: the first one
    right = known[np.minimum(after, known.size - 1)]  # after the last: the last one
    weight = (gaps - left) / np.maximum(right - left, 1)
    a, b = values[left], values[right]
    filled = values.copy()
    filled[gaps] = np.clip(a * (1 - weight) + b * weight, np.minimum(a, b), np.maximum(a, b))
    return filled, int(bad.sum())


def model_inputs(values: np.ndarray, preprocessing: Preprocessing, name: str, split: Split | None = None) -> np.ndarray:
    """``preprocessing.transform(values)``, refused unless every model input is a finite float32.

    The model computes in float32, so a value that scaling leaves beyond 3.4e38 (or that overflows float64 on the
    way) would reach it as inf and come out NaN: training losses, predictions and metrics all NaN, and an
    exported model that fails. Refused before any training or conversion, naming the first such value.

    Raises:
        DataError: naming ``name``, the value's position (and split) and what the pipeline made of it.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        z = preprocessing.transform(values)
    bad = np.flatnonzero(~(np.abs(z) <= FLOAT32_MAX))  # NaN fails the comparison too
    if not bad.size:
        return z
    index = int(bad[0]) + preprocessing.lag  # the raw value that made this input
    part = ""
    if split is not None:
        part = ", in the " + ("training" if index < split.train_end else
                              "validation" if index < split.val_end else "test") + " split"
    steps = " and ".join(["differencing"] * preprocessing.difference +
                         ([f"{preprocessing.scale} scaling"] if preprocessing.scale != "none" else []))
    advice = ("use --scale standard, or rescale the data" if preprocessing.scale == "none" else
              "an outlier far outside the training range, or data to rescale")
    raise DataError(f"{name}: value {index + 1} (of {values.size}{part}) becomes {z[bad[0]]:.3g} after "
                    f"{steps or 'no scaling (--scale none)'}: beyond float32, the model's input type; {advice}")


def chronological_split(length: int, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)) -> Split:
    """Split ``length`` points into train/validation/test by time, never shuffled across time."""
    train, val, _ = fractions
    train_end = int(round(length * train))
    val_end = int(round(length * (train + val)))
    return Split(train_end, val_end, length)
