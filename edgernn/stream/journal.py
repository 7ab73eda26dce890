"""Which predictions the broker has acknowledged since the bridge's last save: what keeps a restart from
publishing them again.

After a ``kill -9`` the readings since the last save are delivered again (they were not acknowledged) and are
stepped again from the saved state, which rebuilds the hidden states exactly. Their predictions were already
published; this journal, beside the state file (``STATE.published``), has a line ``[topic, ts]`` for each one the
broker acknowledged (PUBACK), appended as the acknowledgements arrive, so the restarted bridge steps those
readings without publishing them. It is emptied at each save, whose state then covers them, under a new token
that the saved state names: a journal is obeyed only beside the state it belongs to. (A save that comes while
such readings are still being delivered again carries their lines over: the new state does not cover them yet.)

What this cannot know: a prediction the broker received but whose acknowledgement the killed bridge had not yet
written here, at most the predictions in flight at the kill. The broker's retained predictions (``retained``)
cover those; with ``--no-retain`` they are published a second time (identical, same ``ts``).
A plain ``write`` survives the process's death (the kernel holds it); only a power cut between a write and the
next save can lose a line, which again means a repeat, never a loss.
"""

from __future__ import annotations

import errno
import json
import math
import os
import secrets
import stat
import threading
from pathlib import Path

from edgernn.runtime import safe_json
from edgernn.errors import EdgernnError

MAX_JOURNAL_BYTES = 64 * 1024 * 1024  # a journal is emptied at every save; one this long is not ours


class PublishedJournal:
    """Append-only ``[topic, ts key]`` lines after a ``["#", token]`` header; ``load`` gives each topic's highest
    acknowledged key, only when the header's token is the one the saved state names (a journal left beside
    another state, or by a run killed before its first save, is ignored, never obeyed)."""

    def __init__(self, state_file: Path):
        self.path = Path(f"{state_file}.published")
        self.token: str | None = None  # the header's: the token of the state this journal follows
        self.topics: set[str] = set()  # after ``load``: every topic it names (``announce``d or acknowledged)
        self._fd: int | None = None
        self._lock = threading.Lock()

    def load(self, token: str | None) -> dict[str, float] | None:
        """Each topic's highest key acknowledged since the save that named ``token``; None when the journal is
        not that one (missing, another token, too long). Untrusted input: lines that are not ``[str, number]``,
        a torn last line included, are ignored."""
        if token is None:
            return None
        try:
            fd = _open_regular(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(MAX_JOURNAL_BYTES + 1)
        if len(data) > MAX_JOURNAL_BYTES:
            return None
        lines = data.decode("utf-8", errors="replace").splitlines()
        if not lines or _parsed(lines[0]) != ["#", token]:
            return None
        highest: dict[str, float] = {}
        for line in lines[1:]:
            record = _parsed(line)
            if not (isinstance(record, list) and len(record) == 2 and isinstance(record[0], str)):
                continue
            if record[1] is None:
                self.topics.add(record[0])
            elif safe_json.finite_number(record[1]):
                highest[record[0]] = max(float(record[1]), highest.get(record[0], -math.inf))
        self.topics.update(highest)
        return highest

    def open(self, token: str, keep: bool) -> None:
        """Open for appending under ``token``: kept as it is (``keep``: it is the journal of the state just
        restored) or started afresh."""
        self._fd = _open_regular(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        self.token = token
        if not keep:
            self.reset(token)

    def record(self, topic: str, key: float) -> None:
        """Called from the MQTT network thread when the broker acknowledges the prediction for ``key``."""
        line = (json.dumps([topic, key]) + "\n").encode()
        with self._lock:
            if self._fd is not None:
                os.write(self._fd, line)

    def announce(self, topic: str) -> None:
        """A topic the saved state does not have, written before its first prediction is published: a restart
        after a kill then knows every topic whose retained prediction it must read back (``retained``)."""
        line = (json.dumps([topic, None]) + "\n").encode()
        with self._lock:
            if self._fd is not None:
                os.write(self._fd, line)

    def reset(self, token: str, carried: dict[str, float] | None = None) -> None:
        """Empty, under a new header: after a save (whose state names ``token``) the state covers everything but
        ``carried``, each topic's highest key published and not yet stepped again, written after the header."""
        lines = [["#", token], *([topic, key] for topic, key in (carried or {}).items())]
        with self._lock:
            self.token = token
            if self._fd is not None:
                os.ftruncate(self._fd, 0)
                os.write(self._fd, "".join(json.dumps(line) + "\n" for line in lines).encode())

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def new_token() -> str:
    return secrets.token_hex(8)


def _parsed(line: str):
    try:
        return safe_json.loads(line)
    except (ValueError, TypeError):
        return None


def _open_regular(path: Path, flags: int) -> int:
    """Open ``path`` itself (no symlink followed, no FIFO waited on) and only if it is a regular file."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise EdgernnError(f"{path} is a symlink (the bridge's journal is never followed); remove it") from None
        if exc.errno == errno.ENXIO:  # a FIFO opened for writing with no reader
            raise EdgernnError(f"{path} is not a regular file (the bridge's journal); remove it") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise EdgernnError(f"{path} is not a regular file (the bridge's journal); remove it")
    os.set_blocking(fd, True)
    return fd
