"""One writer per target: an advisory ``flock`` on a hidden sibling lock file, held while the process works.

A state file and a bundle are replaced by rename, so locking the file itself would lock an inode that the next
save unlinks; the lock lives in ``.{name}.lock`` beside the target instead. The kernel drops the lock when the
process dies, so a ``kill -9`` never leaves a target locked; the lock file is removed on a clean release (under
the lock, and a locker checks that the file it locked is still the one at the path, so removal is race-free).

Every name of a target shares its lock: the lock file sits beside the path the target resolves to (a symlink,
or a path through a symlinked directory, finds the same lock), and the target as it is when locked (its device
and inode, what a hard link shares) is locked too, for as long as the lock is held.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from pathlib import Path

from edgernn.runtime.atomic import current_umask
from edgernn.errors import BusyError

_HELD: dict[int, tuple[Path, int | None]] = {}  # a held lock's descriptor -> its lock file, the target's own


def lock_path(target: str | os.PathLike) -> Path:
    """``.{name}.lock`` beside the file ``target`` resolves to (symlinks followed, even to a file not there
    yet)."""
    real = Path(os.path.realpath(target))
    return real.with_name(f".{real.name}.lock")


def _busy(what: str, target, holder: str) -> BusyError:
    return BusyError(f"{what} {target} is in use by another edgernn process ({holder}); stop it first, or use "
                     "another file")


def _lock_inode(target: str | os.PathLike, what: str) -> int | None:
    """Lock the target's inode itself (what a hard link shares); its descriptor, or None if there is none yet.

    Raises:
        BusyError: another process holds it under another name.
    """
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # never waits on a FIFO
    except OSError:
        return None  # not there yet, or unreadable (then nothing reads it through another name either)
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        os.close(fd)
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise _busy(what, target, "the same file under another name") from None
    return fd


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
            raise _busy(what, target, f"pid {holder}") from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False  # released and removed by its last holder between our open and our lock
        if same:
            break
        os.close(fd)
    try:
        inode = _lock_inode(target, what)
    except BusyError:
        _drop(path, fd, None)
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _HELD[fd] = (path, inode)
    return fd


def _drop(path: Path, fd: int, inode: int | None) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
    if inode is not None:
        os.close(inode)
    os.close(fd)


def release(target: str | os.PathLike, fd: int) -> None:
    """Remove the lock file (still holding the lock) and drop the lock."""
    path, inode = _HELD.pop(fd, (lock_path(target), None))
    _drop(path, fd, inode)


@contextlib.contextmanager
def locked(target: str | os.PathLike, what: str):
    """``with locked(path, "state file"):`` holds the lock for the block."""
    fd = acquire(target, what)
    try:
        yield
    finally:
        release(target, fd)
