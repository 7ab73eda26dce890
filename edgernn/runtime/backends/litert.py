"""ai-edge-litert: the maintained successor of tflite-runtime (``pip install edgernn[litert]``)."""

import importlib.util

from edgernn.runtime.backends.tflite_common import TFLiteBackend

INSTALL_HINT = "pip install edgernn[litert]"


def available() -> bool:
    return importlib.util.find_spec("ai_edge_litert") is not None


class LiteRTBackend(TFLiteBackend):
    name = "litert"

    @staticmethod
    def interpreter_class():
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter

    @staticmethod
    def without_delegates() -> dict:
        from ai_edge_litert.interpreter import OpResolverType

        return {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}


BACKEND = LiteRTBackend
