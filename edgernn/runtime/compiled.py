"""Functions compiled from generated source for the per-step hot path, unrolled for one model's shapes.

Why: on one stream a step is a few microseconds, and Python's generic loops are a visible part of it. Measured
on the 2-core x86_64 dev container (50 units, tflite-float32, litert): driving two inputs and two outputs with a
``zip`` loop and a list comprehension cost 0.6 us more per step than the same calls written out; the scaling and
range check of an 8-value row with ``map`` over lists 2.1 us, written out with the constants as literals 1.0 us.
So those two functions are written out per model and compiled once, the way ``dataclasses`` builds its
methods. Only integers, ``repr`` of finite floats and names chosen here enter the source, never bundle text.
"""

from __future__ import annotations

import math


def literal(value) -> str:
    """A finite float as source text (parenthesised, so that a negative value can follow any operator)."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"a compiled constant must be finite, got {value!r}")
    return f"({value!r})"


def compile_function(lines: list[str], name: str, namespace: dict, label: str):
    """Compile ``lines`` (a ``def name(...)``) with ``namespace`` as its globals; return the function."""
    namespace = dict(namespace)
    exec(compile("\n".join(lines), f"<edgernn {label}>", "exec"), namespace)  # noqa: S102
    return namespace[name]


def unrolled_runner(set_tensor, invoke, get_tensor, inputs: list[int], outputs: list[int], failed):
    """``run(arrays) -> [outputs]`` for an interpreter: set each of ``inputs`` (tensor indices, in order) from
    ``arrays``, invoke, get each of ``outputs``. A RuntimeError or ValueError while setting or invoking becomes
    ``failed(exc)`` (raised, without the native traceback)."""
    arrays = [f"a{i}" for i in range(len(inputs))]
    lines = ["def run(arrays):", f"    {', '.join(arrays)}, = arrays", "    try:"]
    lines += [f"        set_tensor({int(index)}, {array})" for index, array in zip(inputs, arrays)]
    lines += ["        invoke()",
              "    except (RuntimeError, ValueError) as exc:",
              "        raise failed(exc) from None",
              f"    return [{', '.join(f'get_tensor({int(index)})' for index in outputs)}]"]
    return compile_function(lines, "run", {"set_tensor": set_tensor, "invoke": invoke, "get_tensor": get_tensor,
                                            "failed": failed}, f"runner, {len(inputs)} in, {len(outputs)} out")
