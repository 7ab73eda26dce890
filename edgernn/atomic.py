"""Temporary siblings for atomic writes, named after the writing process so leftovers can be cleaned.

A ``kill -9`` leaves a temporary file or directory behind (nothing runs at SIGKILL); the final name is never
touched until the rename. The next writer of the same target removes siblings whose process is gone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


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


def remove_stale(target: Path) -> None:
    """Delete temporary siblings of ``target`` left by writers that no longer run."""
    prefix = _prefix(target)
    parent = target.parent if str(target.parent) else Path(".")
    try:
        entries = list(parent.iterdir())
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
    parent = target.parent if str(target.parent) else Path(".")
    return Path(tempfile.mkdtemp(prefix=f"{_prefix(target)}{os.getpid()}-", dir=parent))


def temp_file_beside(target: Path, suffix: str = "") -> Path:
    """A new empty file next to ``target`` (same filesystem, so ``os.replace`` is atomic)."""
    parent = target.parent if str(target.parent) else Path(".")
    fd, name = tempfile.mkstemp(prefix=f"{_prefix(target)}{os.getpid()}-", suffix=suffix, dir=parent)
    os.close(fd)
    return Path(name)
