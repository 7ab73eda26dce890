"""What every ``step`` taking arrays accepts: values or rows, one per stream, checked in one line.

Its own module so that the predictor and the ``Monitor`` around it (``intervals.py``) share it without importing
each other: the predictor imports intervals (``monitor()``), never the other way.
"""

from __future__ import annotations

import numpy as np

from edgernn.errors import EdgernnError

# model-input values (after scaling) are held within +-this: a reading of 1e308 is finite, but in float32 it
# becomes inf and a NaN state for good (and cannot be rounded to an integer); every cell has saturated far sooner
INPUT_LIMIT = 1e6


def values_per_stream(x, streams: int) -> np.ndarray:
    """``x`` as ``[streams]`` float64, or a one-line EdgernnError: what every ``step`` taking arrays accepts."""
    if isinstance(x, (str, bytes, dict, set)):
        raise EdgernnError(f"step expects {streams} value(s), one per stream, got {type(x).__name__}")
    try:
        values = np.array(x, dtype=np.float64).reshape(-1)  # any shape of that size; None is a missing value
    except (TypeError, ValueError):
        raise EdgernnError(f"step expects {streams} value(s), one per stream, got a ragged or non-numeric "
                           "sequence") from None
    if values.size != streams:
        raise EdgernnError(f"step expects {streams} value(s), one per stream, got {values.size}")
    return values


def rows_per_stream(x, streams: int, features: int) -> np.ndarray:
    """``x`` as ``[streams, features]`` float64 (one row of F numbers per stream), or a one-line EdgernnError."""
    wanted = f"{features} number(s) per stream for {streams} stream(s)"
    if isinstance(x, (str, bytes, dict, set)):
        raise EdgernnError(f"step expects {wanted}, got {type(x).__name__}")
    try:
        given = np.asarray(x)
    except (TypeError, ValueError):
        raise EdgernnError(f"step expects {wanted}, got a ragged or non-numeric sequence") from None
    if given.dtype.kind not in "biuf":
        raise EdgernnError(f"step expects {wanted}, got {given.dtype} values")
    rows = given.astype(np.float64)
    if rows.size != streams * features or rows.ndim > 2 or (rows.ndim > 1 and rows.shape[-1] != features):
        raise EdgernnError(f"step expects {wanted} (shape [{features}]"
                           f"{'' if streams == 1 else f' or [{streams}, {features}]'}), got shape {list(rows.shape)}")
    return rows.reshape(streams, features)
