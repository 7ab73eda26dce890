"""Where a bundle may be written: a new directory in a writable parent, or (with ``force``) an existing bundle,
never anything else (``--force`` never deletes a user's directory)."""

from __future__ import annotations

import os
from pathlib import Path

from edgernn.runtime import safe_json
from edgernn.errors import ExportError
from edgernn.runtime.manifest import MANIFEST_NAME, MAX_MANIFEST_BYTES
from edgernn.runtime.manifest_reader import read_inside


def check_target(out: Path, force: bool) -> None:
    """Raise unless a bundle may be written to ``out``.

    Raises:
        ExportError: ``.``/``/`` or an ancestor of the working directory, a file, a symlink, an existing path
            without ``force``, a directory that is not a bundle, a missing or unwritable parent.
    """
    resolved = out.resolve()
    if out.name in ("", ".", "..") or resolved == resolved.parent or resolved in (Path.cwd(), *Path.cwd().parents):
        raise ExportError(f"--out {out} is not a place for a new bundle: name a directory to create")
    if out.is_symlink():
        raise ExportError(f"--out {out} is a symlink; give the directory it points to")
    if out.exists():
        if not force:
            raise ExportError(f"{out} already exists; use --force to replace it")
        if not out.is_dir():
            raise ExportError(f"{out} exists and is not a directory; --force replaces only an edgernn bundle")
        if not is_bundle(out):
            raise ExportError(f"{out} is not an edgernn bundle (no readable manifest.json); --force replaces only "
                              "a bundle, never another directory: remove it yourself or choose another --out")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise ExportError(f"output directory's parent {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ExportError(f"cannot write to {parent}: permission denied")


def is_bundle(directory: Path) -> bool:
    """Whether ``directory`` holds a manifest that parses as an edgernn manifest (any schema version).

    Read like any bundle file (no symlink, no FIFO, bounded), so ``--force`` never waits on or follows one."""
    try:
        data = safe_json.loads(read_inside(directory, MANIFEST_NAME, MAX_MANIFEST_BYTES))
    except ValueError:  # BundleError included
        return False
    return isinstance(data, dict) and isinstance(data.get("schema_version"), int) and isinstance(
        data.get("variants"), dict)
