"""Atomic writes, the one place edgernn replaces a file or a directory: temporary siblings named after the
writing process, fsynced, renamed into place, umask respected.

Files (``staged_file``: states, models, verify.json) are renamed over the target; directories (``stage_directory``
and ``replace_directory``: bundles) are renamed to a new name, never over anything, or swapped with the old one
in one ``renameat2(RENAME_EXCHANGE)``. A ``kill -9`` leaves a temporary file or directory behind (nothing runs at
SIGKILL); the final name is never touched until the rename. The next writer of the same target removes siblings
whose process is gone.
``tempfile`` creates files 0600 and directories 0700 whatever the umask; what edgernn leaves behind gets the
mode ``open()``/``mkdir`` would have given it (0644/0755 under the usual umask 022), so a bundle or a state
file written by a service can be read by the user who copies or inspects it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import tempfile
import threading
from pathlib import Path

_UMASK_LOCK = threading.Lock()
_CLEANED: set[str] = set()  # targets whose stale siblings this process has already removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _prefix(target: Path) -> str:
    return f".{target.name}.tmp-"


def _parent(target: Path) -> Path:
    return target.parent if str(target.parent) else Path(".")


def current_umask() -> int:
    """The process umask (read by setting and restoring it: there is no getter before Python 3.13's os)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def default_mode(path: str | os.PathLike, directory: bool = False) -> None:
    """Give ``path`` the permissions a plain ``open``/``mkdir`` would have: 0666/0777 minus the umask."""
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


def remove_stale(target: Path) -> None:
    """Delete temporary siblings of ``target`` left by writers that no longer run."""
    prefix = _prefix(target)
    try:
        entries = list(_parent(target).iterdir())
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        pid = entry.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def temp_dir_beside(target: Path) -> Path:
    """A new empty directory next to ``target``, for staging a directory that is renamed into place."""
    path = Path(tempfile.mkdtemp(prefix=f"{_prefix(target)}{os.getpid()}-", dir=_parent(target)))
    default_mode(path, directory=True)
    return path


def temp_file_beside(target: Path, suffix: str = "") -> Path:
    """A new empty file next to ``target`` (same filesystem, so ``os.replace`` is atomic)."""
    fd, name = tempfile.mkstemp(prefix=f"{_prefix(target)}{os.getpid()}-", suffix=suffix, dir=_parent(target))
    os.close(fd)
    default_mode(name)
    return Path(name)


def fsync_directory(directory: str | os.PathLike) -> None:
    """Make a rename inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def staged_file(target: str | os.PathLike, suffix: str = ""):
    """``with staged_file(path) as tmp:`` write ``tmp`` (a new empty sibling); on leaving the block it is fsynced
    and renamed over ``path`` (and the directory fsynced), or removed if the block raised. The one way edgernn
    replaces a file: readers see the old file or the new one, never part of either."""
    target = Path(target)
    if str(target) not in _CLEANED:  # once per target and process: a state saved every step stays cheap
        remove_stale(target)
        _CLEANED.add(str(target))
    tmp = temp_file_beside(target, suffix)
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(_parent(target))


def write_bytes_atomically(path: str | os.PathLike, content: bytes) -> None:
    """Replace ``path`` with ``content`` (see ``staged_file``)."""
    with staged_file(path) as tmp:
        tmp.write_bytes(content)


def fsync_tree(directory: Path) -> None:
    """fsync every file of a (flat) staged directory, then the directory itself."""
    for path in Path(directory).iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
    fsync_directory(directory)


def _renameat2(a: Path, b: Path, flags: int) -> int | None:
    """Linux renameat2: 0 on success, an errno on failure, None where the system lacks it."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), flags) == 0:
        return 0
    code = ctypes.get_errno()
    return None if code in (errno.ENOSYS, errno.EINVAL) else code


def replace_directory(staging: Path, target: Path, replace: bool) -> None:
    """Rename the staged directory to ``target``: never over anything unless ``replace`` (RENAME_NOREPLACE), and
    with it in one swap with the old directory (RENAME_EXCHANGE), which is then removed.

    Raises:
        FileExistsError: ``target`` appeared (without ``replace``).
    """
    rename_noreplace, rename_exchange = 1, 2
    if not target.exists() or not replace:
        code = _renameat2(staging, target, rename_noreplace)
        if code is None:  # no renameat2 here: a plain rename, after the caller's checks under its lock
            if target.exists():
                code = errno.EEXIST
            else:
                os.rename(staging, target)
                return
        if code == errno.EEXIST:
            raise FileExistsError(code, os.strerror(code), str(target))
        if code:
            raise OSError(code, os.strerror(code), str(target))
        return
    if _renameat2(staging, target, rename_exchange) == 0:  # staging now holds the old directory
        shutil.rmtree(staging, ignore_errors=True)
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.rename(target, old)
    os.rename(staging, target)
    shutil.rmtree(old, ignore_errors=True)
