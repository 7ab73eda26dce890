"""Each variant's prediction intervals, set at export: the variant itself run statefully over held-out data.

Quantization has its own error, so every variant gets its own half-widths, measured on what it predicts, not on
the float model. The data is the validation split stored with the model (with the values before it warming
the state up), or ``--calibration-data`` when given; never the test split, on which verify measures coverage.
Residuals more than 6 robust standard deviations from their median (spikes in the held-out data) are left out
before the quantile, so anomalies there cannot widen the intervals meant to flag them. The arithmetic (outliers,
split conformal quantiles) is the runtime's (``edgernn.runtime.intervals``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgernn.runtime.intervals import OUTLIER_MADS, conformal_half_widths, without_outliers
from edgernn.runtime.manifest import INTERVAL_LEVELS, Intervals, Manifest

WARM_UP = 256  # values of --calibration-data that only warm the state up (at most a tenth of it)


def held_out(metadata, calibration_data, raw_calibration) -> tuple[np.ndarray, int, str] | None:
    """(raw values, how many only warm the state up, where they came from), or None when there are none."""
    if calibration_data is not None:
        raw = np.asarray(raw_calibration, dtype=np.float64)
        context = min(WARM_UP, raw.size // 10)
        return raw, context, f"the calibration data ({raw.size - context} residuals after {context} warm-up values)"
    values = metadata.val_values if metadata is not None else None
    if values is None:
        return None
    context = metadata.data.val_context
    return values, context, (f"the validation split ({values.size - context} residuals, the state warmed on the "
                             f"{context} values before it)")


def calibrate(staging: Path, manifest: Manifest, data: tuple[np.ndarray, int, str]) -> list[str]:
    """Set ``intervals`` on every variant of the bundle staged at ``staging``; returns notes for the variants no
    interpreter here could run (they keep none)."""
    from edgernn.runtime import StreamingPredictor
    from edgernn.runtime.errors import BackendError

    values, context, source = data
    notes = []
    for name, entry in manifest.variants.items():
        try:
            predictor = StreamingPredictor.load(staging, name)
        except BackendError as exc:
            notes.append(f"{name}: no intervals ({exc})")
            continue
        predictions = predictor.run(values)
        residuals = values[1:] - predictions[:-1]  # prediction k is for value k + 1
        residuals = residuals[max(0, context - 1):]  # only values after the warm-up are scored
        residuals = residuals[np.isfinite(residuals)]
        kept = without_outliers(residuals)
        left_out = residuals.size - kept.size
        note = f"; {left_out} beyond {OUTLIER_MADS:g} robust sigma left out" if left_out else ""
        entry.intervals = Intervals(list(INTERVAL_LEVELS), conformal_half_widths(kept, INTERVAL_LEVELS),
                                    int(kept.size), source + note)
    return notes
