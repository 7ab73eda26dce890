"""The gate: each variant's thresholds (from the variant table) and the verdict on one measured variant."""

from __future__ import annotations

import math

from edgernn.errors import EdgernnError
from edgernn.runtime.variants import FLOAT32_MAX_ABS_OF_RANGE, VARIANTS, VariantSpec, parse_variants

MAX_DRIFT = 2.0  # error over the last 10 % of steps / over the first 10 %
DEFAULT_MAX_CLIPPED = 1.0  # % of steps an integer variant may clip its input on
CROSS_BACKEND_FLOAT32 = 1e-5  # float32 variants: every backend within this share of the range
DEFAULT_STEPS = 10_000
COVERAGE_LEVEL = "0.9"  # the interval level the gate holds to its nominal coverage
COVERAGE_TOLERANCE = 0.03  # ... within this many points (both ways: too wide is not honest either)
MIN_COVERAGE_POINTS = 400  # fewer held-out values cannot tell 3 points from chance (standard error 1.5 at 400)


def parse_thresholds(items) -> dict[str, float]:
    """``["tflite-int8=1.5", ...]`` -> ``{"tflite-int8": 1.5}``; one-line errors for anything else."""
    out = {}
    for item in items or ():
        name, sep, value = str(item).partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or not math.isfinite(number) or number < 0:
            raise EdgernnError(f"--max-nrmse takes VARIANT=PERCENT (e.g. tflite-int8=1.5), got {item!r}")
        out[parse_variants(name)[0]] = number
    return out


def thresholds(overrides: dict | None) -> dict[str, float]:
    """Every variant's NRMSE limit (% of range): the table's defaults, with the user's overrides."""
    return {**{name: spec.max_nrmse for name, spec in VARIANTS.items()}, **(overrides or {})}


def reasons(row, spec: VariantSpec, max_nrmse: float, max_clipped: float, difference: bool) -> list[str]:
    """Why a measured variant fails the gate (empty: it passes). ``difference``: the model runs on differences
    (the advice for clipped inputs depends on it)."""
    found = []
    metrics = row.vs_float
    if not metrics["nrmse_pct"] <= max_nrmse:
        found.append(f"NRMSE {metrics['nrmse_pct']:.4g}% > {max_nrmse:g}%")
    if spec.float32 and not metrics["max_abs"] <= FLOAT32_MAX_ABS_OF_RANGE * metrics["range"]:
        found.append(f"max error {metrics['max_abs']:.3g} > {FLOAT32_MAX_ABS_OF_RANGE:g} of range")
    if not row.drift <= MAX_DRIFT:
        found.append(f"drift {row.drift:.3g} > {MAX_DRIFT:g}")
    if row.clipped_pct > max_clipped:
        advice = ("differences outside the calibrated range: export again with --calibration-data that covers them"
                  if difference else "data outside the calibrated range: train with --difference on if the data "
                  "trends, or export again with --calibration-data that covers this range")
        found.append(f"input clipped by quantization on {row.clipped_pct:.1f}% of steps > {max_clipped:g}% "
                     f"({advice})")
    coverage = row.coverage.get(COVERAGE_LEVEL)
    nominal = float(COVERAGE_LEVEL)
    if (coverage is not None and row.coverage_points >= MIN_COVERAGE_POINTS
            and not abs(coverage - nominal) <= COVERAGE_TOLERANCE):
        found.append(f"{COVERAGE_LEVEL} interval covers {100 * coverage:.1f}% of the held-out test values, not "
                     f"{100 * nominal:.0f} +- {100 * COVERAGE_TOLERANCE:.0f}% (the test data's errors differ from the "
                     "validation data's the intervals were set on; on the device, --adaptive follows such a change)")
    if spec.float32:
        for other, difference in row.cross_backend.items():
            if not difference <= CROSS_BACKEND_FLOAT32:
                found.append(f"{other} differs by {difference:.2g} of range")
    return found
