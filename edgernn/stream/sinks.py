"""Where ``edgernn stream`` writes its predictions: stdout, or an append-only ``--out`` file, exactly once.

``--out FILE`` is only ever appended to. Each prediction is appended and fsynced before the state that
produced it is saved, and the state records the file's identity (device and inode), its committed length, a
sha256 of the last 4 KiB it committed, and how many lines a run killed after that save may have appended
uncommitted (``in_flight``: ``--save-every``; 0 at a clean exit's final save). A restart cuts back only bytes
it can prove are that uncommitted tail: the same file, the committed bytes unchanged, at most ``in_flight``
lines after them. Anything else after them (another run's lines, a note typed by hand, a file that reused the
inode) is refused, never cut. A different non-empty file under that name is refused too; an empty one (a log
rotated with ``create``) or a missing one is started afresh. The file is locked while a process writes it.

To stdout, a reader that closes the pipe (``| head -2``) ends the run: the sink reports ``gone`` and the stream
stops quietly, as ``yes | head`` does.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import stat
import sys
from pathlib import Path

from edgernn.runtime.atomic import current_umask
from edgernn.errors import BusyError, StateError

TAIL_BYTES = 4096  # the committed tail a state fingerprints
MAX_OUTPUT_LINE = 1 << 20  # longer than any line edgernn writes: an uncommitted tail beyond this is not ours


class StdoutSink:
    """Predictions to stdout. With a state saved at a step, the line is printed after the save."""

    def __init__(self, out=None):
        self._out = out or sys.stdout
        self._pending: list[str] = []
        self.gone = False  # the reader closed the pipe (EPIPE): nothing more can be delivered

    def _emit(self, text: str) -> None:
        if self.gone:
            return
        try:
            self._out.write(text)
            self._out.flush()
        except BrokenPipeError:
            self.gone = True

    def write(self, text: str, deferred: bool) -> None:
        if deferred:
            self._pending.append(text)
        else:
            self._emit(text)

    def commit(self) -> None:
        """Nothing to make durable in a pipe."""

    def after_save(self) -> None:
        if self._pending:
            self._emit("".join(self._pending))
            self._pending.clear()

    def position(self, final: bool = False) -> dict | None:
        return None

    def close(self) -> None:
        self.after_save()
        if self.gone:
            _silence(self._out)


def _silence(out) -> None:
    """Point a closed pipe's descriptor at /dev/null: the interpreter's last flush of what is still buffered
    then succeeds, instead of printing "Exception ignored ... BrokenPipeError" at exit."""
    try:
        fd = out.fileno()
    except (AttributeError, OSError, ValueError):  # no descriptor behind it (a test's or embedder's stream)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


class FileSink:
    """Append-only output file; ``position()`` is what the state records."""

    gone = False  # a file does not go away under a writer that holds it open

    def __init__(self, path: Path, record: dict | None, err=None, in_flight: int = 1, option: str = "--out"):
        """Open ``path`` for appending, after restoring it to ``record`` (the state's output record, if any).

        ``in_flight``: the most lines this run writes between two saves (``--save-every``), recorded in each
        save but the last so that a restart knows how much uncommitted tail a kill can have left. ``option``:
        the file's name in messages.

        Raises:
            StateError: ``path`` is a different non-empty file than the one the state was writing, its committed
                bytes changed, or more follows them than a killed run can have written.
            BusyError: another process is writing ``path``.
        """
        self.path, self._option = path, option
        self._in_flight = in_flight
        err = err or sys.stderr
        self._fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666 & ~current_umask())
        try:
            if not stat.S_ISREG(os.fstat(self._fd).st_mode):  # a FIFO blocks once full, cannot be cut or fsynced
                raise StateError(f"{option} {path} is not a regular file (exactly once needs a file it can cut "
                                 f"back); drop {option} and pipe the stream's output instead")
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
        where = f"{self._option} {self.path}"
        if (info.st_dev, info.st_ino) != (record["dev"], record["ino"]):
            if info.st_size == 0:
                return None  # a new or rotated-away output: start it
            raise StateError(f"{where} is not the file this state was writing ({record['path']}, device/inode "
                             "differ); give that file, or --reset-state to start a new output")
        committed = record["bytes"]
        if info.st_size < committed:
            return (f"note: {self.path} is shorter than the state recorded ({info.st_size} < {committed} bytes): "
                    "something else cut it; appending")
        if record.get("tail") is not None and record["tail"] != self._tail_sha(committed):
            raise StateError(f"{where} is not the file this state was writing: its first {committed} bytes are not "
                             f"the ones the state wrote (replaced or rewritten); give another {self._option}, or "
                             "--reset-state to start a new state")
        if info.st_size > committed:
            if record.get("tail") is None or not self._uncommitted(committed, info.st_size, record.get("in_flight", 0)):
                raise StateError(f"{where} has {info.st_size - committed} bytes after the {committed} this state "
                                 f"wrote, not from this state (another run or an edit?): give another "
                                 f"{self._option}, or --reset-state to start a new state after them, or remove them "
                                 f"(truncate -s {committed} {self.path}) to resume")
            os.ftruncate(self._fd, committed)  # the uncommitted tail of a killed run: its inputs will come again
            os.fsync(self._fd)
        return None

    def _tail_sha(self, length: int) -> str:
        start = max(0, length - TAIL_BYTES)
        return hashlib.sha256(os.pread(self._fd, length - start, start) if length else b"").hexdigest()

    def _uncommitted(self, committed: int, size: int, in_flight: int) -> bool:
        """Whether the bytes after ``committed`` can be what a run killed after that save wrote: at most
        ``in_flight`` lines (the last one possibly cut short)."""
        if size - committed > in_flight * MAX_OUTPUT_LINE:
            return False
        tail = os.pread(self._fd, size - committed, committed)
        return tail.count(b"\n") + (not tail.endswith(b"\n")) <= in_flight

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

    def position(self, final: bool = False) -> dict:
        """The state's record of the file: ``final`` for the last save of a run (nothing can follow it)."""
        info = os.fstat(self._fd)
        return {"path": str(self.path.resolve()), "dev": info.st_dev, "ino": info.st_ino, "bytes": self._length,
                "tail": self._tail_sha(self._length), "in_flight": 0 if final else self._in_flight}

    def close(self) -> None:
        os.close(self._fd)
