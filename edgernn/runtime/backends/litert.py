"""ai-edge-litert: the maintained successor of tflite-runtime (``pip install edgernn[litert]``)."""

import importlib.util

from edgernn.runtime.backends.tflite_common import TFLiteBackend


def available() -> bool:
    return importlib.util.find_spec("ai_edge_litert") is not None


class LiteRTBackend(TFLiteBackend):
    name = "litert"
    interpreter_module = "ai_edge_litert.interpreter"
    can_hand_over = True  # its schema reader rewrites an int8 model's state hand-over into the graph


BACKEND = LiteRTBackend
