"""Saving and restoring a predictor's state: atomic writes, and refusal of a state from another model.

Format: an ``.npz`` (read with ``allow_pickle=False``) holding the state arrays and a JSON ``meta`` string
(format version, model hash, variant, streams).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from edgernn.runtime.errors import StateError

STATE_FORMAT = 1


def write_state(path: str | os.PathLike, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write to a temp file in the same directory, fsync, rename over ``path``, fsync the directory."""
    path = Path(path)
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps({"format": STATE_FORMAT, **meta})), **arrays)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(buffer.getbuffer())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    directory = os.open(path.parent or ".", os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def read_state(path: str | os.PathLike, expect: dict) -> dict[str, np.ndarray]:
    """Read a state file, checking that its ``meta`` matches ``expect`` (model hash, variant, streams)."""
    path = Path(path)
    if not path.is_file():
        raise StateError(f"state file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        meta = json.loads(str(arrays.pop("meta")))
    except Exception:  # zipfile, numpy and json all raise their own types for a damaged file
        raise StateError(f"state file {path} is truncated or not an edgernn state file "
                         "(use --reset-state to start over)") from None
    if meta.get("format") != STATE_FORMAT:
        raise StateError(f"state file {path} has format {meta.get('format')!r}; expected {STATE_FORMAT}")
    for key, wanted in expect.items():
        if meta.get(key) != wanted:
            what = {"model_sha256": "another model", "variant": "another variant", "streams": "another stream count"}
            raise StateError(f"state file {path} belongs to {what.get(key, key)} "
                             f"({key} {meta.get(key)!r}, this predictor has {wanted!r}); use --reset-state to start over")
    return arrays
