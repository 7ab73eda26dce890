"""Interpreters behind one small protocol; the predictor never knows which one it drives.

| name | package (extra) | runs |
|---|---|---|
| ``litert`` | ai-edge-litert (``edgernn[litert]``) | .tflite |
| ``tflite-runtime`` | tflite-runtime (``edgernn[tflite]``, numpy<2) | .tflite |
| ``onnxruntime`` | onnxruntime (``edgernn[onnx]``) | .onnx |
| ``numpy`` | none | float32 variants, from the bundle's float weights |
| ``tensorflow`` | tensorflow (only when named) | .tflite |

``auto`` picks the first installed interpreter (in the order above, numpy and tensorflow excluded) that runs the
variant's format.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

from edgernn.runtime.errors import BackendError

if TYPE_CHECKING:  # numpy only for the annotations: the CLI reads BACKENDS without importing numpy
    import numpy as np

BACKENDS = ("litert", "tflite-runtime", "onnxruntime", "numpy", "tensorflow")
AUTO_ORDER = ("litert", "tflite-runtime", "onnxruntime")
_MODULES = {
    "litert": "edgernn.runtime.backends.litert",
    "tflite-runtime": "edgernn.runtime.backends.tflite_runtime",
    "onnxruntime": "edgernn.runtime.backends.onnxruntime",
    "numpy": "edgernn.runtime.backends.numpy",
    "tensorflow": "edgernn.runtime.backends.tensorflow",
}
_EXTRA = {"tflite": "pip install edgernn[litert] (or edgernn[tflite])", "onnx": "pip install edgernn[onnx]"}


def tensor_order(entry) -> tuple[list[str], list[str]]:
    """The positional order of every backend's ``run``: ``[x, *state inputs]`` -> ``[y, *state outputs]``."""
    return ["x", *(i for i, _ in entry.state_pairs)], ["y", *(o for _, o in entry.state_pairs)]


class Backend(Protocol):
    """One loaded model, batch ``streams``: arrays in ``tensor_order``, one invoke per call.

    Positional lists rather than dicts: the step is on the hot path, and the order is fixed at load.
    """

    name: str

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]: ...


def backend_class(name: str):
    """The backend class for ``name``; raises BackendError naming the extra when its package is missing."""
    if name not in _MODULES:
        raise BackendError(f"unknown backend {name!r}; choose from auto, {', '.join(BACKENDS)}")
    module = importlib.import_module(_MODULES[name])
    if not module.available():
        raise BackendError(f"backend {name!r} is not installed: {module.INSTALL_HINT}")
    return module.BACKEND


def choose(name: str, fmt: str, is_float32: bool):
    """Resolve ``auto`` (or check an explicit choice) for a variant of format ``fmt``."""
    if name == "auto":
        for candidate in AUTO_ORDER:
            module = importlib.import_module(_MODULES[candidate])
            if fmt in module.BACKEND.formats and module.available():
                return module.BACKEND
        hint = " (or --backend numpy for a float32 variant)" if is_float32 else ""
        raise BackendError(f"no interpreter for .{fmt} models is installed: {_EXTRA[fmt]}{hint}")
    cls = backend_class(name)
    if name == "numpy":
        if not is_float32:
            raise BackendError("the numpy backend runs float32 variants only (tflite-float32, onnx-float32)")
    elif fmt not in cls.formats:
        raise BackendError(f"backend {name!r} cannot run .{fmt} models")
    return cls


def installed() -> list[str]:
    """Names of the backends that can be used on this machine (numpy always; tensorflow if importable)."""
    names = []
    for name in BACKENDS:
        if importlib.import_module(_MODULES[name]).available():
            names.append(name)
    return names
