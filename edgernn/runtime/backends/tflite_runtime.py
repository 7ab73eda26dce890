"""tflite-runtime 2.14, for older device images (``pip install edgernn[tflite]``; needs numpy<2)."""

import importlib.util

from edgernn.runtime.backends.tflite_common import TFLiteBackend

INSTALL_HINT = "pip install edgernn[tflite] (tflite-runtime needs numpy<2)"


def available() -> bool:
    if importlib.util.find_spec("tflite_runtime") is None:
        return False
    import numpy

    return numpy.__version__.split(".")[0] == "1"  # tflite-runtime 2.14 does not import with numpy 2


class TFLiteRuntimeBackend(TFLiteBackend):
    name = "tflite-runtime"

    @staticmethod
    def interpreter_class():
        from tflite_runtime.interpreter import Interpreter

        return Interpreter


BACKEND = TFLiteRuntimeBackend
