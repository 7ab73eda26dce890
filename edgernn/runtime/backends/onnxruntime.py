"""onnxruntime (``pip install edgernn[onnx]``) for the onnx-* variants.

An ONNX initializer may name "external data": a file onnxruntime reads when it loads the model. A model loaded
from bytes resolves such names against the current directory (measured on onnxruntime 1.32: a model naming
``victim/secret.bin`` loaded that file's contents from the working directory with graph optimizations off, and
failed with them on only because the optimizer found no model path). edgernn's models hold every weight inside
the file, so the session's external-data folder (``session.model_external_initializers_file_folder_path``, for
models loaded from bytes) is pointed at a new, empty, private directory: nothing can be found there, and
onnxruntime itself refuses absolute names and names with ``..`` (its path validation). Such a model fails to load
with a ``BackendError``; export refuses to write one in the first place.
"""

from __future__ import annotations

import importlib.util
import tempfile

import numpy as np

from edgernn.runtime.backends.io_order import tensor_order
from edgernn.errors import BackendError

EXTERNAL_DATA_FOLDER = "session.model_external_initializers_file_folder_path"  # onnxruntime's session config key


def available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


class OnnxRuntimeBackend:
    name = "onnxruntime"
    formats = ("onnx",)
    float32_only = False
    needs_weights = False
    note = None

    def __init__(self, content: bytes, entry, batch: int = 1, weights=None, model_info=None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 4  # fatal only: a refused model is reported once, by the BackendError below
        with tempfile.TemporaryDirectory(prefix="edgernn-no-external-data-") as empty:
            options.add_session_config_entry(EXTERNAL_DATA_FOLDER, empty)
            try:
                self._session = onnxruntime.InferenceSession(content, options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own exception types for bad models
                text = (str(exc).strip() or type(exc).__name__).splitlines()[0]
                if "external data" in text.lower():
                    raise BackendError(f"onnxruntime cannot load {entry.file}: the model names external data (a file "
                                       "outside the model), which edgernn refuses") from None
                raise BackendError(f"onnxruntime cannot load {entry.file}: {text[:200]}") from None
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
