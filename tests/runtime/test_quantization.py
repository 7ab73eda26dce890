"""The scalar quantizer (one-stream fast paths) and the array one give the same integers, one ulp around half
steps included: rounding ``value / scale + zero_point`` is not rounding ``value / scale`` then adding it."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from edgernn.runtime.quantization import quantize, requantize, requantizer, scalar_quantizer


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


def test_a_state_handover_between_scales_equal_but_for_float32_rounding_is_no_table():
    """An LSTM's state input and output scales, as converted (0.0042431410402059555 vs 0.004243141505867243):
    requantizing maps every int8 code to itself, so the step hands the state over untouched (no lookup, ~3 µs
    saved a step); scales that really differ keep their table, identical to ``requantize``."""
    state_in = SimpleNamespace(dtype="int8", scale=0.0042431410402059555, zero_point=-6)
    state_out = SimpleNamespace(dtype="int8", scale=0.004243141505867243, zero_point=-6)
    assert requantizer(state_out, state_in) is None
    codes = np.arange(-128, 128).astype(np.int8)
    assert np.array_equal(requantize(codes, state_out, state_in), codes)
    tanh_out = SimpleNamespace(dtype="int8", scale=1 / 128, zero_point=0)
    table = requantizer(tanh_out, state_in)
    assert table is not None and np.array_equal(table(codes), requantize(codes, tanh_out, state_in))
