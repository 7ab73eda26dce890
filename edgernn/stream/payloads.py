"""What the MQTT bridge reads from a message and what it publishes: one reading in, one JSON prediction out.

A payload is a plain number (``21.5``, the way most sensor firmware and ``mosquitto_pub -m`` send one) or a JSON
object holding the value under ``field`` and, optionally, its time or sequence number under ``time_field``:
``{"ts": 1718000000.5, "value": 21.5}``. The time may be a number (epoch seconds, a counter: anything that grows)
or an ISO 8601 string; it is what recognises a redelivered reading (see ``bridge``), so a reading without one is
delivered at least once rather than exactly once. Anything else is a bad payload, described in one line.

For a multivariate model (``columns``: its feature names) a reading is a row: a JSON object with a number under
each column's name (``{"ts": ..., "temp": 21.5, "humidity": 40}``; null is a missing value), a JSON array of the
numbers in the model's order, or the numbers as comma-separated text (``21.5,40``).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass

from edgernn.runtime import safe_json
from edgernn.errors import BadPayload, quoted
from edgernn.stream.lines import iso_seconds, parse_value, strict_float

MAX_PAYLOAD = 65536  # a sensor reading is tens of bytes; anything this long is not one


@dataclass(frozen=True)
class Reading:
    value: float | tuple  # NaN/inf are readings too: the predictor's on_nan decides; a row for a multivariate model
    ts: object  # echoed in the prediction: the payload's own time, else the arrival time (epoch seconds)
    key: float | None  # the ordering key of ``ts`` (None: the payload had no time, so no duplicate check)


def order_key(ts) -> float:
    """The ordering key of a ``ts``: a finite number, or an ISO 8601 time in epoch seconds (BadPayload)."""
    if safe_json.finite_number(ts):
        return float(ts)
    moment = iso_seconds(ts) if isinstance(ts, str) else None
    if moment is not None:
        return moment
    raise BadPayload(f"its time {quoted(str(ts))} is neither a finite number nor an ISO 8601 time")


def _number(value, what: str) -> float:
    if value is None:
        return math.nan  # null: a missing reading, as NaN is in the line service
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadPayload(f"JSON payload has no number under {what}")
    return float(value)


def _row(payload: bytes, columns: list[str], time_field: str) -> Reading:
    """A multivariate reading: an object naming the columns, an array, or comma-separated numbers."""
    head = payload.lstrip()[:1]
    if head not in (b"{", b"["):
        try:
            cells = payload.decode("utf-8").strip().split(",")
            row = tuple(strict_float(c) for c in cells)
        except (UnicodeDecodeError, ValueError):
            raise BadPayload(f"it is not {len(columns)} comma-separated numbers ({','.join(columns)})") from None
        if len(row) != len(columns):
            raise BadPayload(f"it has {len(row)} value(s); the model reads {len(columns)} ({','.join(columns)})")
        return Reading(row, time.time(), None)
    try:
        record = safe_json.loads(payload)
    except ValueError as exc:
        raise BadPayload(f"JSON payload: {exc}") from None
    if isinstance(record, list):
        if len(record) != len(columns):
            raise BadPayload(f"its array has {len(record)} value(s); the model reads {len(columns)} "
                             f"({','.join(columns)})")
        return Reading(tuple(_number(v, "every position of its array") for v in record), time.time(), None)
    if not isinstance(record, dict):
        raise BadPayload("a JSON payload must be an object or an array")
    missing = [c for c in columns if c not in record]
    if missing:
        raise BadPayload(f"JSON payload lacks {','.join(missing)[:200]} (the model reads {','.join(columns)})")
    row = tuple(_number(record[c], repr(c)) for c in columns)
    if time_field not in record:
        return Reading(row, time.time(), None)
    return Reading(row, record[time_field], order_key(record[time_field]))


def finite(reading: Reading) -> bool:
    """Whether every value of the reading is a finite number."""
    values = reading.value if isinstance(reading.value, tuple) else (reading.value,)
    return all(math.isfinite(v) for v in values)


def parse(payload: bytes, field: str, time_field: str, features: list[str] | None = None) -> Reading:
    """The reading in ``payload`` (a row when ``features`` names a row model's input columns); raises
    BadPayload (one line) for anything else."""
    if len(payload) > MAX_PAYLOAD:
        raise BadPayload(f"{len(payload)} bytes is too long for a reading (at most {MAX_PAYLOAD})")
    if features is not None:
        return _row(payload, features, time_field)
    if payload.lstrip()[:1] != b"{":
        value, problem = parse_value(payload)
        if value is None:
            raise BadPayload(problem or "it is empty")
        return Reading(value, time.time(), None)
    try:
        record = safe_json.loads(payload)
    except ValueError as exc:
        raise BadPayload(f"JSON payload: {exc}") from None
    if not isinstance(record, dict):
        raise BadPayload("a JSON payload must be an object")
    value = record.get(field)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if value is None and record.get(field, 0) is None:
            value = math.nan  # null: a missing reading, as NaN is in the line service
        else:
            raise BadPayload(f"JSON payload has no number under {field!r} (--field)")
    if time_field not in record:
        return Reading(float(value), time.time(), None)
    ts = record[time_field]
    return Reading(float(value), ts, order_key(ts))


def prediction(reading: Reading, result: dict | float) -> bytes:
    """The published message: the input's time and value beside the prediction (NaN -> null, valid JSON), and
    with intervals ``low``, ``high`` (the next value's interval), ``score`` and ``anomaly`` (this reading). A
    multivariate reading's value is its row, and a model with several outputs predicts an object of them by
    name (``{"temp+1": ..., "temp+2": ...}``)."""
    fields = result if isinstance(result, dict) else {"prediction": result}
    record = {"ts": reading.ts, "value": reading.value, **fields}
    try:  # every number finite (the common case): json's own encoder, without walking the record first
        return json.dumps(record, allow_nan=False).encode()
    except ValueError:
        return safe_json.dumps(record, non_finite="null").encode()


def published_key(payload: bytes) -> float | None:
    """The ordering key of the input's ``ts`` in a published prediction (``prediction``), None for anything else
    (not JSON, no usable ``ts``): read back from the broker, untrusted."""
    if len(payload) > MAX_PAYLOAD or payload.lstrip()[:1] != b"{":
        return None
    try:
        record = safe_json.loads(payload)
        return order_key(record["ts"]) if isinstance(record, dict) and "ts" in record else None
    except (ValueError, TypeError, BadPayload):
        return None


def refusal(reading: Reading, why: str, clock: float | None) -> bytes:
    """What goes to the late topic for a reading that is not stepped: its time and value, ``refused`` (``late``:
    older than the topic's clock; ``ahead``: too far beyond it) and the topic's clock (the key of the last
    reading stepped; null before the first)."""
    return safe_json.dumps({"ts": reading.ts, "value": reading.value, "refused": why, "clock": clock},
                           non_finite="null").encode()
