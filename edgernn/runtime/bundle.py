"""Opening an untrusted bundle: validated manifest, paths kept inside, hashes checked before any interpreter.

The bytes that were hashed are the bytes handed to the interpreter (no second read of the file), so a file
swapped after the check cannot reach it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from edgernn.runtime.errors import BundleError
from edgernn.runtime.manifest import ALL_VARIANTS, Manifest, VariantEntry, read_manifest, resolve_inside

MAX_MODEL_BYTES = 256 * 1024 * 1024


def read_verified(bundle: str | os.PathLike, relative: str, sha256: str) -> bytes:
    """A bundle member's bytes, after the path and the sha256 check."""
    path = resolve_inside(bundle, relative)
    if not path.is_file():
        raise BundleError(f"bundle file missing: {relative}")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise BundleError(f"bundle file {relative} is larger than {MAX_MODEL_BYTES} bytes")
    content = path.read_bytes()
    if hashlib.sha256(content).hexdigest() != sha256:
        raise BundleError(f"sha256 check failed for {relative}: the file differs from the one the manifest names")
    return content


def variant_entry(manifest: Manifest, variant: str) -> VariantEntry:
    if variant not in ALL_VARIANTS:
        raise BundleError(f"unknown variant {variant!r}; choose from {', '.join(ALL_VARIANTS)}")
    if variant not in manifest.variants:
        raise BundleError(f"variant {variant!r} is not in this bundle; it has {', '.join(manifest.variants) or 'none'}")
    return manifest.variants[variant]


def load_weights(bundle: str | os.PathLike, manifest: Manifest) -> dict[str, np.ndarray]:
    """The float weights for the numpy backend (``.npz``, read without pickle)."""
    import io

    entry = manifest.files.get("weights")
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
        raise BundleError("this bundle has no float weights for the numpy backend")
    content = read_verified(bundle, entry.get("file"), entry["sha256"])
    try:
        with np.load(io.BytesIO(content), allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (ValueError, OSError) as exc:
        raise BundleError(f"weights file is unreadable: {exc}") from None


def open_bundle(bundle: str | os.PathLike) -> tuple[Path, Manifest]:
    path = Path(bundle)
    return path, read_manifest(path)
