"""edgernn: train a recurrent network, export quantized step models, run them statefully on a device.

The package root stays light (no TensorFlow, no numpy) so that ``edgernn --help`` and ``import edgernn.runtime``
are fast on a device; the host-side API is loaded on first use.
"""

import importlib
import os

from edgernn.version import __version__

# TensorFlow's C++ logging (oneDNN, CUDA probing) is noise for our users; they can still opt back in.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

_LAZY = {
    "train": ("edgernn.training", "train"),
    "predict": ("edgernn.training", "predict"),
}

# Python sets a subpackage as an attribute of its parent when it is first imported: import the (empty)
# edgernn.export package now, so that the function below is what ``edgernn.export`` stays.
importlib.import_module("edgernn.export")


def export(model_path, out, **options):
    """Export a ``.keras`` model to a bundle directory, then run verify's gate on it (``verify=False`` skips it).

    The options and the result are ``edgernn.pipeline.export``'s (``ExportResult``: bundle, manifest, seconds,
    verify, verify_skipped).
    """
    from edgernn.pipeline import export as export_and_verify

    return export_and_verify(model_path, out, **options)


def __getattr__(name):
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'edgernn' has no attribute {name!r}")


__all__ = ["__version__", "export", *_LAZY]
