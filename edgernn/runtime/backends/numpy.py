"""The cell equations in numpy from the bundle's float weights: no interpreter at all, and a cross-check."""

from __future__ import annotations

import numpy as np

from edgernn.runtime.cells import NumpyStepModel

INSTALL_HINT = "numpy is always installed"


def available() -> bool:
    return True


class NumpyBackend:
    name = "numpy"
    formats = ("tflite", "onnx")  # float32 variants of either format: the same weights

    def __init__(self, content: bytes, entry, batch: int = 1, weights=None, model_info=None):
        self._model = NumpyStepModel(model_info.layers, weights)
        self._info = model_info
        self._states = [name for name, _ in model_info.state_inputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._info.mode == "window":
            return {"y": self._model.sequence(feeds["x"])}
        y, states = self._model.step(feeds["x"], [feeds[name] for name in self._states])
        return {"y": y, **{f"{name}_out": s for name, s in zip(self._states, states)}}


BACKEND = NumpyBackend
