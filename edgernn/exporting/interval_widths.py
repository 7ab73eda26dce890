"""Each variant's prediction intervals, set at export: the variant itself run statefully over held-out data.

Quantization has its own error, so every variant gets its own half-widths, measured on what it predicts, not on
the float model. The data is the validation split stored with the model (with the values before it warming
the state up), or ``--calibration-data`` when given; never the test split, on which verify measures coverage.
Residuals more than 6 robust standard deviations from their median (spikes in the held-out data) are left out
before the quantile, so anomalies there cannot widen the intervals meant to flag them. The quantiles are taken
over residuals divided by their recent scale (normalized conformal: ``scale_ratios``, warmed on the warm-up
values' residuals too), so the device's intervals follow the residuals' size. The arithmetic (outliers, scale,
split conformal quantiles) is the runtime's (``edgernn.runtime.intervals``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgernn.runtime.intervals import (OUTLIER_MADS, SCALE_CLIP, SCALE_FLOOR, SCALE_HALF_LIFE, conformal_half_widths,
                                       inliers, scale_ratios)
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
    from edgernn.errors import BackendError

    values, context, source = data
    notes = []
    for name, entry in manifest.variants.items():
        try:
            predictor = StreamingPredictor.load(staging, name)
        except BackendError as exc:
            notes.append(f"{name}: no intervals ({exc})")
            continue
        # a one-column (seasonal or blended) model predicts [n, 1]: flat, or the residuals would broadcast
        # into an [n, n] table of every value against every prediction
        predictions = np.asarray(predictor.run(values), dtype=np.float64).reshape(-1)
        residuals = np.asarray(values, dtype=np.float64).reshape(-1)[1:] - predictions[:-1]  # k is for value k + 1
        entry.intervals = scaled_intervals(residuals, max(0, context - 1), source)
    return notes


def scaled_intervals(residuals: np.ndarray, warm_up: int, source: str) -> Intervals:
    """The manifest's intervals from a variant's held-out residuals (the first ``warm_up`` only warm the scale):
    each level's conformal quantile of |residual| / the scale in force for it, outliers left out."""
    residuals = np.asarray(residuals, dtype=np.float64).reshape(-1)
    scored = residuals[warm_up:]
    kept = inliers(scored)
    left_out = int(np.isfinite(scored).sum() - kept.sum())
    note = f"; {left_out} beyond {OUTLIER_MADS:g} robust sigma left out" if left_out else ""
    start = float(np.mean(np.abs(scored[kept]))) if kept.any() else 0.0
    if not start > 0:  # nothing to scale by (no residuals, or all of them 0): fixed half-widths
        return Intervals(list(INTERVAL_LEVELS), conformal_half_widths(scored[kept], INTERVAL_LEVELS),
                         int(kept.sum()), source + note)
    scale = {"half_life": float(SCALE_HALF_LIFE), "start": start, "clip": SCALE_CLIP, "floor": SCALE_FLOOR}
    ratios = scale_ratios(residuals, SCALE_HALF_LIFE, start, SCALE_CLIP, SCALE_FLOOR)[warm_up:]
    scores = np.abs(scored[kept]) / ratios[kept]
    return Intervals(list(INTERVAL_LEVELS), conformal_half_widths(scores, INTERVAL_LEVELS), int(kept.sum()),
                     f"{source}{note}; scaled by the residuals' recent size (half-life {SCALE_HALF_LIFE} steps)",
                     scale)
