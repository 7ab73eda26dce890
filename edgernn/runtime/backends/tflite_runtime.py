"""tflite-runtime 2.14, for older device images (``pip install edgernn[tflite]``; needs numpy<2).

tflite-runtime 2.14 can die with SIGSEGV inside ``invoke``, and a dead device process is the one failure a
caller cannot handle, so every model is first loaded, allocated and invoked once in a forked child:
- its aarch64 build crashes running valid int8 models whose FULLY_CONNECTED weights are quantized per channel
  (what the converter writes) for some layer shapes and for batches above 1 (measured: the 2-layer LSTM step
  model at one stream; SimpleRNN and window models at 8 streams). Its reference kernels run them, and so does
  ai-edge-litert, on the same (emulated) CPU; its x86 build runs them with its optimized kernels. So a crash
  of the optimized kernels is retried once with the reference kernels, and the backend says so.
- it does not verify a model's flatbuffer: a damaged file whose hash was updated to match (our fuzz test does
  exactly that) crashes either way, and becomes a ``BackendError`` here.
(ai-edge-litert verifies the flatbuffer itself and runs these models; it needs no probe.)
"""

import importlib.util

import numpy as np

from edgernn.runtime.backends.io_order import tensor_order
from edgernn.runtime.backends.child import try_in_child
from edgernn.runtime.backends.tflite_common import TFLiteBackend
from edgernn.errors import BackendError


def available() -> bool:
    if importlib.util.find_spec("tflite_runtime") is None:
        return False
    import numpy

    return numpy.__version__.split(".")[0] == "1"  # tflite-runtime 2.14 does not import with numpy 2


def _survives(load, file: str) -> bool:
    """Whether ``load`` (everything the real load does, and one invoke) runs in a child without a native crash;
    Python errors are reported by the real load in the parent."""
    return try_in_child(load, file)[0] != "crash"


class TFLiteRuntimeBackend(TFLiteBackend):
    name = "tflite-runtime"

    interpreter_module = "tflite_runtime.interpreter"

    def __init__(self, content: bytes, entry, batch: int = 1, weights=None, model_info=None,
                 kernels: str | None = None):
        """``kernels`` None: the optimized ones (XNNPACK first), or the reference ones if those crash."""
        def load_and_invoke(kernels):
            TFLiteBackend.__init__(self, content, entry, batch, kernels=kernels)
            self.run([np.zeros([batch, *spec.shape[1:]], spec.dtype) for spec in _ordered_inputs(entry)])

        chosen = kernels or "xnnpack"
        if not _survives(lambda: load_and_invoke(chosen), entry.file):
            if kernels is not None:
                raise BackendError(f"tflite-runtime crashed running {entry.file} with its {kernels} kernels")
            if not _survives(lambda: load_and_invoke("reference"), entry.file):
                raise BackendError(f"tflite-runtime crashed running {entry.file} with its optimized and its "
                                   "reference kernels: the model file is malformed")
            chosen = "reference"
        super().__init__(content, entry, batch, weights=weights, model_info=model_info, kernels=chosen)
        if chosen == "reference" and kernels is None:
            self.note = ("tflite-runtime's optimized kernels crash running this model on this machine (its 2.14 "
                         "aarch64 build, int8 FULLY_CONNECTED with per-channel weights); running its reference "
                         "kernels")


def _ordered_inputs(entry):
    names, _ = tensor_order(entry)
    return [entry.input(name) for name in names]


BACKEND = TFLiteRuntimeBackend
