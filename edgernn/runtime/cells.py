"""The cell table, and Keras' recurrent cell equations in numpy (the numpy backend and an independent check).

Mirrors ``keras.layers.SimpleRNNCell/GRUCell/LSTMCell.call(inputs, states) -> (output, new_states)`` for the
configurations export accepts (GRU with ``reset_after=True`` or False, biases optional). ``CELLS`` is the one
list of cells: a new cell is one entry there plus its step function here (and its Keras class must build a step
model from ``cell.from_config``, as these do).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


def _hard_sigmoid(x):
    return np.clip(x / 6.0 + 0.5, 0.0, 1.0)  # Keras 3: relu6(x + 3) / 6


ACTIVATIONS = {
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "relu": lambda x: np.maximum(x, 0.0),
    "linear": lambda x: x,
    "hard_sigmoid": _hard_sigmoid,
}
# the outputs an activation can reach; relu and linear are unbounded (absent here)
ACTIVATION_RANGES = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0), "hard_sigmoid": (0.0, 1.0)}


def simple_rnn_step(x, states, w, activation="tanh", **_):
    """``h' = act(x @ W + b + h @ U)``; x ``[batch, features]``, states ``[h]`` each ``[batch, units]``."""
    (h,) = states
    z = x @ w["kernel"] + h @ w["recurrent_kernel"]
    if "bias" in w:
        z = z + w["bias"]
    h = ACTIVATIONS[activation](z)
    return h, [h]


def gru_step(x, states, w, activation="tanh", recurrent_activation="sigmoid", reset_after=True, **_):
    """Keras' GRU cell (update gate z, reset gate r, candidate hh); ``h' = z * h + (1 - z) * hh``."""
    (h,) = states
    act, rec = ACTIVATIONS[activation], ACTIVATIONS[recurrent_activation]
    units = h.shape[-1]
    bias = w.get("bias")
    if bias is not None and reset_after:
        input_bias, recurrent_bias = bias[0], bias[1]
    else:
        input_bias, recurrent_bias = bias, None
    xm = x @ w["kernel"]
    if input_bias is not None:
        xm = xm + input_bias
    x_z, x_r, x_h = xm[:, :units], xm[:, units : 2 * units], xm[:, 2 * units :]
    u = w["recurrent_kernel"]
    if reset_after:
        inner = h @ u
        if recurrent_bias is not None:
            inner = inner + recurrent_bias
        z = rec(x_z + inner[:, :units])
        r = rec(x_r + inner[:, units : 2 * units])
        hh = act(x_h + r * inner[:, 2 * units :])
    else:
        z = rec(x_z + h @ u[:, :units])
        r = rec(x_r + h @ u[:, units : 2 * units])
        hh = act(x_h + (r * h) @ u[:, 2 * units :])
    h = z * h + (1.0 - z) * hh
    return h, [h]


def lstm_step(x, states, w, activation="tanh", recurrent_activation="sigmoid", **_):
    """Keras' LSTM cell: gates i, f, c, o in that order; states ``[h, c]``."""
    h, c = states
    act, rec = ACTIVATIONS[activation], ACTIVATIONS[recurrent_activation]
    units = h.shape[-1]
    z = x @ w["kernel"] + h @ w["recurrent_kernel"]
    if "bias" in w:
        z = z + w["bias"]
    i = rec(z[:, :units])
    f = rec(z[:, units : 2 * units])
    c = f * c + i * act(z[:, 2 * units : 3 * units])
    o = rec(z[:, 3 * units :])
    h = o * act(c)
    return h, [h, c]


