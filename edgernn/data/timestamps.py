"""A CSV's time column to a row order: numbers, ISO 8601 and a few unambiguous date forms, standard library only.

Rows are sorted by time before training, so a misread time scrambles the series without a word: text sorting
put ``2024-1-10`` before ``2024-1-9``. Here every cell must parse; a column holds one kind of time (numbers or
dates, all with a UTC offset or all without); day/month order is decided by the data or refused; and no two rows
may share a time.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone

import numpy as np

from edgernn.errors import DataError, first_line, quoted

ACCEPTED = ("numbers (e.g. epoch seconds), ISO 8601 (2024-01-10, 2024-01-10T08:00:00.5, 2024-01-10 08:00+02:00, "
            "...Z), 2024-1-10, 2024/01/10 08:00, and 10/01/2024 or 01/10/2024 when a day above 12 in the column "
            "shows the order")
LINES_SHOWN = 6  # a duplicate's lines listed in an error before "and N more"

_CLOCK = r"(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?"
_YEAR_FIRST = re.compile(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})" + _CLOCK, re.ASCII)  # 2024-1-10, 2024/01/10 8:00
_YEAR_LAST = re.compile(r"(\d{1,2})([-/.])(\d{1,2})\2(\d{4})" + _CLOCK, re.ASCII)  # 10/01/2024: order unknown
_ISO_CHARACTERS = re.compile(r"[0-9TWZtwz:.,+\- ]+", re.ASCII)  # fromisoformat alone takes any separator
_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)


def time_order(cells: list[str], lines: list[int], name: str, column: str) -> np.ndarray:
    """The stable permutation that puts rows in time order.

    Args:
        cells: the time column's cells, one per data row, none of them empty.
        lines: each row's line number in the file, for messages.
        name: the file name, for messages.
        column: the time column's name, for messages.

    Raises:
        DataError: an unparseable time, numbers mixed with dates, an offset on some times only, dates whose
            day/month order the column does not decide, or a time that appears on two rows.
    """
    texts = [cell.strip() for cell in cells]
    numbers = [_number(text) for text in texts]
    if all(n is not None for n in numbers):
        for at, number in enumerate(numbers):
            if not math.isfinite(number):
                raise DataError(f"{name} line {lines[at]}, column {column!r}: {quoted(texts[at])} is not a finite "
                                "number")
        keys = np.array(numbers, dtype=np.float64)
    else:  # exact integer microseconds: years 1 to 9999 fit in int64
        keys = np.array(_date_keys(texts, numbers, lines, name, column), dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    _refuse_duplicates(order, keys, texts, lines, name)
    return order


def date_spacing(cells: list[str]) -> float | None:
    """The median step in seconds between consecutive times of a column already accepted by ``time_order``, when
    they are dates (numbers have no known unit: None), for ``edgernn.data.seasons``' usual periods."""
    texts = [cell.strip() for cell in cells]
    if len(texts) < 2 or all(_number(text) is not None for text in texts):
        return None
    try:
        keys = np.sort(np.array(_date_keys(texts, [None] * len(texts), list(range(len(texts))), "", ""),
                                dtype=np.int64))
    except DataError:
        return None
    return float(np.median(np.diff(keys))) / 1e6


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _date_keys(texts, numbers, lines, name, column) -> list[int]:
    """Microseconds since 1970 (UTC for times with an offset), one per cell."""
    def where(at: int) -> str:
        return f"{name} line {lines[at]}, column {column!r}: {quoted(texts[at])}"

    parsed: list[datetime | None] = [None] * len(texts)
    year_last = {}  # row -> its match, for dates written 10/01/2024: parsed once the column shows the order
    for at, text in enumerate(texts):
        if numbers[at] is not None:
            continue
        match = _YEAR_LAST.fullmatch(text)
        if match is not None:
            year_last[at] = match
            continue
        try:
            parsed[at] = _parse_date(text)
        except _NotATime:
            raise DataError(f"{where(at)} is not a time; accepted: {ACCEPTED}") from None
        except ValueError as exc:
            raise DataError(f"{where(at)} is not a valid time ({first_line(exc, 80)})") from None
    if any(n is not None for n in numbers):
        number = next(at for at, n in enumerate(numbers) if n is not None)
        date = next(at for at, n in enumerate(numbers) if n is None)
        raise DataError(f"{where(number)} is a number, but line {lines[date]} holds a date ({quoted(texts[date])}): "
                        "use one kind of time in a column")
    if year_last:
        day_first = _day_first(year_last, texts, lines, name, column)
        for at, match in year_last.items():
            first, _, second, year = match.group(1, 2, 3, 4)
            day, month = (first, second) if day_first else (second, first)
            try:
                parsed[at] = _build(year, month, day, match.groups()[4:])
            except ValueError as exc:
                raise DataError(f"{where(at)} is not a valid time ({first_line(exc, 80)})") from None
    aware = [at for at, value in enumerate(parsed) if value.utcoffset() is not None]
    if aware and len(aware) < len(parsed):
        naive = next(at for at, value in enumerate(parsed) if value.utcoffset() is None)
        raise DataError(f"{name} column {column!r}: line {lines[aware[0]]} ({quoted(texts[aware[0]])}) has a UTC "
                        f"offset but line {lines[naive]} ({quoted(texts[naive])}) has none; give every time an "
                        "offset, or none")
    epoch = _EPOCH.replace(tzinfo=timezone.utc) if aware else _EPOCH
    return [(value - epoch) // _MICROSECOND for value in parsed]


class _NotATime(Exception):
    """A cell in none of the accepted forms (as opposed to an accepted form with, say, month 13)."""


def _parse_date(text: str) -> datetime:
    """A year-first date (ISO 8601 or 2024/1/10 8:00); ValueError for an impossible one, _NotATime otherwise."""
    if _ISO_CHARACTERS.fullmatch(text):
        try:
            return datetime.fromisoformat(text)  # C code: the common case, fast
        except ValueError as exc:
            if not str(exc).startswith("Invalid isoformat string"):
                raise  # an ISO form with an impossible field ("hour must be in 0..23"): that reason is the message
    match = _YEAR_FIRST.fullmatch(text)
    if match is None:
        raise _NotATime(text)
    year, _, month, day = match.group(1, 2, 3, 4)
    return _build(year, month, day, match.groups()[4:])


def _build(year, month, day, clock) -> datetime:
    hour, minute, second, fraction = clock
    return datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                    int((fraction or "0").ljust(6, "0")))


