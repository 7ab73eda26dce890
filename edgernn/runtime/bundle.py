"""Opening an untrusted bundle: one validated manifest, and one hash-checked way to read every file it names.

``Bundle.read(name)`` is the only reader of a bundle's files (pip's hash-checking mode, for a bundle): the path
stays inside the bundle, no symlink is followed, the size is bounded, and the sha256 is checked on the very bytes
returned, so a file swapped after the check cannot reach an interpreter, numpy or Keras. The ``.npz`` files are
parsed here too, from those bytes, and checked against the manifest before anyone uses them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from edgernn.runtime import npz, signing
from edgernn.runtime.cells import weight_shapes
from edgernn.errors import BundleError
from edgernn.runtime.signing import Signed
from edgernn.runtime.variants import variant
from edgernn.runtime.manifest import FILE_ROLES, MANIFEST_NAME, Manifest, VariantEntry
from edgernn.runtime.manifest_reader import read_inside, read_manifest

MAX_FILE_BYTES = 256 * 1024 * 1024  # any bundle file; edgernn's own are kilobytes to a few megabytes
MIN_REFERENCE_STEPS = 10
# what each role holds, for "this bundle has no ..." messages
_WHAT = {"reference": "float reference model", "weights": "float weights for the numpy backend",
         "calibration": "calibration sample", "reference_data": "stored reference (exported by an older edgernn); "
         "verify it where TensorFlow is installed"}


class Bundle:
    """A bundle directory and its validated manifest. ``Bundle.open(path)``, then ``read``/``weights``/... ."""

    def __init__(self, path: Path, manifest: Manifest, signed: Signed | None = None):
        self.path = path
        self.manifest = manifest
        self.signed = signed  # the verified signature, when opened with trust

    @classmethod
    def open(cls, path: str | os.PathLike, trust: dict | None = None) -> "Bundle":
        """Read and validate ``manifest.json`` (see ``read_manifest``); with ``trust`` (``signing.load_trust``)
        its exact bytes must be signed by a trusted key first. Raises BundleError."""
        if trust is None:
            return cls(Path(path), read_manifest(path))
        verified = []
        manifest = read_manifest(path, lambda content: verified.append(signing.verify(path, content, trust)))
        return cls(Path(path), manifest, verified[0])

    def variant(self, name: str) -> VariantEntry:
        """The manifest entry of variant ``name``; raises BundleError if it is unknown or not in this bundle."""
        variant(name)  # an unknown name: BundleError listing the known ones
        if name not in self.manifest.variants:
            raise BundleError(f"variant {name!r} is not in this bundle; it has {', '.join(self.manifest.variants)}")
        return self.manifest.variants[name]

    def read(self, name: str) -> bytes:
        """The bytes of a variant's model (``name`` a variant) or of a file role (a ``FILE_ROLES`` key).

        Raises:
            BundleError: not in this bundle, missing, a symlink, outside the bundle, not a regular file, larger
                than ``MAX_FILE_BYTES``, or its sha256 differs from the manifest's.
        """
        if name in FILE_ROLES:
            entry = self.manifest.files.get(name)
            if entry is None:
                raise BundleError(f"this bundle has no {_WHAT[name]}")
        else:
            entry = self.variant(name)
        content = read_inside(self.path, entry.file, MAX_FILE_BYTES)
        if hashlib.sha256(content).hexdigest() != entry.sha256:
            raise BundleError(f"sha256 check failed for {entry.file}: the file differs from the one the manifest names")
        return content

    def arrays(self, role: str) -> dict[str, np.ndarray]:
        """A hash-checked ``.npz`` file's arrays (no pickle); anything unreadable is a one-line BundleError."""
        content = self.read(role)
        try:
            return npz.load(content, MAX_FILE_BYTES)
        except ValueError as exc:
            raise BundleError(f"{self.manifest.files[role].file} is not a readable .npz file of arrays (truncated "
                              f"or damaged?): {exc}") from None

    def weights(self) -> dict[str, np.ndarray]:
        """The float weights for the numpy backend, exactly the keys and shapes the manifest's layers need."""
        arrays = self.arrays("weights")
        file = self.manifest.files["weights"].file
        expected = weight_shapes(self.manifest.model.layers, self.manifest.features, self.manifest.outputs)
        for key, shape in expected.items():
            if key not in arrays:
                raise BundleError(f"{file} lacks {key!r}; the manifest's layers need {', '.join(expected)}")
            _check_array(arrays[key], file, key, shape)
        unknown = sorted(set(arrays) - set(expected))
        if unknown:
            raise BundleError(f"{file} holds {', '.join(map(repr, unknown))}, which the manifest's layers do not use")
        return {key: arrays[key].astype(np.float32) for key in expected}

    def reference_data(self) -> tuple[np.ndarray, np.ndarray]:
        """The inputs and float-model outputs recorded at export (float64): two equal 1-D arrays for a univariate
        model; ``[steps, features]`` and ``[steps, outputs]`` for a multivariate one (``manifest.columns``).

        Outputs may be NaN where the model has no prediction yet (a window still filling); inputs are finite.
        """
        arrays = self.arrays("reference_data")
        file = self.manifest.files["reference_data"].file
        for key in ("inputs", "outputs"):
            if key not in arrays:
                raise BundleError(f"{file} lacks {key!r}")
            _check_array(arrays[key], file, key, None, allow_nan=key == "outputs")
        values, outputs = arrays["inputs"].astype(np.float64), arrays["outputs"].astype(np.float64)
        if not self.manifest.columns.named:  # a plain univariate bundle's file: 1-D, as older edgernn wrote it
            good = values.shape == outputs.shape and values.ndim == 1
            expected = "two equal 1-D arrays"
        else:
            good = (values.ndim == outputs.ndim == 2 and values.shape[0] == outputs.shape[0]
                    and values.shape[1] == self.manifest.features and outputs.shape[1] == self.manifest.outputs)
            expected = f"[steps, {self.manifest.features}] and [steps, {self.manifest.outputs}] arrays"
        if not good or values.shape[0] < MIN_REFERENCE_STEPS:
            raise BundleError(f"{file} has shapes {values.shape} and {outputs.shape}; expected {expected} "
                              f"of at least {MIN_REFERENCE_STEPS} steps")
        return values, outputs

    def calibration_inputs(self) -> np.ndarray:
        """The calibration model inputs recorded at export, finite float32: ``[n]`` (univariate) or
        ``[n, features]``, at least 2 steps."""
        arrays = self.arrays("calibration")
        file = self.manifest.files["calibration"].file
        if "inputs" not in arrays:
            raise BundleError(f"{file} lacks 'inputs'")
        _check_array(arrays["inputs"], file, "inputs", None)
        z = arrays["inputs"].astype(np.float32)
        flat = not self.manifest.columns.named  # a plain univariate bundle's file: 1-D, as older edgernn wrote it
        shape_ok = z.ndim == 1 if flat else (z.ndim == 2 and z.shape[1] == self.manifest.features)
        if not shape_ok or z.shape[0] < 2:
            raise BundleError(f"{file}: 'inputs' has shape {z.shape}; expected "
                              f"{'a 1-D array' if flat else f'[n, {self.manifest.features}]'}"
                              " of at least 2 steps")
        return z


