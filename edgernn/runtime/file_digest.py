"""A file's sha256, read in blocks: the manifest's hashes, the c backend's cached library. Standard library
only, imported by both without a circle (the backend table loads the c backend by name)."""

from __future__ import annotations

import hashlib
import os


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
