"""``tf.lite.Interpreter`` from a full TensorFlow install: host-side cross-checks only, never chosen by auto."""

import importlib.util

from edgernn.runtime.backends.tflite_common import TFLiteBackend

INSTALL_HINT = "pip install edgernn[train]"


def available() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


class TensorFlowBackend(TFLiteBackend):
    name = "tensorflow"

    @staticmethod
    def interpreter_class():
        import warnings

        from edgernn.tf_import import import_tensorflow

        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
        return import_tensorflow().lite.Interpreter

    @staticmethod
    def without_delegates() -> dict:
        from edgernn.tf_import import import_tensorflow

        resolver = import_tensorflow().lite.experimental.OpResolverType
        return {"experimental_op_resolver_type": resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES}


BACKEND = TensorFlowBackend
