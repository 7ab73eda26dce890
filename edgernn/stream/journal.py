"""Which predictions the broker has acknowledged since the bridge's last save: what keeps a restart from
publishing them again.

After a ``kill -9`` the readings since the last save are delivered again (they were not acknowledged) and are
stepped again from the saved state, which rebuilds the hidden states exactly. Their predictions were already
published; this journal, beside the state file (``STATE.published``), has a line ``[topic, ts]`` for each one the
broker acknowledged (PUBACK), appended as the acknowledgements arrive, so the restarted bridge steps those
readings without publishing them. It is emptied at each save, whose state then covers them.

What is left: a prediction the broker received but whose acknowledgement the killed bridge had not yet
written here is published a second time (identical, same ``ts``): at most the predictions in flight at the kill.
A plain ``write`` survives the process's death (the kernel holds it); only a power cut between a write and the
next save can lose a line, which again means a repeat, never a loss.
"""

from __future__ import annotations

import json
import math
import os
import threading
from pathlib import Path

from edgernn.runtime import safe_json

MAX_JOURNAL_BYTES = 64 * 1024 * 1024  # a journal is emptied at every save; one this long is not ours


class PublishedJournal:
    """Append-only ``[topic, ts key]`` lines; ``load`` gives each topic's highest acknowledged key."""

    def __init__(self, state_file: Path):
        self.path = Path(f"{state_file}.published")
        self._fd: int | None = None
        self._lock = threading.Lock()

    def load(self) -> dict[str, float]:
        """Each topic's highest key acknowledged since the last save (a journal is untrusted input: lines that
        are not ``[str, number]``, a torn last line included, are ignored)."""
        try:
            if self.path.stat().st_size > MAX_JOURNAL_BYTES:
                return {}
            text = self.path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return {}
        highest: dict[str, float] = {}
        for line in text.splitlines():
            try:
                topic, key = safe_json.loads(line)
            except (ValueError, TypeError):
                continue
            if isinstance(topic, str) and safe_json.finite_number(key):
                highest[topic] = max(float(key), highest.get(topic, -math.inf))
        return highest

    def open(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def record(self, topic: str, key: float) -> None:
        """Called from the MQTT network thread when the broker acknowledges the prediction for ``key``."""
        line = (json.dumps([topic, key]) + "\n").encode()
        with self._lock:
            if self._fd is not None:
                os.write(self._fd, line)

    def clear(self) -> None:
        """After a save: the state covers everything recorded."""
        with self._lock:
            if self._fd is not None:
                os.ftruncate(self._fd, 0)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
