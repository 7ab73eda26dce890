"""Where ``edgernn stream`` writes its predictions: stdout, or an append-only ``--output`` file, exactly once.

``--output FILE`` is only ever appended to. Each prediction is appended and fsynced before the state that
produced it is saved, and the state records the file's identity (device and inode) and committed length; a
restart cuts back only the file the state vouches for, and only the uncommitted tail. A different non-empty
file under that name is refused (the state and the file no longer belong together); an empty one (a log rotated
with ``create``) or a missing one is started afresh. The file is locked while a process writes it.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from edgernn.locking import BusyError
from edgernn.runtime.atomic import current_umask
from edgernn.runtime.errors import StateError


class StdoutSink:
    """Predictions to stdout. With a state saved at a step, the line is printed after the save."""

    def __init__(self, out=None):
        self._out = out or sys.stdout
        self._pending: list[str] = []

    def write(self, text: str, deferred: bool) -> None:
        if deferred:
            self._pending.append(text)
        else:
            self._out.write(text)
            self._out.flush()

    def commit(self) -> None:
        """Nothing to make durable in a pipe."""

    def after_save(self) -> None:
        if self._pending:
            self._out.write("".join(self._pending))
            self._out.flush()
            self._pending.clear()

    def position(self) -> dict | None:
        return None

    def close(self) -> None:
        self.after_save()


class FileSink:
    """Append-only output file; ``position()`` is what the state records."""

    def __init__(self, path: Path, record: dict | None, err=None):
        """Open ``path`` for appending, after restoring it to ``record`` (the state's output record, if any).

        Raises:
            StateError: ``path`` is a different non-empty file than the one the state was writing.
            BusyError: another process is writing ``path``.
        """
        self.path = path
        err = err or sys.stderr
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666 & ~current_umask())
        try:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BusyError(f"output file {path} is being written by another process") from None
            note = self._restore(record)
            if note:
                print(note, file=err, flush=True)
        except BaseException:
            os.close(self._fd)
            raise
        self._length = os.fstat(self._fd).st_size

    def _restore(self, record: dict | None) -> str | None:
        if record is None:
            return None
        info = os.fstat(self._fd)
        same = (info.st_dev, info.st_ino) == (record["dev"], record["ino"])
        if not same:
            if info.st_size == 0:
                return None  # a new or rotated-away output: start it
            raise StateError(f"--output {self.path} is not the file this state was writing ({record['path']}, "
                             "device/inode differ); give that file, or --reset-state to start a new output")
        committed = record["bytes"]
        if info.st_size > committed:
            os.ftruncate(self._fd, committed)  # the uncommitted tail of a killed run: its inputs will come again
            os.fsync(self._fd)
            return None
        if info.st_size < committed:
            return (f"note: {self.path} is shorter than the state recorded ({info.st_size} < {committed} bytes): "
                    "something else cut it; appending")
        return None

    def write(self, text: str, deferred: bool) -> None:
        data = memoryview(text.encode())
        while data:
            written = os.write(self._fd, data)
            self._length += written
            data = data[written:]

    def commit(self) -> None:
        os.fsync(self._fd)

    def after_save(self) -> None:
        """The file was committed before the save."""

    def position(self) -> dict:
        info = os.fstat(self._fd)
        return {"path": str(self.path.resolve()), "dev": info.st_dev, "ino": info.st_ino, "bytes": self._length}

    def close(self) -> None:
        os.close(self._fd)
