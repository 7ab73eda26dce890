"""The float model's answers, which every variant is measured against: replaying a series to a length, and the
float Keras model's prediction after each value. Used by export (the stored reference) and by verify."""

from __future__ import annotations

import math

import numpy as np


def repeat_to(values: np.ndarray, steps: int) -> np.ndarray:
    """``values`` forwards, backwards, forwards... cut to ``steps``: the joins are continuous, so repeating
    short data adds no artificial jumps (a jump can push states outside their calibrated range)."""
    repeats = max(1, math.ceil(steps / values.size))
    return np.concatenate([values if i % 2 == 0 else values[::-1] for i in range(repeats)])[:steps]


def float_reference(model, metadata, values: np.ndarray) -> np.ndarray:
    """The float Keras model's prediction after each value (NaN where none exists yet)."""
    from edgernn.training import predict_with

    out = predict_with(model, metadata, values)
    if out.size != values.size:  # window models: one per complete window
        out = np.concatenate([np.full(values.size - out.size, np.nan), out])
    return out


def reference_model(bundle):
    """A bundle's float Keras model and its metadata, from the hash-checked bytes (``safe_mode=True``)."""
    from edgernn.modeling import load_model_bytes

    return load_model_bytes(bundle.read("reference"), bundle.manifest.files["reference"].file)