def bundle_around(path: str | os.PathLike, bundle: str | os.PathLike | None = None) -> Path | None:
    """The bundle directory ``path`` lies in (or is), or None: ``bundle`` itself or any directory holding a
    manifest, found on the resolved path (a symlink into a bundle counts). A bundle is the export's to write:
    every writer of user files (``c-array --out``, ``stream --out``) refuses such a place with this."""
    resolved = Path(path).resolve()
    own = Path(bundle).resolve() if bundle is not None else None
    for place in (resolved, *resolved.parents):
        if place == own or (place / MANIFEST_NAME).is_file():
            return place
    return None


def _check_array(array: np.ndarray, file: str, key: str, shape: tuple | None, allow_nan: bool = False) -> None:
    """A real floating-point array of ``shape`` (any shape for None), finite (NaN allowed with ``allow_nan``)."""
    if array.dtype.kind != "f":
        raise BundleError(f"{file}: {key!r} holds {array.dtype} values; expected floating point")
    if shape is not None and array.shape != shape:
        raise BundleError(f"{file}: {key!r} has shape {array.shape}; the manifest's layers need {shape}")
    bad = np.isinf(array) if allow_nan else ~np.isfinite(array)
    if bad.any():
        raise BundleError(f"{file}: {key!r} holds non-finite values")
