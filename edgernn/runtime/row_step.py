"""The one-stream row step's per-model part: a raw row of F readings scaled, guarded and packed into the input,
compiled for one model (``row_encoder``), and its one output decoded (``one_output_decoder``). The predictor's
``_step_row`` runs them around one backend call; they see only what they are given, never the predictor.

Why compiled (``edgernn.runtime.compiled``): on one stream the Python around the interpreter is the wrapper's
cost. For F = 8 the scaling and range check written with ``map`` over lists, then assigned to the input array,
cost 2.1 us per step (numpy ufuncs about 1 us each on 8 values); written out with each column's constants as
literals and packed straight into the input tensor's buffer, 0.9 us.

Together they compute what the general path (``StreamingPredictor._step_rows``: ``Columns.encode``,
``quantize``, one backend call, ``dequantize``, ``Columns.decode``) computes for one row, with the same float64
operations in the same order and the same rounding, so the two give bit-equal predictions and states (the tests
hold them to it). The encoder returns None, having changed nothing, whenever the row is not the
common case: not a 1-D float16/32/64 array or a list or tuple of F Python floats, a value missing or
non-finite, an input outside its guard, or no previous row yet for a differenced column. The general path
handles (and reports) every such case.
"""

from __future__ import annotations

import struct

import numpy as np

from edgernn.runtime.compiled import compile_function, literal

# numpy input dtypes -> struct codes (native order and size, as numpy arrays are)
_CODES = {"float32": "f", "int8": "b", "uint8": "B", "int16": "h"}
# rows the step takes as arrays (others go to the general path, which converts or refuses them)
FLOATS = frozenset(np.dtype(name) for name in ("float64", "float32", "float16"))


def row_encoder(inputs, low, high, target: np.ndarray, quantization: tuple[float, int] | None = None):
    """``encode(x, previous, last) -> row | None``: one stream's row ``x`` of F readings scaled with each column's
    constants (``previous``: the last row as a list, or None when it is only in ``last`` ``[1, F]``), guarded and
    packed into ``target``; the row as Python floats, or None (``target`` untouched) when ``x`` is not the
    common case and the general path must take it.

    Args:
        inputs: the model's input columns (difference, offset, divisor each).
        low, high: each model input's guard (the calibrated range, within what the input tensor represents): a
            row with any input outside them goes to the general path, which counts and clips it.
        target: the predictor's input array ``[1, F]`` (C-contiguous) the encoded row is packed into.
        quantization: ``(scale, zero_point)`` of an integer input tensor; None for float32.
    """
    features = len(inputs)
    dtype = np.dtype(target.dtype).name
    if dtype not in _CODES or target.shape != (1, features) or not target.flags.c_contiguous:
        raise ValueError(f"a row step writes a C-contiguous [1, {features}] float32/int8/int16 array, "
                         f"got {dtype} {list(target.shape)}")
    lines = [*_ACCEPT, *_encode(inputs, low, high, quantization)]
    namespace = {"ndarray": np.ndarray, "floats": FLOATS, "pack": struct.Struct(_CODES[dtype] * features).pack_into,
                 "buffer": memoryview(target).cast("B"), "struct_error": struct.error}
    return compile_function(lines, "encode", namespace, f"row encoder, {features} columns")


def one_output_decoder(zero_point: int, scale: float, divisor: float, offset: float, source: int | None):
    """``decode(y, row)``: the one output ``y`` (``[1, 1]``) in raw units, as ``dequantize`` and
    ``Columns.decode`` compute it, in the same order (bit-equal): ``(y - zero_point) * scale * divisor + offset``
    (+ the row's ``source`` value for a relative output)."""
    if (zero_point, scale) == (0, 1.0):  # (y - 0) * 1.0 is y: the same float
        if source is None:
            return lambda y, row: y.item() * divisor + offset
        return lambda y, row: y.item() * divisor + offset + row[source]
    if source is None:
        return lambda y, row: (y.item() - zero_point) * scale * divisor + offset
    return lambda y, row: (y.item() - zero_point) * scale * divisor + offset + row[source]


# the row as Python floats, or the general path: the first lines of every row step
_ACCEPT = [
    "def encode(x, previous, last):",
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
]


def _encode(inputs, low, high, quantization) -> list[str]:
    """Each column differenced and scaled with its constants as literals, guarded, packed into the input."""
    features = len(inputs)
    lines = []
    if any(column.difference for column in inputs):
        lines += ["    if previous is None:  # already in last (NaN before the first row: outside every guard)",
                  "        previous = last[0].tolist()"]
    lines += ["    try:", f"        {', '.join(f'r{i}' for i in range(features))}, = row"]
    for i, column in enumerate(inputs):
        base = f"r{i} - previous[{i}]" if column.difference else f"r{i}"
        lines.append(f"        z{i} = ({base} - {literal(column.offset)}) / {literal(column.divisor)}")
    # as one if of plain comparisons: 0.2 us less for 8 columns than chained ones kept as a value (NaN fails them)
    guards = " and ".join(f"z{i} >= {literal(low[i])} and z{i} <= {literal(high[i])}" for i in range(features))
    if quantization is None:
        encoded = [f"z{i}" for i in range(features)]
    else:  # as quantize (round half to even); the guard keeps every value inside the integer range
        scale, zero_point = literal(quantization[0]), int(quantization[1])
        encoded = [f"round(z{i} / {scale} + {zero_point})" for i in range(features)]
    return lines + [
        f"        if {guards}:",
        f"            pack(buffer, 0, {', '.join(encoded)})",
        "            return row",
        "    except (TypeError, ValueError, OverflowError, struct_error):  # not F numbers: the general path says why",
        "        pass",
        "    return None",
    ]
