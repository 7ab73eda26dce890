"""What the MQTT bridge reads from a message and what it publishes: one reading in, one JSON prediction out.

A payload is a plain number (``21.5``, the way most sensor firmware and ``mosquitto_pub -m`` send one) or a JSON
object holding the value under ``field`` and, optionally, its time or sequence number under ``time_field``:
``{"ts": 1718000000.5, "value": 21.5}``. The time may be a number (epoch seconds, a counter: anything that grows)
or an ISO 8601 string; it is what recognises a redelivered reading (see ``bridge``), so a reading without one is
delivered at least once rather than exactly once. Anything else is a bad payload, described in one line.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from edgernn.runtime import safe_json
from edgernn.runtime.errors import quoted
from edgernn.stream.lines import parse_value

MAX_PAYLOAD = 65536  # a sensor reading is tens of bytes; anything this long is not one


@dataclass(frozen=True)
class Reading:
    value: float  # NaN/inf are readings too: the predictor's on_nan decides
    ts: object  # echoed in the prediction: the payload's own time, else the arrival time (epoch seconds)
    key: float | None  # the ordering key of ``ts`` (None: the payload had no time, so no duplicate check)


class BadPayload(ValueError):
    """A message that is not a reading; the text says why, for a log line naming its topic."""


def _order_key(ts) -> float:
    if safe_json.finite_number(ts):
        return float(ts)
    if isinstance(ts, str):
        try:
            moment = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
    raise BadPayload(f"its time {quoted(str(ts))} is neither a finite number nor an ISO 8601 time")


def parse(payload: bytes, field: str, time_field: str) -> Reading:
    """The reading in ``payload``; raises BadPayload (one line) for anything else."""
    if len(payload) > MAX_PAYLOAD:
        raise BadPayload(f"{len(payload)} bytes is too long for a reading (at most {MAX_PAYLOAD})")
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
    return Reading(float(value), ts, _order_key(ts))


def prediction(reading: Reading, result: dict | float) -> bytes:
    """The published message: the input's time and value beside the prediction (NaN -> null, valid JSON), and
    with intervals ``low``, ``high`` (the next value's interval), ``score`` and ``anomaly`` (this reading)."""
    fields = result if isinstance(result, dict) else {"prediction": result}
    return safe_json.dumps({"ts": reading.ts, "value": reading.value, **fields}, non_finite="null").encode()


def published_key(payload: bytes) -> float | None:
    """The ordering key of the input's ``ts`` in a published prediction (``prediction``), None for anything else
    (not JSON, no usable ``ts``): read back from the broker, untrusted."""
    if len(payload) > MAX_PAYLOAD or payload.lstrip()[:1] != b"{":
        return None
    try:
        record = safe_json.loads(payload)
        return _order_key(record["ts"]) if isinstance(record, dict) and "ts" in record else None
    except (ValueError, TypeError, BadPayload):
        return None
