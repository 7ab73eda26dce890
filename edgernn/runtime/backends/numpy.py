"""The cell equations in numpy from the bundle's float weights: no interpreter at all, and a cross-check."""

from __future__ import annotations

import numpy as np

from edgernn.runtime.cells import NumpyStepModel
from edgernn.runtime.manifest import Mode


def available() -> bool:
    return True


class NumpyBackend:
    name = "numpy"
    formats = ("tflite", "onnx")  # float32 variants of either format: the same weights
    float32_only = True
    needs_weights = True
    note = None

    def __init__(self, content: bytes, entry, batch: int = 1, weights=None, model_info=None):
        self._model = NumpyStepModel(model_info.layers, weights)
        self._window = model_info.mode is Mode.WINDOW
        # the model's state order (h0, c0, h1, ...) and the entry's pairing order, mapped onto each other
        model_order = [name for name, _ in model_info.state_inputs()]
        self._to_model = [[i for i, _ in entry.state_pairs].index(name) for name in model_order]
        self._from_model = [model_order.index(i) for i, _ in entry.state_pairs]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if self._window:
            return [self._model.sequence(inputs[0])]
        states = inputs[1:]
        y, new = self._model.step(inputs[0], [states[i] for i in self._to_model])
        return [y, *(new[i] for i in self._from_model)]


BACKEND = NumpyBackend
