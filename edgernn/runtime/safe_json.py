"""JSON from untrusted bytes (manifests, model metadata, state files): bounded before it is parsed.

``json.loads`` recurses once per nesting level (a 100,000-deep ``[[[...`` raises RecursionError), turns a
5,000-digit integer into a ValueError (Python's int-from-text limit), and accepts ``NaN``/``Infinity``, which are
not JSON. Everything here is refused up front with a ``ValueError`` whose message the caller puts after the file
name, so every reader reports one line and never a traceback.
"""

from __future__ import annotations

import json
import math
import re

MAX_DEPTH = 32  # edgernn's own files nest at most 6 levels
MAX_NUMBER_CHARS = 40  # longer than any float repr (24) or 64-bit integer (20)
# Python types as a JSON reader's error messages name them ("must be an object, got an array")
JSON_TYPES = {dict: "an object", list: "an array", str: "a string", int: "an integer", float: "a number",
              bool: "true or false", type(None): "null"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_BRACKETS = re.compile(r"[^\[\]{}]+")


def _depth(text: str) -> int:
    depth = deepest = 0
    for char in _BRACKETS.sub("", _STRING.sub('""', text)):
        depth += 1 if char in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _number(text: str, kind):
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"a number with {len(text)} characters (at most {MAX_NUMBER_CHARS})")
    value = kind(text)
    if not math.isfinite(value):
        raise ValueError(f"a number out of range ({text})")
    return value


def _constant(name: str):
    raise ValueError(f"{name} is not a JSON value")


def loads(text: str | bytes, max_depth: int = MAX_DEPTH):
    """Parse ``text`` as strict JSON; raises ValueError (one line) for anything malformed or out of bounds."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if text.count("[") + text.count("{") > max_depth:  # fewer brackets than that cannot nest deeper (an MQTT
        depth = _depth(text)                          # reading's few: no scan of the text)
        if depth > max_depth:
            raise ValueError(f"nested {depth} levels deep (at most {max_depth})")
    try:
        return json.loads(text, parse_int=lambda t: _number(t, int), parse_float=lambda t: _number(t, float),
                          parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON (truncated or damaged?): {exc}") from None
    except RecursionError:  # the bracket count above makes this unreachable; kept as the parser's last word
        raise ValueError("nested too deeply") from None


def finite_number(value) -> bool:
    """Whether ``value`` is a JSON number (int or float, not a bool) with a finite float value; an integer too
    large for a float (possible from Python callers, not from ``loads``) is not."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def dumps(value, non_finite: str = "refuse", **kwargs) -> str:
    """Strict JSON out: never ``NaN``/``Infinity``, which are not JSON.

    Args:
        value: what ``json.dumps`` takes.
        non_finite: ``refuse`` (a ValueError: for files edgernn reads back, where such a number is a bug) or
            ``null`` (for summaries printed for people and scripts, where a figure can be undefined, e.g. the
            RMSE of a model whose predictions are all NaN).
    """
    if non_finite == "null":
        value = _nulled(value)
    elif non_finite != "refuse":
        raise ValueError(f"non_finite must be 'refuse' or 'null', got {non_finite!r}")
    return json.dumps(value, allow_nan=False, **kwargs)


def _nulled(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _nulled(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nulled(item) for item in value]
    return value
