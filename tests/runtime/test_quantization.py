"""The scalar quantizer (one-stream fast paths) and the array one give the same integers, one ulp around half
steps included: rounding ``value / scale + zero_point`` is not rounding ``value / scale`` then adding it."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from edgernn.runtime.quantization import quantize, scalar_quantizer


def near_half_steps(scale: float, zero_point: int, ulps: int = 3) -> np.ndarray:
    """Values a few ulps either side of every half step of an int8 tensor's range."""
    halves = (np.arange(-128, 128) - zero_point + 0.5) * scale
    around = [halves]
    for direction in (np.inf, -np.inf):
        value = halves
        for _ in range(ulps):
            value = np.nextafter(value, direction)
            around.append(value)
    return np.concatenate(around)


def test_scalar_and_array_quantizers_agree_around_half_steps():
    spec = SimpleNamespace(dtype="int8", scale=0.011764705882352941, zero_point=-5)
    values = near_half_steps(spec.scale, spec.zero_point)
    scalar = scalar_quantizer(spec)
    array = quantize(values, spec)
    assert [scalar(float(v)) for v in values] == array.tolist()
    # the cases this holds on: rounding before adding the zero point gives another integer for some of them
    rounded_first = [min(127, max(-128, round(float(v) / spec.scale) + spec.zero_point)) for v in values]
    assert rounded_first != array.tolist()
