"""Saving and restoring a predictor's state: atomic writes, and refusal of a state that is not this model's.

Format 2: an ``.npz`` (read with ``allow_pickle=False``) holding the state arrays and a JSON ``meta`` string:
format version, the identity of what was loaded (see ``StreamingPredictor``), variant, streams, and the caller's
``extra`` (JSON values, e.g. the stream command's input and output positions).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from edgernn.runtime import npz, safe_json
from edgernn.runtime.atomic import write_bytes_atomically
from edgernn.runtime.errors import StateError

STATE_FORMAT = 2
MAX_STATE_BYTES = 256 * 1024 * 1024
_RESET = "use --reset-state to start over"


def write_state(path: str | os.PathLike, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write to a temp file in the same directory, fsync, rename over ``path``, fsync the directory."""
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(safe_json.dumps({"format": STATE_FORMAT, **meta})), **arrays)
    write_bytes_atomically(path, buffer.getvalue())


def read_state(path: str | os.PathLike, expect: dict) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a state file; its ``meta`` must match ``expect`` (identity, variant, streams). Returns (meta, arrays).

    Raises:
        StateError: missing, damaged, foreign, or from another edgernn format; one line each.
    """
    path = Path(path)
    if not path.is_file():
        raise StateError(f"state file not found: {path}")
    if path.stat().st_size > MAX_STATE_BYTES:
        raise StateError(f"state file {path} is larger than {MAX_STATE_BYTES} bytes: not an edgernn state file")
    try:
        arrays = npz.load(path.read_bytes(), MAX_STATE_BYTES)
        meta = arrays.pop("meta")
        if meta.shape != () or meta.dtype.kind != "U":
            raise ValueError(f"its meta record is a {meta.dtype} array of shape {meta.shape}, not a JSON string")
        meta = safe_json.loads(str(meta))
    except (ValueError, KeyError, OSError) as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise StateError(f"state file {path} is truncated or not an edgernn state file ({reason}); {_RESET}") from None
    if not isinstance(meta, dict):
        raise StateError(f"state file {path} is not an edgernn state file; {_RESET}")
    if meta.get("format") != STATE_FORMAT:
        raise StateError(f"state file {path} has format {meta.get('format')!r} (written by another edgernn "
                         f"version); this one reads format {STATE_FORMAT}: {_RESET}")
    what = {"identity": "another model or export (its model file, quantization or preprocessing differ)",
            "variant": "another variant", "streams": "another stream count"}
    for key, wanted in expect.items():
        if meta.get(key) != wanted:
            shown = "" if key == "identity" else f" ({key} {meta.get(key)!r}, this predictor has {wanted!r})"
            raise StateError(f"state file {path} belongs to {what.get(key, key)}{shown}; {_RESET}")
    if not isinstance(meta.get("extra", {}), dict):
        raise StateError(f"state file {path} has a malformed 'extra' record; {_RESET}")
    return meta, arrays
