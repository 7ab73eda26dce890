"""onnxruntime (``pip install edgernn[onnx]``) for the onnx-* variants."""

from __future__ import annotations

import importlib.util

import numpy as np

from edgernn.runtime.backends import tensor_order
from edgernn.runtime.errors import BackendError

INSTALL_HINT = "pip install edgernn[onnx]"


def available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


class OnnxRuntimeBackend:
    name = "onnxruntime"
    formats = ("onnx",)

    def __init__(self, content: bytes, entry, batch: int = 1, weights=None, model_info=None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = onnxruntime.InferenceSession(content, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad models
            raise BackendError(f"onnxruntime cannot load {entry.file}: {str(exc).splitlines()[0][:200]}") from None
        names_in = {i.name for i in self._session.get_inputs()}
        names_out = {o.name for o in self._session.get_outputs()}
        if names_in != {t.name for t in entry.inputs} or names_out != {t.name for t in entry.outputs}:
            raise BackendError(f"{entry.file}: the model's tensors do not match the manifest's")
        self._inputs, self._outputs = tensor_order(entry)
        self._run = self._session.run

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        try:
            return self._run(self._outputs, dict(zip(self._inputs, inputs)))
        except Exception as exc:  # onnxruntime's own error types: a model that loads but cannot run
            raise BackendError(f"onnxruntime failed to run the model: {str(exc).splitlines()[0][:200]}") from None


BACKEND = OnnxRuntimeBackend
