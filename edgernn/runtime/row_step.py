"""The one-stream row step: a raw row of F readings in, the prediction out, compiled for one predictor's model.

Why compiled (``edgernn.runtime.compiled``): on one stream the Python around the interpreter is the wrapper's
cost. For F = 8 the scaling and range check written with ``map`` over lists, then assigned to the input array,
cost 2.1 us per step (numpy ufuncs about 1 us each on 8 values); written out with each column's constants as
literals and packed straight into the input tensor's buffer, 0.9 us.

The step computes what the general path (``StreamingPredictor._step_rows``: ``Columns.encode``,
``quantize``, one backend call, ``dequantize``, ``Columns.decode``) computes for one row, with the same float64
operations in the same order and the same rounding, so the two give bit-equal predictions and states (the tests
hold them to it). It hands the row to the general path, having changed nothing, whenever the row is not the
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


def row_step(inputs, low, high, target: np.ndarray, run, quantization: tuple[float, int] | None = None,
             decode: tuple | None = None, handover_is_copy: bool = True):
    """``step(predictor, x) -> prediction`` for a one-stream multivariate streaming predictor.

    Args:
        inputs: the model's input columns (difference, offset, divisor each).
        low, high: each model input's guard (the calibrated range, within what the input tensor represents): a
            row with any input outside them goes to the general path, which counts and clips it.
        target: the predictor's input array ``[1, F]`` (C-contiguous) the encoded row is packed into.
        run: the backend's ``run``.
        quantization: ``(scale, zero_point)`` of an integer input tensor; None for float32.
        decode: for one output, ``(zero_point, scale, divisor, offset, source)``: the prediction is
            ``(y - zero_point) * scale * divisor + offset`` (+ the row's ``source`` value when not None);
            None: ``predictor._decode_row`` decodes several outputs.
        handover_is_copy: the state outputs are the next state inputs as they are (else
            ``predictor._handed_over``).

    The predictor's own state is read and written as attributes: ``_states``, ``_row`` (the last row, a list;
    None when it is already in ``_last``), ``_last`` and ``steps``.
    """
    features = len(inputs)
    dtype = np.dtype(target.dtype).name
    if dtype not in _CODES or target.shape != (1, features) or not target.flags.c_contiguous:
        raise ValueError(f"a row step writes a C-contiguous [1, {features}] float32/int8/int16 array, "
                         f"got {dtype} {list(target.shape)}")
    lines = [*_ACCEPT, *_encode(inputs, low, high, quantization), *_finish(handover_is_copy, decode)]
    namespace = {"ndarray": np.ndarray, "floats": FLOATS, "pack": struct.Struct(_CODES[dtype] * features).pack_into,
                 "buffer": memoryview(target).cast("B"), "struct_error": struct.error, "run": run, "target": target}
    return compile_function(lines, "step", namespace, f"row step, {features} columns")


# the row as Python floats, or the general path: the first lines of every row step
_ACCEPT = [
    "def step(self, x):",
    "    kind = type(x)",
    "    if kind is ndarray:",
    "        if x.dtype not in floats:  # their tolist() is Python floats, exactly as astype(float64)",
    "            return self._step_rows(x)",
    "        row = x.tolist()",
    "    elif kind is list or kind is tuple:",
    "        row = list(x)",
    "        for value in row:  # ints, numpy scalars, 0-d arrays...: the general path's float64 conversion",
    "            if type(value) is not float:",
    "                return self._step_rows(x)",
    "    else:",
    "        return self._step_rows(x)",
]


def _encode(inputs, low, high, quantization) -> list[str]:
    """Each column differenced and scaled with its constants as literals, guarded, packed into the input."""
    features = len(inputs)
    lines = []
    if any(column.difference for column in inputs):
        lines += ["    previous = self._row",
                  "    if previous is None:  # already in _last (NaN before the first row: outside every guard)",
                  "        previous = self._last[0].tolist()"]
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
        "            inside = True",
        "        else:",
        "            inside = False",
        "    except (TypeError, ValueError, OverflowError, struct_error):  # not F numbers: the general path says why",
        "        inside = False",
        "    if not inside:",
        "        return self._step_rows(x)",
    ]


def _finish(handover_is_copy: bool, decode) -> list[str]:
    """One invoke, the states handed over, the row kept, the prediction decoded (one output written out)."""
    lines = [
        "    out = run([target, *self._states])",
        "    self._states = out[1:]" if handover_is_copy else "    self._states = self._handed_over(out)",
        "    self._row = row  # into _last when someone reads it (_settle_row): a copy per step costs more",
        "    self.steps += 1",
    ]
    if decode is None:
        return lines + ["    return self._decode_row(out[0], row)"]
    zero_point, scale, divisor, offset, source = decode
    y = "out[0].item()" if (zero_point, scale) == (0, 1.0) else \
        f"(out[0].item() - {int(zero_point)}) * {literal(scale)}"  # (y - 0) * 1.0 is y: the same float
    value = f"{y} * {literal(divisor)} + {literal(offset)}"
    return lines + [f"    return {value}" + ("" if source is None else f" + row[{int(source)}]")]
