"""One writer per target: an advisory ``flock`` on a hidden sibling lock file, held while the process works.

A state file and a bundle are replaced by rename, so locking the file itself would lock an inode that the next
save unlinks; the lock lives in ``.{name}.lock`` beside the target instead. The kernel drops the lock when the
process dies, so a ``kill -9`` never leaves a target locked; the lock file is removed on a clean release (under
the lock, and a locker checks that the file it locked is still the one at the path, so removal is race-free).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from edgernn.runtime.atomic import current_umask
from edgernn.runtime.errors import EdgernnError


class BusyError(EdgernnError):
    """Another process holds the lock on a target (exit code 2: the user started two writers)."""


def lock_path(target: str | os.PathLike) -> Path:
    target = Path(target)
    return target.with_name(f".{target.name}.lock")


def acquire(target: str | os.PathLike, what: str) -> int:
    """Lock ``target`` for this process; returns the lock's file descriptor for ``release``.

    Raises:
        BusyError: another live process holds it (names that process).
    """
    path = lock_path(target)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666 & ~current_umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise BusyError(f"{what} {target} is in use by another edgernn process (pid {holder}); "
                            "stop it first, or use another file") from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False  # released and removed by its last holder between our open and our lock
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


def release(target: str | os.PathLike, fd: int) -> None:
    """Remove the lock file (still holding the lock) and drop the lock."""
    with contextlib.suppress(OSError):
        os.unlink(lock_path(target))
    os.close(fd)


@contextlib.contextmanager
def locked(target: str | os.PathLike, what: str):
    """``with locked(path, "state file"):`` holds the lock for the block."""
    fd = acquire(target, what)
    try:
        yield
    finally:
        release(target, fd)
