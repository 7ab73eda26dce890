"""Error figures on plain arrays: what verify reports and gates on. numpy only, so a device can use them."""

from __future__ import annotations

import numpy as np


def error_metrics(predicted: np.ndarray, reference: np.ndarray) -> dict:
    """MAE, RMSE, NRMSE (% of the reference's range), max and p99 absolute error over finite pairs."""
    predicted, reference = np.asarray(predicted, np.float64), np.asarray(reference, np.float64)
    keep = np.isfinite(predicted) & np.isfinite(reference)
    error = predicted[keep] - reference[keep]
    span = float(np.ptp(reference[keep])) if keep.any() else 0.0
    rmse = float(np.sqrt(np.mean(error**2))) if error.size else float("nan")
    return {
        "mae": float(np.mean(np.abs(error))) if error.size else float("nan"),
        "rmse": rmse,
        "nrmse_pct": 100.0 * rmse / span if span > 0 else float("nan"),
        "max_abs": float(np.max(np.abs(error))) if error.size else float("nan"),
        "p99_abs": float(np.percentile(np.abs(error), 99)) if error.size else float("nan"),
        "range": span,
        "points": int(keep.sum()),
    }


def drift_ratio(predicted: np.ndarray, reference: np.ndarray, share: float = 0.1) -> float:
    """Mean absolute error over the last ``share`` of steps divided by that over the first ``share``.

    Both means get a floor of 1e-6 of the reference's range, so two near-zero errors (a float32 variant)
    give a ratio near 1 instead of noise divided by noise.
    """
    predicted, reference = np.asarray(predicted, np.float64), np.asarray(reference, np.float64)
    keep = np.isfinite(predicted) & np.isfinite(reference)
    error = np.abs(predicted[keep] - reference[keep])
    if error.size < 10:
        return float("nan")
    count = max(1, int(error.size * share))
    floor = 1e-6 * float(np.ptp(reference[keep]) or 1.0)
    return float((error[-count:].mean() + floor) / (error[:count].mean() + floor))
