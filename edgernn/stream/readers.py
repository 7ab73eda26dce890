"""Where ``edgernn stream`` reads its lines, and the one kind of input it may resume in: a regular file.

A position is remembered only where it means something. A regular file is replayable: the state records the
file's identity (device and inode) and a fingerprint of the consumed prefix (sha256 of its first 4 KiB and of the
last line consumed), and a restart resumes at the recorded offset only in that same file; a file replaced by
another (rotated, truncated and rewritten, a new file under the old name) is read from its start, after the rest
of the old one if it was only renamed within its directory (log rotation). A FIFO, a pipe or a terminal is not
replayable: it is read from where it stands, never skipped.

From a pipe, lines are taken one at a time: the bytes up to the next newline are looked at without consuming
them (Linux ``tee(2)`` into a private pipe), then exactly that line is read. So a process killed at any moment
has taken at most the line it was working on from the pipe; everything after it is left there for the next
reader. Where ``tee`` is unavailable (not Linux, not a pipe), a terminal or socket is read a byte at a time.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import select
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HEAD_BYTES = 4096  # the fingerprinted head of a file
MAX_LINE = 65536  # a longer "line" is taken whole and reported as a bad line
POLL_SECONDS = 0.2  # how often a waiting reader checks for a stop request, new data or a rotated file
_SPLICE_F_NONBLOCK = 2


@dataclass
class Line:
    number: int  # 1-based line number in this input (resumed files keep counting)
    raw: bytes  # without the trailing newline


class Stop:
    """Set by a signal handler; readers check it while they wait, the stream loop after each line."""

    def __init__(self):
        self.signal: int | None = None

    def __bool__(self) -> bool:
        return self.signal is not None


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_at(fd: int, offset: int, size: int) -> bytes:
    return os.pread(fd, size, offset) if size > 0 else b""


class FileLines:
    """Lines of a regular file (or stdin redirected from one), with a resumable position.

    With ``follow``, waits at the end for appended lines, and follows the path across rotation (the file renamed
    away and a new one created: the old one is drained first) and truncation (read again from the start).
    """

    replayable = True

    def __init__(self, path: Path | None, fd: int, stop: Stop, follow: bool = False, err=None):
        self.path, self._stop, self._follow, self._err = path, stop, follow, err or sys.stderr
        self._pending: list[tuple[int, Path | None]] = []  # the file to read after this one (rotation)
        self._start(fd)

    def _start(self, fd: int, offset: int = 0, line: int = 0, tail_start: int = 0) -> None:
        self._fd = fd
        info = os.fstat(fd)
        self._dev, self._ino = info.st_dev, info.st_ino
        self._offset, self._line = offset, line
        self._head = bytearray(_read_at(fd, 0, min(offset, HEAD_BYTES)))
        # the last line consumed: where it starts and its bytes (hashed only when a position is saved)
        self._last = (tail_start, _read_at(fd, tail_start, offset - tail_start))
        self._buffer = bytearray()  # read but not yet consumed, starting at self._offset

    # -- the position saved in the state, and resuming from it --------------------------------------------------

    def mark(self) -> tuple:
        """Where the reader stands, cheaply (no hashing, no copy: a new file gets a new head buffer, and a
        buffer only grows): ``position(mark)`` makes the state's record of it."""
        return self._dev, self._ino, self._head, self._offset, self._line, self._last

    def position(self, mark: tuple | None = None) -> dict:
        """The state's record of where the reader stands now (or stood at ``mark``): fingerprints made here, at
        save time, never per line."""
        dev, ino, head, offset, line, (tail_start, tail) = mark or self.mark()
        return {"kind": "file", "dev": dev, "ino": ino, "offset": offset, "line": line,
                "head": _sha(bytes(head[:min(offset, HEAD_BYTES)])), "tail_start": tail_start, "tail": _sha(tail)}

    def resume(self, record: dict) -> str | None:
        """Continue where ``record`` (a ``position()`` from the state) stopped, if it describes this file or one
        it was rotated to; returns a note for the user when the recorded file could not be continued."""
        if record.get("kind") != "file":
            return None
        found = self._matching_file(record)
        where = f"{self.path}" if self.path else "standard input"
        if found is None:
            return (f"note: {where} is not the file the state was reading (device {record['dev']}, inode "
                    f"{record['ino']}, {record['offset']} bytes consumed): that file is gone or was rewritten; "
                    f"reading {where} from its start")
        fd, path = found
        resumed = dict(offset=record["offset"], line=record["line"], tail_start=record["tail_start"])
        if fd == self._fd:
            self._start(fd, **resumed)
            return None
        self._pending.append((self._fd, self.path))  # the recorded file was rotated away: finish it first
        self.path = path
        self._start(fd, **resumed)
        return f"note: finishing {path} (the rotated file the state was reading) before {where}"

    def _fingerprint_matches(self, fd: int, record: dict) -> bool:
        info = os.fstat(fd)
        offset, tail_start = record["offset"], record["tail_start"]
        if (info.st_dev, info.st_ino) != (record["dev"], record["ino"]) or info.st_size < offset:
            return False
        if not 0 <= tail_start <= offset or offset - tail_start > MAX_LINE:
            return False
        return (_sha(_read_at(fd, 0, min(offset, HEAD_BYTES))) == record["head"]
                and _sha(_read_at(fd, tail_start, offset - tail_start)) == record["tail"])

    def _matching_file(self, record: dict) -> tuple[int, Path | None] | None:
        """This file if the record fingerprints it, else a file in the same directory that it was renamed to."""
        if self._fingerprint_matches(self._fd, record):
            return self._fd, self.path
        if self.path is None:
            return None
        try:
            siblings = list(self.path.resolve().parent.iterdir())
        except OSError:
            return None
        for sibling in siblings:
            try:
                info = sibling.stat()
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) == (record["dev"], record["ino"]):
                fd = os.open(sibling, os.O_RDONLY | os.O_CLOEXEC)
                if self._fingerprint_matches(fd, record):
                    return fd, sibling
                os.close(fd)
        return None

    # -- reading -------------------------------------------------------------------------------------------------

    def __iter__(self):
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                yield self._take(newline + 1, newline)
                continue
            if len(self._buffer) > MAX_LINE:
                yield self._take(len(self._buffer), len(self._buffer))
                continue
            chunk = os.pread(self._fd, 1 << 16, self._offset + len(self._buffer))
            if chunk:
                self._buffer += chunk
                continue
            # at the end of the file
            if self._pending:  # a rotated file is finished (a last line without newline included): next file
                if self._buffer:
                    yield self._take(len(self._buffer), len(self._buffer))
                os.close(self._fd)
                fd, self.path = self._pending.pop()
                self._start(fd)
                continue
            if not self._follow:
                if self._buffer:  # a last line without a newline
                    yield self._take(len(self._buffer), len(self._buffer))
                return
            if self._stop:
                return
            if not self._switch_if_rotated():
                time.sleep(POLL_SECONDS)

    def _take(self, consumed: int, length: int) -> Line:
        """Consume ``consumed`` bytes from the buffer as one line of ``length`` bytes (the newline excluded)."""
        start = self._offset
        taken = bytes(self._buffer[:consumed])
        del self._buffer[:consumed]
        if start < HEAD_BYTES:
            self._head += taken[: HEAD_BYTES - start]
        self._offset += consumed
        self._line += 1
        self._last = (start, taken)
        return Line(self._line, taken[:length])

    def _switch_if_rotated(self) -> bool:
        """At the end of a followed file: a new file under the path (rotation) or a truncated one."""
        if self.path is None:
            return False
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            return False  # renamed away, the new one not created yet
        if (now.st_dev, now.st_ino) != (self._dev, self._ino):
            try:
                fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return False
            self._pending.append((fd, self.path))
            return True  # the loop reads the old file to its end once more, then switches
        if now.st_size < self._offset:
            print(f"note: {self.path} was truncated; reading it again from its start", file=self._err, flush=True)
            self._start(self._fd)
            return True
        return False

    def close(self) -> None:
        for fd, _ in self._pending:
            os.close(fd)
        os.close(self._fd)


