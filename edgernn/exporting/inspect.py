"""Read a Keras model into edgernn's terms (layers, mode, weights) or refuse it with one line naming the layer.

Accepted: an input of F features, stacked SimpleRNN/GRU/LSTM layers, and a linear ``Dense(K)`` head; anything
else (bidirectional, attention, masking, unsupported activations, stateful or reversed layers) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgernn.runtime.cell_table import CELLS
from edgernn.runtime.cells import ACTIVATIONS
from edgernn.errors import ModelError
from edgernn.runtime.manifest import LayerSpec, Mode, ModelInfo

KERAS_CELLS = {spec.keras_class: name for name, spec in CELLS.items()}  # Keras layer class -> cell name


@dataclass
class InspectedModel:
    """A Keras model as export sees it; ``weights`` are float32 numpy arrays keyed ``layer{i}/...``, ``head/...``."""

    info: ModelInfo
    weights: dict[str, np.ndarray]
    recurrent_layers: list  # the Keras layers, for building step models from their cells
    head: object
    features: int = 1  # F: values per input row
    outputs: int = 1  # K: the Dense head's units


def _activation_name(fn) -> str:
    name = getattr(fn, "__name__", str(fn))
    return name


def inspect_model(model, window_hint: int | None = None, lag: int = 0) -> InspectedModel:
    """Describe ``model``; ``window_hint``/``lag`` come from edgernn's metadata when present."""
    layers, recurrent, head = [], [], None
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        if head is not None:
            raise ModelError(f"layer {layer.name!r} ({kind}) follows the Dense head; only a Dense head may end the model")
        if kind in KERAS_CELLS:
            layers.append(_layer_spec(layer, KERAS_CELLS[kind]))
            recurrent.append(layer)
        elif kind == "Dense" and recurrent:
            if _activation_name(layer.activation) != "linear":
                raise ModelError(f"layer {layer.name!r}: the Dense head must have a linear activation")
            head = layer
        else:
            raise ModelError(f"layer {layer.name!r} ({kind}) is not supported: edgernn exports stacked "
                             "SimpleRNN/GRU/LSTM layers with a Dense head")
    if not recurrent or head is None:
        raise ModelError("the model must be recurrent layers (SimpleRNN, GRU, LSTM) followed by a Dense head")
    shape = model.inputs[0].shape
    if len(model.inputs) != 1 or len(shape) != 3 or not shape[-1]:
        raise ModelError(f"the model must take one input [batch, time, features], got {tuple(shape)}")
    for layer in recurrent[:-1]:
        if not layer.return_sequences:
            raise ModelError(f"layer {layer.name!r} must return sequences to feed the layer after it")
    if recurrent[-1].return_sequences:
        mode, window = Mode.STREAMING, None
    else:
        mode, window = Mode.WINDOW, shape[1] or window_hint
        if window is None:
            raise ModelError(f"layer {recurrent[-1].name!r} returns one value per sequence but the input length is "
                             f"not fixed: give the model a fixed window length (Input(shape=(N, {shape[-1]})))")
    info = ModelInfo(layers, mode, window, None if window is None else window + lag)
    weights = {}
    for i, layer in enumerate(recurrent):
        for var in layer.cell.weights:
            key = var.path.split("/")[-1]
            weights[f"layer{i}/{key}"] = np.asarray(var.numpy(), dtype=np.float32)
    weights["head/kernel"], weights["head/bias"] = (np.asarray(w, dtype=np.float32) for w in head.get_weights())
    return InspectedModel(info, weights, recurrent, head, int(shape[-1]), int(head.units))


def _layer_spec(layer, cell: str) -> LayerSpec:
    for flag in ("go_backwards", "stateful"):
        if getattr(layer, flag, False):
            raise ModelError(f"layer {layer.name!r}: {flag}=True is not supported")
    config = layer.cell.get_config()
    activation = config.get("activation", "tanh")
    recurrent_activation = config.get("recurrent_activation", "sigmoid")
    spec = LayerSpec(cell, int(layer.units), activation, recurrent_activation,
                     bool(config.get("reset_after", True)), bool(config.get("use_bias", True)))
    for name in CELLS[cell].activations(spec):
        if name not in ACTIVATIONS:
            raise ModelError(f"layer {layer.name!r}: activation {name!r} is not supported "
                             f"(supported: {', '.join(ACTIVATIONS)})")
    return spec
