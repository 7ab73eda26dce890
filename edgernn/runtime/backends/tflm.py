"""TensorFlow Lite Micro's interpreter, run on the host as a microcontroller runs it (``edgernn[tflm]``:
the ``tflite-micro`` package, x86_64 Linux wheels): one stream, a fixed arena, reference kernels.

TFLM addresses tensors by position, not name (``tflite_signature.positions`` maps our names to them). Outputs are copied out
after every invoke: TFLM may reuse an output tensor's memory during the next invoke, and the state outputs are
fed back as the next step's inputs. ``arena_bytes(content)`` measures the arena a model needs (the
microcontroller's RAM for tensors).
"""

from __future__ import annotations

import importlib.util

import numpy as np

from edgernn.runtime.backends.io_order import tensor_order
from edgernn.runtime.backends.child import try_in_child
from edgernn.errors import BackendError, first_line
from edgernn.runtime.quiet import silenced_stderr
from edgernn.runtime.tflite_signature import positions


def available() -> bool:
    return importlib.util.find_spec("tflite_micro") is not None


def arena_bytes(content: bytes, granularity: int = 16, limit: int = 1 << 24) -> int:
    """The smallest tensor arena TFLM allocates this model in (bytes, to ``granularity``): what a firmware's
    ``kTensorArenaSize`` must be. Found by asking TFLM itself (binary search over arena sizes), since its
    allocation needs temporary room beyond what its allocation record totals."""
    from tflite_micro import runtime

    def fits(size: int) -> bool:  # in a child: TFLM can crash after a failed allocation in the same process
        return try_in_child(lambda: runtime.Interpreter.from_bytes(content, arena_size=size), "a TFLM arena")[0] == "ok"

    low, high = 0, 4096
    while not fits(high):
        low, high = high, high * 2
        if high > limit:
            raise BackendError(f"tflm cannot allocate this model in {limit} bytes of arena")
    while high - low > granularity:
        middle = (low + high) // 2 // granularity * granularity
        if middle <= low:
            break
        low, high = (low, middle) if fits(middle) else (middle, high)
    return high


class TFLMBackend:
    name = "tflm"
    formats = ("tflite",)
    float32_only = False
    needs_weights = False

    def __init__(self, content: bytes, entry, batch: int = 1, weights=None, model_info=None):
        if batch != 1:
            raise BackendError("the tflm backend runs one stream (a microcontroller's tensors have a fixed shape)")
        from tflite_micro import runtime

        self.note = None
        kind, message = try_in_child(lambda: runtime.Interpreter.from_bytes(content), entry.file)
        if kind != "ok":  # TFLM fails some models by crashing later in the same process: never build those here
            raise BackendError(f"tflm cannot load {entry.file}: {message or kind}")
        try:
            by_input, by_output = positions(content)
            with silenced_stderr():
                self._interpreter = runtime.Interpreter.from_bytes(content)
        except BackendError:
            raise
        except Exception as exc:  # noqa: BLE001 - TFLM's wrapper raises RuntimeError/ValueError/IndexError...
            raise BackendError(f"tflm cannot load {entry.file}: {first_line(exc)}") from None
        in_order, out_order = tensor_order(entry)
        if set(by_input) != set(in_order) or set(by_output) != set(out_order):
            raise BackendError(f"{entry.file}: the model's tensors {sorted(by_input)} -> {sorted(by_output)} do not "
                               f"match the manifest's {sorted(in_order)} -> {sorted(out_order)}")
        self._inputs = [by_input[name] for name in in_order]
        self._outputs = [by_output[name] for name in out_order]
        self._check(entry, by_input)

    def _check(self, entry, by_input: dict[str, int]) -> None:
        """The model's input tensors must be the manifest's (dtype, shape, quantization)."""
        for spec in entry.inputs:
            detail = self._interpreter.get_input_details(by_input[spec.name])
            quantization = detail["quantization_parameters"]
            scale = float(quantization["scales"][0]) if len(quantization["scales"]) else None
            if np.dtype(detail["dtype"]).name != spec.dtype or list(detail["shape"]) != spec.shape or (
                    spec.scale is not None and (scale is None or abs(scale - spec.scale) > 1e-6 * spec.scale)):
                raise BackendError(f"{entry.file}: tensor {spec.name!r} differs from the manifest's in TFLM")

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        interpreter = self._interpreter
        try:
            for position, array in zip(self._inputs, inputs):
                interpreter.set_input(array, position)
            interpreter.invoke()
            return [np.array(interpreter.get_output(position), copy=True) for position in self._outputs]
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"tflm failed to run the model: {first_line(exc)}") from None


BACKEND = TFLMBackend