PAGE = 4096


def _pipe_capacity(fd: int) -> int:
    """The pipe's capacity in bytes (Linux ``F_GETPIPE_SZ``; 64 KiB, the default, where it cannot be read)."""
    import fcntl

    try:
        return fcntl.fcntl(fd, getattr(fcntl, "F_GETPIPE_SZ", 1032))
    except OSError:
        return 65536


def _tee():
    """libc's ``tee(2)``, or None where there is none (not Linux)."""
    try:
        function = ctypes.CDLL(None, use_errno=True).tee
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_size_t, ctypes.c_uint]
    function.restype = ctypes.c_ssize_t
    return function


class StreamLines:
    """Lines of a pipe, FIFO, terminal or socket: not replayable, each line taken from it alone."""

    replayable = False

    def __init__(self, fd: int, stop: Stop, owned: bool = True):
        self._fd, self._stop, self._owned = fd, stop, owned
        self._line = 0
        self._peeked = b""  # bytes seen by tee but not yet consumed
        self._tee = _tee() if stat.S_ISFIFO(os.fstat(fd).st_mode) else None
        if self._tee is not None:
            self._scratch = os.pipe()
            os.set_blocking(self._scratch[0], False)
            # a pipe holds at most its capacity, less up to a page already read from its first buffer: a line
            # without newline that fills it can never grow to MAX_LINE (the writer waits), so take it from here
            self._longest = min(MAX_LINE, _pipe_capacity(fd) - PAGE)

    def mark(self) -> None:
        return None

    def position(self, mark=None) -> dict:
        return {"kind": "stream"}

    def resume(self, record: dict) -> str | None:
        return None  # nothing to skip: what is in a pipe was never read

    def _wait(self) -> bool:
        """Wait until the input is readable (data or end); False if asked to stop."""
        poller = select.poll()
        poller.register(self._fd, select.POLLIN | select.POLLHUP)
        while not self._stop:
            if poller.poll(int(POLL_SECONDS * 1000)):
                return True
        return False

    def _peek(self) -> bytes | None:
        """What is in the pipe now, without consuming it; b"" at the end, None if only a partial line waits."""
        count = self._tee(self._fd, self._scratch[1], MAX_LINE, _SPLICE_F_NONBLOCK)
        if count < 0:
            code = ctypes.get_errno()
            if code == errno.EAGAIN:
                return None
            raise OSError(code, os.strerror(code))
        data = b""
        while len(data) < count:
            data += os.read(self._scratch[0], count - len(data))
        return data

    def __iter__(self):
        if self._tee is not None:
            yield from self._lines_by_peeking()
        else:
            yield from self._lines_by_bytes()

    def _lines_by_peeking(self):
        while True:
            if not self._peeked:
                if not self._wait():
                    return
                seen = self._peek()
                if seen is None:  # readable, yet nothing to see: a writer came and went; look again
                    time.sleep(0.001)
                    continue
                if seen == b"":
                    return  # every writer has gone and the pipe is empty
                self._peeked = seen
            newline = self._peeked.find(b"\n")
            if newline < 0 and len(self._peeked) < self._longest:
                # only part of a line was seen: once the writers are gone nothing more can come, so look once
                # more (the rest may have arrived since) and take what is left as the last line; until then wait
                if self._writers_gone():
                    final = self._peek()
                    if final and final != self._peeked:
                        self._peeked = final
                        continue
                elif self._stop:
                    return
                else:
                    self._peeked = b""
                    time.sleep(0.002)
                    continue
            size = newline + 1 if newline >= 0 else len(self._peeked)
            data = os.read(self._fd, size)  # exactly the bytes seen, and no more
            self._peeked = self._peeked[size:]
            yield self._count(data[:newline] if newline >= 0 else data)

    def _writers_gone(self) -> bool:
        poller = select.poll()
        poller.register(self._fd, select.POLLHUP)
        return any(event & select.POLLHUP for _, event in poller.poll(0))

    def _lines_by_bytes(self):
        data = bytearray()
        while True:
            if not self._wait():
                return
            byte = os.read(self._fd, 1)
            if not byte:
                if data:
                    yield self._count(bytes(data))
                return
            if byte == b"\n" or len(data) >= MAX_LINE:
                yield self._count(bytes(data))
                data.clear()
            else:
                data += byte

    def _count(self, raw: bytes) -> Line:
        self._line += 1
        return Line(self._line, raw)

    def close(self) -> None:
        if self._tee is not None:
            os.close(self._scratch[0])
            os.close(self._scratch[1])
        if self._owned:
            os.close(self._fd)