def _day_first(year_last: dict, texts, lines, name, column) -> bool:
    """Whether dates like 10/01/2024 put the day first, decided by a value above 12 in one position."""
    firsts = {at: int(match.group(1)) for at, match in year_last.items()}
    seconds = {at: int(match.group(3)) for at, match in year_last.items()}
    day_first_at = next((at for at, value in firsts.items() if value > 12), None)
    month_first_at = next((at for at, value in seconds.items() if value > 12), None)
    if day_first_at is not None and month_first_at is not None:
        raise DataError(f"{name} column {column!r}: {quoted(texts[day_first_at])} (line {lines[day_first_at]}) is "
                        f"day/month but {quoted(texts[month_first_at])} (line {lines[month_first_at]}) is "
                        "month/day: one column, two date orders")
    if day_first_at is None and month_first_at is None:
        if all(firsts[at] == seconds[at] for at in year_last):
            return True  # 05/05/2024: either order gives the same date
        at = next(at for at in year_last if firsts[at] != seconds[at])
        year = year_last[at].group(4)
        raise DataError(f"{name}: {quoted(texts[at])} (line {lines[at]}) could be day/month or month/day, and no "
                        f"day above 12 in column {column!r} decides; write ISO 8601 dates ({year}-"
                        f"{seconds[at]:02d}-{firsts[at]:02d} or {year}-{firsts[at]:02d}-{seconds[at]:02d})")
    return day_first_at is not None


def _refuse_duplicates(order: np.ndarray, keys: np.ndarray, texts: list[str], lines: list[int], name: str) -> None:
    ranked = keys[order]
    repeats = np.flatnonzero(ranked[1:] == ranked[:-1])  # ranked[i] == ranked[i + 1]
    if not repeats.size:
        return
    starts = repeats[np.r_[True, np.diff(repeats) > 1]]  # each run of equal keys: its first and last position
    ends = repeats[np.r_[np.diff(repeats) > 1, True]] + 1
    first = int(np.argmin(order[starts]))  # the duplicated time met first in the file (stable: order[start] is)
    rows = order[starts[first] : ends[first] + 1]
    shown = [str(lines[at]) for at in rows[:LINES_SHOWN]]
    listed = ", ".join(shown[:-1]) + f" and {shown[-1]}"
    if rows.size > LINES_SHOWN:
        listed = ", ".join(shown) + f" and {rows.size - LINES_SHOWN} more"
    others = f"; {starts.size} times are duplicated" if starts.size > 1 else ""
    raise DataError(f"{name}: time {quoted(texts[rows[0]])} appears on lines {listed}: duplicate timestamps "
                    f"(remove or aggregate them){others}")
