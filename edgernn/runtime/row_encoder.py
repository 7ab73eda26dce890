"""The one-stream row encoder: a raw row of F readings written as the model's input, compiled for one model.

Why compiled (``edgernn.runtime.compiled``): for F = 8 the scaling and range check written with ``map`` over
lists, then assigned to the input array, cost 2.1 us per step (numpy ufuncs about 1 us each on 8 values);
written out with each column's constants as literals and packed straight into the input tensor's buffer, 1.0 us.

The encoder computes what ``Columns.encode`` and ``quantize`` do for one row (the same float64 operations in
the same order, the same rounding, so the two paths give bit-equal inputs), and returns None, having written
nothing, whenever the row is not the common case: not a 1-D float16/32/64 array or a list or tuple of F Python
floats, a value missing or non-finite, or an input outside its guard. The caller then takes the general path, which handles (and
reports) every such case.
"""

from __future__ import annotations

import struct

import numpy as np

from edgernn.runtime.compiled import compile_function, literal

# numpy input dtypes -> struct codes (native order and size, as numpy arrays are)
_CODES = {"float32": "f", "int8": "b", "uint8": "B", "int16": "h"}
# rows the encoder takes as arrays (others go to the general path, which converts or refuses them)
FLOATS = frozenset(np.dtype(name) for name in ("float64", "float32", "float16"))


def row_encoder(inputs, low, high, target: np.ndarray, quantization: tuple[float, int] | None = None):
    """``encode(x, previous) -> row | None`` for ``inputs`` (``InputColumn``s), writing into ``target``.

    Args:
        inputs: the model's input columns (difference, offset, divisor each).
        low, high: each model input's guard (the calibrated range, within what the input tensor represents): a
            row with any input outside them gets None, so that the general path counts and clips it.
        target: the one-stream input array ``[1, F]`` the encoded row is written into (C-contiguous).
        quantization: ``(scale, zero_point)`` of an integer input tensor; None for float32.

    ``previous`` is the last raw row (a list), read only for differenced columns; ``row`` is the raw row as a
    new list.
    """
    features = len(inputs)
    dtype = np.dtype(target.dtype).name
    if dtype not in _CODES or target.shape != (1, features) or not target.flags.c_contiguous:
        raise ValueError(f"a row encoder writes a C-contiguous [1, {features}] float32/int8/int16 array, "
                         f"got {dtype} {list(target.shape)}")
    names = ", ".join(f"r{i}" for i in range(features))
    lines = [
        "def encode(x, previous):",
        "    kind = type(x)",
        "    if kind is ndarray:",
        "        if x.dtype not in floats:  # their tolist() is Python floats, exactly as astype(float64)",
        "            return None",
        "        row = x.tolist()",
        "    elif kind is list or kind is tuple:",
        "        row = list(x)",
        "        for value in row:  # ints, numpy scalars, 0-d arrays...: the general path's float64 conversion",
        "            if type(value) is not float:",
        "                return None",
        "    else:",
        "        return None",
        "    try:",
        f"        {names}, = row",
    ]
    for i, column in enumerate(inputs):
        base = f"r{i} - previous[{i}]" if column.difference else f"r{i}"
        lines.append(f"        z{i} = ({base} - {literal(column.offset)}) / {literal(column.divisor)}")
        lines.append(f"        if not {literal(low[i])} <= z{i} <= {literal(high[i])}:")
        lines.append("            return None")
    if quantization is None:
        encoded = [f"z{i}" for i in range(features)]
    else:  # as quantize (round half to even); the guard keeps every value inside the integer range
        scale, zero_point = literal(quantization[0]), int(quantization[1])
        encoded = [f"round(z{i} / {scale} + {zero_point})" for i in range(features)]
    lines += [
        f"        pack(buffer, 0, {', '.join(encoded)})",
        "    except (TypeError, ValueError, OverflowError, struct_error):  # not F numbers: the general path says why",
        "        return None",
        "    return row",
    ]
    namespace = {"ndarray": np.ndarray, "floats": FLOATS, "pack": struct.Struct(_CODES[dtype] * features).pack_into,
                 "buffer": memoryview(target).cast("B"), "struct_error": struct.error}
    return compile_function(lines, "encode", namespace, f"row encoder, {features} columns")
