"""Saving and restoring a predictor's state: atomic writes, and refusal of a state that is not this model's.

Format 2: an ``.npz`` (read with ``allow_pickle=False``) holding the state arrays and a JSON ``meta`` string:
format version, the identity of what was loaded (see ``StreamingPredictor``), variant, streams, and the caller's
``extra`` (JSON values, e.g. the stream command's input and output positions).

A state is only ever written over nothing, an empty file or another state: a user's file given as the state file
by mistake (``--state-file notes.txt``) is refused, and the messages for it never advise ``--reset-state``.
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import numpy as np

from edgernn.runtime import npz, safe_json
from edgernn.runtime.atomic import write_bytes_atomically
from edgernn.errors import StateError

STATE_FORMAT = 2
MAX_STATE_BYTES = 256 * 1024 * 1024
_RESET = "use --reset-state to start over"
_ELSEWHERE = "edgernn never replaces another file with a state: give another --state-file path"
# every format's first .npz member is meta.npy: a zip local header (30 bytes) naming it
_HEADER = b"PK\x03\x04"
_FIRST_MEMBER = b"meta.npy"


def is_state_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an edgernn state file of any model, variant or format, damaged ones included: a
    regular file opening as an ``.npz`` whose first member is ``meta.npy``. A text file, another archive, a FIFO
    (never waited on) or a missing file are not."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        head = os.pread(fd, 30 + len(_FIRST_MEMBER), 0) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
    finally:
        os.close(fd)
    return (head[:4] == _HEADER and int.from_bytes(head[26:28], "little") == len(_FIRST_MEMBER)
            and head[30:] == _FIRST_MEMBER)


def _replaceable(path: str | os.PathLike) -> bool:
    """Missing, empty, or an edgernn state already (of any model: ``--reset-state`` replaces those)."""
    try:
        info = os.stat(path)
    except OSError:
        return True  # nothing there (or nothing we can see): the write itself succeeds or fails on its own
    return stat.S_ISREG(info.st_mode) and info.st_size == 0 or is_state_file(path)


def check_replaceable(path: str | os.PathLike) -> None:
    """Raise unless a state may be written over ``path`` (``_replaceable``): a user's file under that name is
    never overwritten.

    Raises:
        StateError: ``path`` is something else (one line, naming the way out).
    """
    if not _replaceable(path):
        raise StateError(f"state file {path} is not an edgernn state file; {_ELSEWHERE}")


def _advice(path: Path) -> str:
    """What to do about an unreadable state file: start over if it may be replaced, else leave it alone."""
    return _RESET if _replaceable(path) else _ELSEWHERE


def write_state(path: str | os.PathLike, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write to a temp file in the same directory, fsync, rename over ``path``, fsync the directory.

    Raises:
        StateError: ``path`` is a file that is not an edgernn state (``check_replaceable``).
    """
    check_replaceable(path)
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(safe_json.dumps({"format": STATE_FORMAT, **meta})), **arrays)
    write_bytes_atomically(path, buffer.getvalue())


def read_state(path: str | os.PathLike, expect: dict, bundle_version: int | None = None
               ) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a state file; its ``meta`` must match ``expect`` (identity, variant, streams), and a state saved with
    a signed bundle's version refuses an older signed bundle (``bundle_version``: rollback). Returns (meta,
    arrays).

    Raises:
        StateError: missing, damaged, foreign, or from another edgernn format; one line each.
    """
    path = Path(path)
    if not path.is_file():
        if path.exists():
            raise StateError(f"state file {path} is not a regular file; {_ELSEWHERE}")
        raise StateError(f"state file not found: {path}")
    if path.stat().st_size > MAX_STATE_BYTES:
        raise StateError(f"state file {path} is larger than {MAX_STATE_BYTES} bytes: not an edgernn state file; "
                         f"{_advice(path)}")
    try:
        arrays = npz.load(path.read_bytes(), MAX_STATE_BYTES)
        meta = arrays.pop("meta")
        if meta.shape != () or meta.dtype.kind != "U":
            raise ValueError(f"its meta record is a {meta.dtype} array of shape {meta.shape}, not a JSON string")
        meta = safe_json.loads(str(meta))
    except (ValueError, KeyError, OSError) as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise StateError(f"state file {path} is truncated or not an edgernn state file ({reason}); "
                         f"{_advice(path)}") from None
    if not isinstance(meta, dict):
        raise StateError(f"state file {path} is not an edgernn state file; {_RESET}")
    if meta.get("format") != STATE_FORMAT:
        raise StateError(f"state file {path} has format {meta.get('format')!r} (written by another edgernn "
                         f"version); this one reads format {STATE_FORMAT}: {_RESET}")
    saved = meta.get("bundle_version")
    if bundle_version is not None and isinstance(saved, int) and not isinstance(saved, bool) and saved > bundle_version:
        raise StateError(f"state file {path} was saved with signed bundle version {saved}, and this bundle is version "
                         f"{bundle_version}: an older bundle (a rollback) is refused; deploy version {saved} or newer "
                         "(or --reset-state to accept this one)")
    what = {"identity": "another model or export (its model file, quantization or preprocessing differ)",
            "variant": "another variant", "streams": "another stream count"}
    for key, wanted in expect.items():
        if meta.get(key) != wanted:
            shown = "" if key == "identity" else f" ({key} {meta.get(key)!r}, this predictor has {wanted!r})"
            raise StateError(f"state file {path} belongs to {what.get(key, key)}{shown}; {_RESET}")
    if not isinstance(meta.get("extra", {}), dict):
        raise StateError(f"state file {path} has a malformed 'extra' record; {_RESET}")
    return meta, arrays
