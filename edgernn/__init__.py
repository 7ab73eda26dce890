"""edgernn: train a recurrent network, export quantized step models, run them statefully on a device.

The package root stays light (no TensorFlow, no numpy-heavy work) so that ``edgernn --help`` and
``import edgernn.runtime`` are fast on a device; the host-side API is loaded on first use.
"""

import os

__version__ = "0.1.0"

# TensorFlow's C++ logging (oneDNN, CUDA probing) is noise for our users; they can still opt back in.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

_LAZY = {
    "train": ("edgernn.training", "train"),
    "predict": ("edgernn.training", "predict"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    if name == "export":
        import importlib

        return importlib.import_module("edgernn.export")
    raise AttributeError(f"module 'edgernn' has no attribute {name!r}")


__all__ = ["__version__", "export", *_LAZY]  # export: the callable subpackage edgernn.export