class ObjectLines:
    """Lines of a Python file object with no descriptor behind it (an embedding program's or a test's stdin):
    read as it yields them, not replayable."""

    replayable = False

    def __init__(self, handle, stop: Stop):
        self._handle, self._stop = getattr(handle, "buffer", handle), stop

    def mark(self) -> None:
        return None

    def position(self, mark=None) -> dict:
        return {"kind": "stream"}

    def resume(self, record: dict) -> str | None:
        return None

    def __iter__(self):
        for number, line in enumerate(self._handle, start=1):
            raw = line if isinstance(line, bytes) else line.encode("utf-8", "surrogateescape")
            yield Line(number, raw[:-1] if raw.endswith(b"\n") else raw)
            if self._stop:
                return

    def close(self) -> None:
        """The caller owns the file object."""


def open_input(source: str | None, stop: Stop, follow: bool = False, err=None):
    """``FileLines`` or ``StreamLines`` for a path, or for stdin (None or ``-``); None if stopped while waiting.

    With ``follow``, a path that does not exist yet (a log between rotation and re-creation) is waited for.

    A FIFO opened with ``follow`` is held open for writing too, so the next writer is waited for instead of
    ending the stream when the last one leaves.
    """
    if source in (None, "-"):
        try:
            fd = sys.stdin.fileno()
        except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation: no descriptor behind it
            return ObjectLines(sys.stdin, stop)
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return FileLines(None, os.dup(fd), stop, False, err)
        return StreamLines(fd, stop, owned=False)
    path = Path(source)
    if follow and not path.exists():
        print(f"note: {path} does not exist yet; waiting for it (--follow)", file=err or sys.stderr, flush=True)
        while not path.exists():
            if stop:
                return None
            time.sleep(POLL_SECONDS)
    mode = os.stat(path).st_mode
    if stat.S_ISFIFO(mode):
        # O_NONBLOCK: the open returns at once (a blocking open would wait for a writer, deaf to SIGTERM);
        # readers then poll, which waits for the first writer
        fd = os.open(path, (os.O_RDWR if follow else os.O_RDONLY | os.O_NONBLOCK) | os.O_CLOEXEC)
        os.set_blocking(fd, True)
        return StreamLines(fd, stop)
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "input is a directory", str(path))
    if not stat.S_ISREG(mode):
        return StreamLines(os.open(path, os.O_RDONLY | os.O_CLOEXEC), stop)
    return FileLines(path, os.open(path, os.O_RDONLY | os.O_CLOEXEC), stop, follow, err)
