"""Keras' recurrent cell equations in numpy (the numpy backend and an independent check).

Mirrors ``keras.layers.SimpleRNNCell/GRUCell/LSTMCell.call(inputs, states) -> (output, new_states)`` for the
configurations export accepts (GRU with ``reset_after=True`` or False, biases optional). The cells themselves
are ``edgernn.runtime.cell_table.CELLS`` (no numpy there: the CLI reads it); a new cell is a row there plus its
step function in ``STEPS`` here.
"""

from __future__ import annotations

import numpy as np

from edgernn.runtime.cell_table import CELLS


def _hard_sigmoid(x):
    return np.clip(x / 6.0 + 0.5, 0.0, 1.0)  # Keras 3: relu6(x + 3) / 6


ACTIVATIONS = {
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "relu": lambda x: np.maximum(x, 0.0),
    "linear": lambda x: x,
    "hard_sigmoid": _hard_sigmoid,
}


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


STEPS = {"simple_rnn": simple_rnn_step, "gru": gru_step, "lstm": lstm_step}  # ``(x, states, weights, ...)``
assert set(STEPS) == set(CELLS), "every cell of the table has its step function here"


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
            z, new = STEPS[layer.cell](z, states[at : at + count], w, activation=layer.activation,
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
