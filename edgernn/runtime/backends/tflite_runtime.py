"""tflite-runtime 2.14, for older device images (``pip install edgernn[tflite]``; needs numpy<2).

tflite-runtime 2.14 does not verify a model's flatbuffer: a damaged file whose hash was updated to match (our
fuzz test does exactly that) can crash the process with SIGSEGV. So every model is first loaded, allocated
and invoked once in a forked child; a child killed by a signal becomes a ``BackendError`` here instead of a
dead device process. (ai-edge-litert verifies the flatbuffer itself and needs no probe.)
"""

import importlib.util
import os

import numpy as np

from edgernn.runtime.backends import tensor_order
from edgernn.runtime.backends.tflite_common import TFLiteBackend
from edgernn.runtime.errors import BackendError

INSTALL_HINT = "pip install edgernn[tflite] (tflite-runtime needs numpy<2)"


def available() -> bool:
    if importlib.util.find_spec("tflite_runtime") is None:
        return False
    import numpy

    return numpy.__version__.split(".")[0] == "1"  # tflite-runtime 2.14 does not import with numpy 2


def _probe(load, file: str) -> None:
    """Run ``load`` (everything the real load does, and one invoke) in a child; a crash is a BackendError.

    ``EDGERNN_PROBE_MODELS=0`` turns the probe off: under qemu-user emulation a forked child of a process
    that has run interpreters can itself crash (qemu's threads do not survive fork), which would turn valid
    models into errors. On real hardware leave it on.
    """
    if not hasattr(os, "fork") or os.environ.get("EDGERNN_PROBE_MODELS", "1") == "0":
        return
    try:
        pid = os.fork()
    except OSError as exc:
        raise BackendError(f"cannot check {file} in a child process: {exc.strerror}") from None
    if pid == 0:  # child: any outcome but a native crash exits normally
        code = 0
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)  # the child's delegate banner and errors are the parent's to report
        try:
            load()
        except BaseException:  # noqa: BLE001 - Python errors are reported by the real load in the parent
            code = 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        raise BackendError(f"tflite-runtime crashed (signal {os.WTERMSIG(status)}) loading {file}: "
                           "the model file is malformed")


class TFLiteRuntimeBackend(TFLiteBackend):
    name = "tflite-runtime"

    interpreter_module = "tflite_runtime.interpreter"

    def __init__(self, content: bytes, entry, batch: int = 1, weights=None, model_info=None):
        def load_and_invoke():
            TFLiteBackend.__init__(self, content, entry, batch)
            self.run([np.zeros([batch, *spec.shape[1:]], spec.dtype) for spec in _ordered_inputs(entry)])

        _probe(load_and_invoke, entry.file)
        super().__init__(content, entry, batch, weights=weights, model_info=model_info)


def _ordered_inputs(entry):
    names, _ = tensor_order(entry)
    return [entry.input(name) for name in names]


BACKEND = TFLiteRuntimeBackend
