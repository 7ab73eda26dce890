"""The one place where float values and integer tensors meet.

``real = scale * (q - zero_point)``: dequantization is done in int64 first, so ``q - zero_point`` cannot wrap
around in int8/int16 arithmetic (the same reason pycoral does it that way).
"""

from __future__ import annotations

import numpy as np


def is_quantized(spec) -> bool:
    return spec.scale is not None and np.issubdtype(np.dtype(spec.dtype), np.integer)


def quantize(values, spec, out=None) -> np.ndarray:
    """Float values to ``spec``'s dtype (rounded, saturated); float specs just cast."""
    dtype = np.dtype(spec.dtype)
    if not is_quantized(spec):
        return np.asarray(values, dtype=dtype) if out is None else np.copyto(out, values, casting="unsafe") or out
    info = np.iinfo(dtype)
    q = np.clip(np.rint(np.asarray(values, dtype=np.float64) / spec.scale + spec.zero_point), info.min, info.max)
    if out is None:
        return q.astype(dtype)
    np.copyto(out, q, casting="unsafe")
    return out


def dequantize(values, spec) -> np.ndarray:
    """``spec``'s tensor values to float64."""
    if not is_quantized(spec):
        return np.asarray(values, dtype=np.float64)
    return spec.scale * (np.asarray(values).astype(np.int64) - spec.zero_point)


def requantize(values, source, target) -> np.ndarray:
    """A state output in ``source`` quantization as the next step's input in ``target`` quantization.

    Integer step models fix a tanh state output at scale 1/128 while the state input's scale comes from
    calibration; the hand-over goes through float so no range is silently reinterpreted.
    """
    if source.dtype == target.dtype and source.scale == target.scale and source.zero_point == target.zero_point:
        return values
    return quantize(dequantize(values, source), target)

