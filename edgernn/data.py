"""Time series in, one clean float64 array out: built-in series, CSV and .npy files, gap filling, splits.

Everything here is numpy and the standard library, so the same loader serves training, calibration and
verification on the host and ``edgernn verify --data`` on a device.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgernn.errors import DataError

BUILTIN_SOURCES = ("counting", "sine")
MISSING_MARKERS = {"", "na", "nan", "n/a", "null", "none", "-"}
SINE_POINTS = 3000
SINE_SEED = 0


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
        time_column: CSV column to sort rows by (numbers, or ISO-8601 text, which sorts correctly as text).

    Raises:
        DataError: missing file, unknown or ambiguous column, a non-numeric cell (names line and column),
            nothing left to fill gaps from.
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
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"{path.name} is not a readable .npy array ({exc})") from None
    array = np.asarray(array)
    if array.ndim == 2 and 1 in array.shape:
        array = array.reshape(-1)
    if array.ndim != 1:
        raise DataError(f"{path.name} holds an array of shape {array.shape}; expected a 1-D series")
    if not np.issubdtype(array.dtype, np.number):
        raise DataError(f"{path.name} holds {array.dtype} values; expected numbers")
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
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except UnicodeDecodeError:
        raise DataError(f"{path.name} is not a UTF-8 text CSV file") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise DataError(f"{path.name} is empty: expected a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    if not body:
        raise DataError(f"{path.name} has a header but no data rows")
    lines = _data_line_numbers(path)
    for at, row in enumerate(body):
        if len(row) != len(header):
            raise DataError(
                f"{path.name} line {lines[at]}: {len(row)} cells, but the header has {len(header)} columns"
            )
    columns = {name: [row[i] for row in body] for i, name in enumerate(header)}
    if time_column is not None and time_column not in columns:
        raise DataError(f"time column {time_column!r} not in {path.name}; columns: {', '.join(header)}")
    if column is None:
        candidates = [n for n in header if n != time_column and _looks_numeric(columns[n])]
        if len(candidates) != 1:
            which = "no numeric column" if not candidates else "several numeric columns"
            raise DataError(f"{path.name} has {which}; choose one with --column from: {', '.join(header)}")
        column = candidates[0]
    elif column not in columns:
        raise DataError(f"column {column!r} not in {path.name}; columns: {', '.join(header)}")
    values = np.empty(len(body), dtype=np.float64)
    for at, cell in enumerate(columns[column]):
        try:
            parsed = _parse_cell(cell)
        except ValueError:
            raise DataError(
                f"{path.name} line {lines[at]}, column {column!r}: {cell.strip()!r} is not a number"
            ) from None
        values[at] = math.nan if parsed is None else parsed
    if time_column is not None:
        values = values[_time_order(columns[time_column], path.name)]
    return values


def _data_line_numbers(path: Path) -> list[int]:
    """1-based file line numbers of the non-blank data rows (after the header), for error messages."""
    numbers = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        seen_header = False
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if not seen_header:
                seen_header = True
                continue
            numbers.append(reader.line_num)
    return numbers


def _time_order(cells: list[str], name: str) -> np.ndarray:
    try:
        keys = np.array([float(c) for c in cells])
    except ValueError:
        keys = np.array([c.strip() for c in cells])
    return np.argsort(keys, kind="stable")


def _fill_gaps(values: np.ndarray, name: str) -> tuple[np.ndarray, int]:
    """Fill NaN/inf by linear interpolation in time (edges take the nearest value); returns the count filled."""
    bad = ~np.isfinite(values)
    if bad.all():
        raise DataError(f"{name} has no numeric values to train on (every cell is empty or NaN)")
    if not bad.any():
        return values, 0
    index = np.arange(values.size)
    filled = values.copy()
    filled[bad] = np.interp(index[bad], index[~bad], values[~bad])
    return filled, int(bad.sum())


def chronological_split(length: int, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)) -> Split:
    """Split ``length`` points into train/validation/test by time, never shuffled across time."""
    train, val, _ = fractions
    train_end = int(round(length * train))
    val_end = int(round(length * (train + val)))
    return Split(train_end, val_end, length)
