"""``tf.lite.Interpreter`` from a full TensorFlow install: host-side cross-checks only, never chosen by auto."""

import importlib.util

from edgernn.runtime.backends.tflite_common import TFLiteBackend


def available() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


class TensorFlowBackend(TFLiteBackend):
    name = "tensorflow"

    @classmethod
    def _module(cls):
        """``tf.lite`` stands in for the interpreter module (deprecation warning silenced: host-side only)."""
        import warnings

        from edgernn.runtime.quiet import silenced_stderr

        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
        with silenced_stderr():  # TensorFlow's import-time C++ chatter
            import tensorflow
        lite = tensorflow.lite
        return type("TFLiteModule", (), {"Interpreter": lite.Interpreter,
                                         "OpResolverType": lite.experimental.OpResolverType})


BACKEND = TensorFlowBackend
