"""The one place where float values and integer tensors meet: arrays for many streams, scalars for one.

``real = scale * (q - zero_point)``: dequantization is done in int64 first, so ``q - zero_point`` cannot wrap
around in int8/int16 arithmetic (the same reason pycoral does it that way). Rounding is half to even
(``np.rint`` for arrays, Python's ``round`` for scalars: the same rule) of ``value / scale + zero_point`` in that
order (adding the zero point after rounding differs one ulp above a half step), then saturation to the dtype's
range, so the scalar and array helpers give identical tensors.
"""

from __future__ import annotations

import numpy as np


def is_quantized(spec) -> bool:
    return spec.scale is not None and np.issubdtype(np.dtype(spec.dtype), np.integer)


def bounds(spec) -> tuple[int, int]:
    """The integer range of a quantized tensor's dtype."""
    info = np.iinfo(np.dtype(spec.dtype))
    return int(info.min), int(info.max)


def quantize(values, spec, out=None) -> np.ndarray:
    """Float values to ``spec``'s dtype (rounded, saturated); float specs just cast."""
    dtype = np.dtype(spec.dtype)
    if not is_quantized(spec):
        return np.asarray(values, dtype=dtype) if out is None else np.copyto(out, values, casting="unsafe") or out
    low, high = bounds(spec)
    q = np.clip(np.rint(np.asarray(values, dtype=np.float64) / spec.scale + spec.zero_point), low, high)
    if out is None:
        return q.astype(dtype)
    np.copyto(out, q, casting="unsafe")
    return out


def dequantize(values, spec) -> np.ndarray:
    """``spec``'s tensor values to float64."""
    if not is_quantized(spec):
        return np.asarray(values, dtype=np.float64)
    return spec.scale * (np.asarray(values).astype(np.int64) - spec.zero_point)


def scalar_quantizer(spec):
    """``quantize`` for one value, as a function (the one-stream hot path): float -> the tensor's element."""
    if not is_quantized(spec):
        return float
    low, high = bounds(spec)
    scale, zero_point = spec.scale, spec.zero_point

    def quantize_one(value):
        code = round(value / scale + zero_point)
        return code if low <= code <= high else min(high, max(low, code))  # min and max: 0.2 us, only if needed
    return quantize_one


def scalar_dequantizer(spec):
    """``dequantize`` for one element, as a function: the tensor's element -> float."""
    if not is_quantized(spec):
        return float
    scale, zero_point = spec.scale, spec.zero_point
    return lambda q: (int(q) - zero_point) * scale


def same_quantization(a, b) -> bool:
    return a.dtype == b.dtype and a.scale == b.scale and a.zero_point == b.zero_point


def requantize(values, source, target) -> np.ndarray:
    """A state output in ``source`` quantization as the next step's input in ``target`` quantization.

    Integer step models fix a tanh state output at scale 1/128 while the state input's scale comes from
    calibration; the hand-over goes through float so no range is silently reinterpreted.
    """
    if same_quantization(source, target):
        return values
    return quantize(dequantize(values, source), target)


def requantizer(source, target):
    """``requantize`` from ``source`` to ``target`` as a function of arrays, or None when it is the identity.

    Between 8- or 16-bit integer tensors it is a lookup table of every code, built with ``requantize`` itself
    (so identical to it) and applied with one ``take``: numpy's divide, round and clip on every step cost more
    than the interpreter's invoke. The table holds code ``q`` at position ``q mod 2**bits``, which is ``q``'s
    bits read as unsigned (``take`` on that view: 0.42 us for 50 codes, fancy indexing 0.61). A table that maps
    every code to itself (scales so close that no code moves, as an LSTM's often are) is the identity too: None,
    and the step hands the state over untouched.
    """
    if same_quantization(source, target):
        return None
    if is_quantized(source) and is_quantized(target) and np.dtype(source.dtype).itemsize <= 2:
        low, high = bounds(source)
        codes = np.arange(low, high + 1)
        mapped = requantize(codes, source, target)
        if source.dtype == target.dtype and np.array_equal(mapped, codes):
            return None
        table = np.empty(codes.size, dtype=np.dtype(target.dtype))
        table[codes % codes.size] = mapped
        kind = np.dtype(source.dtype)
        unsigned = np.dtype(f"uint{8 * kind.itemsize}")  # a code's bits: its place in the table
        take = table.take

        def handover(values):
            if values.dtype == kind:
                return take(values.view(unsigned))
            return table[np.asarray(values)]  # codes held in a wider type: indexed (negative ones from the end)
        return handover
    return lambda values: requantize(values, source, target)
