"""The TFLite interpreter driver shared by the litert, tflite-runtime and tensorflow backends, and the one place
a TFLite interpreter is built (``TFLiteBackend.open_interpreter``; ``backends.make_interpreter`` opens one by
backend name for bench's raw floor, export's tensor reading, the int8 diagnosis and the benchmarks).

Tensors are addressed through the ``serving_default`` signature's names, never the interpreter's tensor order;
``set_tensor``/``invoke``/``get_tensor`` on the signature's tensor indices measured faster than calling the
signature runner, which builds dicts and checks shapes on every call; they are written out per model
(``compiled.unrolled_runner``), 0.6 us per step less than a loop over the tensors.
"""

from __future__ import annotations

import numpy as np

from edgernn.runtime.backends import tflite_handover
from edgernn.runtime.backends.io_order import tensor_order
from edgernn.runtime.compiled import unrolled_runner
from edgernn.errors import BackendError
from edgernn.runtime.manifest import SIGNATURE
from edgernn.runtime.quiet import silenced_stderr


KERNELS = ("xnnpack", "builtin", "reference")


class TFLiteBackend:
    """A TFLite model resized to ``batch`` streams; subclasses say which interpreter class to use.

    ``run`` (the ``Backend`` protocol's) is set when the model loads: its set/invoke/get calls written out for
    the model's tensors (``compiled.unrolled_runner``)."""

    name = "tflite"
    formats = ("tflite",)
    float32_only = False
    needs_weights = False

    interpreter_module = ""  # the module holding Interpreter and OpResolverType, e.g. "ai_edge_litert.interpreter"

    @classmethod
    def _module(cls):
        import importlib

        return importlib.import_module(cls.interpreter_module)

    @classmethod
    def interpreter_class(cls):
        return cls._module().Interpreter

    @classmethod
    def kernel_options(cls, kernels: str) -> dict:
        """Interpreter keyword arguments for ``kernels``: ``xnnpack`` (the default delegate over the builtin
        kernels), ``builtin`` (the optimized builtin kernels alone) or ``reference`` (TFLite's plain C++ ones)."""
        resolver = {"xnnpack": None, "builtin": "BUILTIN_WITHOUT_DEFAULT_DELEGATES", "reference": "BUILTIN_REF"}[kernels]
        return {"experimental_op_resolver_type": getattr(cls._module().OpResolverType, resolver)} if resolver else {}

    @classmethod
    def open_interpreter(cls, content: bytes, kernels: str = "xnnpack", num_threads: int = 1):
        """This backend's interpreter over ``content`` with ``kernels``, not yet allocated."""
        with silenced_stderr():  # the XNNPACK delegate announces itself on stderr
            return cls.interpreter_class()(model_content=content, num_threads=num_threads, **cls.kernel_options(kernels))

    def __init__(self, content: bytes, entry, batch: int = 1, weights=None, model_info=None, kernels: str = "xnnpack",
                 hand_over: bool = False):
        """Load with ``kernels``; from ``xnnpack``, fall back to ``builtin`` if the delegate refuses the model.
        ``hand_over``: run an int8 state hand-over in the graph where the model needs one (``tflite_handover``;
        ``states_handed_over`` then says that ``run`` returns each state in its input's quantization)."""
        self.kernels = kernels
        self.note = None  # one line for the user when the backend runs the model other than the usual way
        self.states_handed_over = False
        rewritten = None
        if hand_over:
            rewritten = tflite_handover.fused(content, entry, lambda model: self.open_interpreter(model, kernels))
        if rewritten is not None and self._loads(rewritten[0], entry, batch, kernels, handed=rewritten[1]):
            self.states_handed_over = True
            return
        try:
            self._load(content, entry, batch, kernels)
        except BackendError:
            raise
        except Exception as first:  # noqa: BLE001 - a damaged model makes the native wrapper raise any type
            # XNNPACK refuses some valid models (e.g. an int8 model calibrated on a constant input: "failed to
            # prepare"); TFLite's builtin kernels run them, a little slower. Damaged models fail both ways.
            if kernels == "xnnpack" and self._loads(content, entry, batch, "builtin"):
                self.kernels = "builtin"
                return
            text = (str(first) or type(first).__name__).splitlines()[0][:200]
            raise BackendError(f"{self.name} cannot load {entry.file}: {text}") from None

    def _loads(self, content: bytes, entry, batch: int, kernels: str, handed: set[str] = frozenset()) -> bool:
        try:
            self._load(content, entry, batch, kernels, handed)
        except Exception:  # noqa: BLE001
            return False
        return True

    def _load(self, content: bytes, entry, batch: int, kernels: str, handed: set[str] = frozenset()) -> None:
        """``handed``: state outputs the model hands over itself, in their state input's quantization."""
        interpreter = self.open_interpreter(content, kernels)
        runner = interpreter.get_signature_runner(SIGNATURE)
        inputs, outputs = runner.get_input_details(), runner.get_output_details()
        del runner  # it holds views of the interpreter's buffers, which would forbid resizing
        expected_in, expected_out = {t.name for t in entry.inputs}, {t.name for t in entry.outputs}
        if set(inputs) != expected_in or set(outputs) != expected_out:
            raise BackendError(f"{entry.file}: the model's tensors {sorted(inputs)} -> {sorted(outputs)} do not "
                               f"match the manifest's {sorted(expected_in)} -> {sorted(expected_out)}")
        details = {**inputs, **outputs}
        handed_as = {name_out: entry.input(name_in) for name_in, name_out in entry.state_pairs if name_out in handed}
        for spec in [*entry.inputs, *entry.outputs]:
            detail = details[spec.name]
            spec = handed_as.get(spec.name, spec)
            if np.dtype(detail["dtype"]).name != spec.dtype or list(detail["shape"]) != spec.shape:
                raise BackendError(f"{entry.file}: tensor {spec.name!r} is {np.dtype(detail['dtype']).name} "
                                   f"{[int(d) for d in detail['shape']]} in the model but {spec.dtype} {spec.shape} "
                                   "in the manifest")
            scale, zero_point = detail["quantization"]
            if spec.scale is not None and (abs(scale - spec.scale) > 1e-6 * spec.scale or zero_point != spec.zero_point):
                raise BackendError(f"{entry.file}: tensor {spec.name!r} quantization ({scale}, {zero_point}) differs "
                                   f"from the manifest's ({spec.scale}, {spec.zero_point})")
        for spec in entry.inputs:
            shape = [batch, *spec.shape[1:]]
            if list(inputs[spec.name]["shape"]) != shape:
                interpreter.resize_tensor_input(inputs[spec.name]["index"], shape, strict=False)
        with silenced_stderr():
            interpreter.allocate_tensors()
            interpreter.invoke()  # the delegate is applied (and announced) on the first invoke; state-free
        in_order, out_order = tensor_order(entry)
        self._interpreter = interpreter
        self.run = unrolled_runner(interpreter.set_tensor, interpreter.invoke, interpreter.get_tensor,
                                   [inputs[name]["index"] for name in in_order],
                                   [outputs[name]["index"] for name in out_order], self._failed)

    def _failed(self, exc: Exception) -> BackendError:
        """A model that loads but cannot run (e.g. damaged), in one line."""
        return BackendError(f"{self.name} failed to run the model: {str(exc).splitlines()[0][:200]}")
