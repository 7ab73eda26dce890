"""edgernn: train a recurrent network, export quantized step models, run them statefully on a device.

The package root stays light (no TensorFlow, no numpy) so that ``edgernn --help`` and ``import edgernn.runtime``
are fast on a device; the host-side API is loaded on first use.
"""

from __future__ import annotations

import importlib
import os

from edgernn.version import __version__

# TensorFlow's C++ logging (oneDNN, CUDA probing) is noise for our users; they can still opt back in.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

_LAZY = {
    "train": ("edgernn.training.trainer", "train"),
    "predict": ("edgernn.training.trainer", "predict"),
}


def export(model_path, out, *, verify: bool = True, verify_steps: int | None = None, **options):
    """Export a ``.keras`` model to a bundle directory, then run verify's gate on it: the one place the two meet.

    ``edgernn.exporting.bundle_writer`` writes bundles and never imports ``edgernn.verification`` (which imports the
    export side through diagnosis); composing them here, above both, keeps every import arrow pointing one way.

    Args:
        verify: run verify's gate on the new bundle and store ``verify.json`` in it (``result.verify``); a model
            without held-out data recorded skips it (``result.verify_skipped`` says why).
        verify_steps: the gate's steps (default: verify's, 10,000).
        options: ``edgernn.exporting.bundle_writer.export_bundle``'s (variants, calibration_data, calibration_steps,
            force, int8_weights, quiet, columns, targets, headroom).

    Returns:
        ``ExportResult``: bundle, manifest, seconds, verify, verify_skipped.

    Raises:
        ExportError, ModelError, BundleError: one line each.
    """
    from edgernn.exporting.bundle_writer import export_bundle

    result = export_bundle(model_path, out, **options)
    if verify:
        _gate(result, verify_steps)
    return result


def _gate(result, steps: int | None = None) -> None:
    """Verify's gate on a new bundle, stored in it as ``verify.json`` (``result.verify``/``verify_skipped``)."""
    from edgernn.errors import DataError
    from edgernn.verification import DEFAULT_STEPS, verify as run_verify, write_verify_json

    try:
        result.verify = run_verify(result.bundle, steps=steps or DEFAULT_STEPS)
    except DataError as exc:  # a user's own model records no held-out data: the gate needs --data, via verify
        result.verify_skipped = f"{exc} (run edgernn verify {result.bundle} --data ...)"
        return
    write_verify_json(result.verify, result.bundle)


def __getattr__(name):
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'edgernn' has no attribute {name!r}")


__all__ = ["__version__", "export", *_LAZY]
