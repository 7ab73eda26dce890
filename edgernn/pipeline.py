"""Export, then verify's gate on what was exported: the one place the two meet, above both.

``edgernn.export.bundle`` writes bundles and never imports ``edgernn.verification`` (which imports the export
side through diagnosis); composing them here keeps every import arrow pointing one way.
"""

from __future__ import annotations

import os

from edgernn.export.bundle import ExportResult, export_bundle
from edgernn.runtime.errors import DataError
from edgernn.verification import DEFAULT_STEPS, verify as run_verify, write_verify_json


def export(model_path: str | os.PathLike, out: str | os.PathLike, *, verify: bool = True,
           verify_steps: int | None = None, **options) -> ExportResult:
    """Export ``model_path`` (``.keras``) to the bundle directory ``out``, then (``verify``) run the gate.

    Args:
        verify: run verify's gate on the new bundle and store ``verify.json`` in it (``result.verify``); a model
            without held-out data recorded skips it (``result.verify_skipped`` says why).
        verify_steps: the gate's steps (default: verify's, 10,000).
        options: ``edgernn.export.bundle.export_bundle``'s (variants, calibration_data, calibration_steps, force,
            int8_weights, quiet, columns, targets, headroom).

    Raises:
        ExportError, ModelError, BundleError: one line each.
    """
    result = export_bundle(model_path, out, **options)
    if verify:
        gate(result, verify_steps)
    return result


def gate(result: ExportResult, steps: int | None = None) -> None:
    """Verify's gate on a new bundle, stored in it as ``verify.json`` (``result.verify``/``verify_skipped``)."""
    try:
        result.verify = run_verify(result.bundle, steps=steps or DEFAULT_STEPS)
    except DataError as exc:  # a user's own model records no held-out data: the gate needs --data, via verify
        result.verify_skipped = f"{exc} (run edgernn verify {result.bundle} --data ...)"
        return
    write_verify_json(result.verify, result.bundle)