@dataclass(frozen=True)
class CellSpec:
    """One recurrent cell: its name in edgernn (CLI, manifest), its Keras layer class, its states and equations."""

    name: str
    keras_class: str  # the layer class in ``keras.layers`` (its ``cell`` holds the weights)
    state_names: tuple[str, ...]  # per layer, in Keras' order: ("h",) or ("h", "c")
    gates: int  # blocks of ``units`` columns in the kernels
    step: Callable  # ``(x, states, weights, activation=..., ...) -> (output, new_states)``

    def bias_shape(self, layer) -> tuple[int, ...]:
        width = self.gates * layer.units
        return (2, width) if self.name == "gru" and layer.reset_after else (width,)

    def bounded_states(self, layer) -> dict[str, tuple[float, float]]:
        """State name -> the range the cell keeps it in, for states bounded by the layer's activation: ``h`` is
        the activation's output (SimpleRNN), a blend of it with the previous ``h`` (GRU) or it scaled by a gate
        in [0, 1] (LSTM). An LSTM's ``c`` and any state of a relu/linear cell are unbounded."""
        bounds = ACTIVATION_RANGES.get(layer.activation)
        if bounds is None:
            return {}
        if self.name == "lstm":  # h = o * act(c), o in [0, 1]: the range stretched to include 0
            bounds = (min(bounds[0], 0.0), max(bounds[1], 0.0))
        return {"h": bounds}


CELLS = {spec.name: spec for spec in (
    CellSpec("simple_rnn", "SimpleRNN", ("h",), 1, simple_rnn_step),
    CellSpec("gru", "GRU", ("h",), 3, gru_step),
    CellSpec("lstm", "LSTM", ("h", "c"), 4, lstm_step),
)}


def weight_shapes(layers, input_features: int = 1, outputs: int = 1) -> dict[str, tuple[int, ...]]:
    """The float weights ``NumpyStepModel`` needs for ``layers`` (``LayerSpec``s): key -> shape, nothing else.

    Keras' layout: kernel ``[inputs, gates * units]``, recurrent kernel ``[units, gates * units]``, bias
    ``[gates * units]`` (a GRU with ``reset_after`` keeps input and recurrent biases apart: ``[2, 3 * units]``);
    the Dense head ``[units, outputs]`` and ``[outputs]``.
    """
    shapes, features = {}, input_features
    for i, layer in enumerate(layers):
        spec = CELLS[layer.cell]
        width = spec.gates * layer.units
        shapes[f"layer{i}/kernel"] = (features, width)
        shapes[f"layer{i}/recurrent_kernel"] = (layer.units, width)
        if layer.use_bias:
            shapes[f"layer{i}/bias"] = spec.bias_shape(layer)
        features = layer.units
    shapes["head/kernel"] = (features, outputs)
    shapes["head/bias"] = (outputs,)
    return shapes


class NumpyStepModel:
    """The whole step model (stacked cells + Dense head) in numpy float32, from a bundle's ``weights.npz``.

    ``weights`` keys: ``layer{i}/kernel``, ``layer{i}/recurrent_kernel``, ``layer{i}/bias``, ``head/kernel``,
    ``head/bias``; ``layers`` are ``LayerSpec``s from the manifest.
    """

    def __init__(self, layers, weights: dict):
        self.layers = list(layers)
        self.params = []
        for i, layer in enumerate(self.layers):
            w = {k.split("/", 1)[1]: np.asarray(v, dtype=np.float32) for k, v in weights.items()
                 if k.startswith(f"layer{i}/")}
            self.params.append(w)
        self.head_kernel = np.asarray(weights["head/kernel"], dtype=np.float32)
        self.head_bias = np.asarray(weights["head/bias"], dtype=np.float32)

    def step(self, x, states):
        """x ``[batch, F]``, states in ``ModelInfo.state_inputs`` order -> (y ``[batch, K]``, next states)."""
        z = np.asarray(x, dtype=np.float32)
        out_states, at = [], 0
        for layer, w in zip(self.layers, self.params):
            count = len(layer.state_names)
            z, new = CELLS[layer.cell].step(z, states[at : at + count], w, activation=layer.activation,
                                            recurrent_activation=layer.recurrent_activation,
                                            reset_after=layer.reset_after)
            out_states.extend(new)
            at += count
        y = z @ self.head_kernel + self.head_bias
        return y.astype(np.float32), [s.astype(np.float32) for s in out_states]

    def sequence(self, x):
        """A window ``[batch, time, F]`` from zero states -> ``[batch, K]`` (the window model's semantics)."""
        x = np.asarray(x, dtype=np.float32)
        batch = x.shape[0]
        states = [np.zeros((batch, layer.units), np.float32) for layer in self.layers for _ in layer.state_names]
        y = None
        for t in range(x.shape[1]):
            y, states = self.step(x[:, t, :], states)
        return y
