"""Time series in, one clean float64 array out: built-in series, CSV and .npy files, gap filling, splits.

Everything here is numpy and the standard library, so the same loader serves training, calibration and
verification on the host and ``edgernn verify --data`` on a device.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import tokenize
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgernn.errors import DataError
from edgernn.runtime.errors import first_line, quoted
from edgernn.runtime.preprocessing import Preprocessing
from edgernn.timestamps import time_order

BUILTIN_SOURCES = ("counting", "sine")
MISSING_MARKERS = {"", "na", "nan", "n/a", "null", "none", "-"}
SINE_POINTS = 3000
SINE_SEED = 0
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


def load_series(source: str, column: str | None = None, time_column: str | None = None) -> Series:
    """Load a series by name or path.

    Args:
        source: ``counting``, ``sine``, or a path to a ``.csv`` (with a header row) or a 1-D ``.npy`` file.
        column: CSV column to use; default the only numeric column.
        time_column: CSV column to sort rows by: numbers (e.g. epoch seconds) or dates, see
            ``edgernn.timestamps.time_order``. Duplicate times are refused.

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
    path = Path(source)
    if not path.exists():
        raise DataError(f"data file not found: {source} (expected counting, sine, a .csv or a .npy file)")
    if path.is_dir():
        raise DataError(f"data path is a directory, not a file: {source}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if column or time_column:
            raise DataError("--column and --time-column apply to CSV files only")
        values, filled = _fill_gaps(_read_npy(path), path.name)
        return Series(values, path.name, filled)
    if suffix in (".csv", ".txt"):
        raw = _read_csv_column(path, column, time_column)
        values, filled = _fill_gaps(raw, path.name)
        return Series(values, f"{path.name}:{column}" if column else path.name, filled)
    raise DataError(f"unsupported data file type {suffix or '(none)'!r}: use a .csv or .npy file")


def _read_npy(path: Path) -> np.ndarray:
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
    if array.ndim == 2 and 1 in array.shape:
        array = array.reshape(-1)
    if array.ndim != 1:
        raise DataError(f"{name} holds an array of shape {array.shape}; expected a 1-D series")
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
    return float(stripped)


def _looks_numeric(cells: list[str]) -> bool:
    present = [c for c in cells if c.strip().lower() not in MISSING_MARKERS]
    if not present:
        return True  # an all-missing column is numeric-shaped; the gap filler reports it
    good = 0
    for cell in present:
        try:
            float(cell)
            good += 1
        except ValueError:
            pass
    return good * 2 > len(present)


def _read_csv_column(path: Path, column: str | None, time_column: str | None) -> np.ndarray:
    rows, lines = _read_rows(path)
    name = path.name
    if not rows:
        raise DataError(f"{name} is empty: expected a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    body, lines = rows[1:], lines[1:]
    if not body:
        raise DataError(f"{name} has a header but no data rows")
    for at, row in enumerate(body):
        if len(row) != len(header):
            raise DataError(f"{name} line {lines[at]}: {len(row)} cells, but the header has {len(header)} columns")
    columns = [[row[i] for row in body] for i in range(len(header))]
    time_index = None if time_column is None else _column_index(header, time_column, "time column", name)
    if column is None:
        candidates = [i for i, h in enumerate(header) if h != time_column and _looks_numeric(columns[i])]
        if len(candidates) != 1:
            which = "no numeric column" if not candidates else "several numeric columns"
            raise DataError(f"{name} has {which}; choose one with --column from: {_names(header)}")
        index, column = candidates[0], header[candidates[0]]
    else:
        index = _column_index(header, column, "column", name)
    values = np.empty(len(body), dtype=np.float64)
    for at, cell in enumerate(columns[index]):
        try:
            parsed = _parse_cell(cell)
        except ValueError:
            raise DataError(f"{name} line {lines[at]}, column {column!r}: {quoted(cell.strip())} is not a "
                            "number") from None
        values[at] = math.nan if parsed is None else parsed
    if time_index is not None:
        times = columns[time_index]
        for at, cell in enumerate(times):
            if cell.strip().lower() in MISSING_MARKERS:
                raise DataError(f"{name} line {lines[at]}, column {time_column!r}: no time; every row needs one to "
                                "be put in order")
        values = values[time_order(times, lines, name, time_column)]
    return values


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
    if len(found) > 1:
        raise DataError(f"column {column!r} appears {len(found)} times in the header of {name}; rename all but one")
    return found[0]


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
