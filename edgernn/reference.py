"""The float model's answers, which every variant is measured against: replaying a series to a length, and the
float Keras model's prediction after each value. Used by export (the stored reference) and by verify."""

from __future__ import annotations

import numpy as np


BRIDGE_STEPS = (4, 32)  # a level model's joins: a straight line back to the start over this many steps (min, max)


def replay(values: np.ndarray, steps: int, difference: bool) -> tuple[np.ndarray, str]:
    """``values`` repeated forwards to ``steps``, the way a device could see them; returns them and how.

    Reversed data is data a device never sees (a trend backwards, a model on differences fed differences of the
    wrong sign), so every repeat runs forwards:
    - a model on differences: each repeat continues from where the last ended, so the model sees the series'
      own differences, in order and with their sign, plus one difference per join equal to their mean;
    - a model on levels: each repeat starts over, reached from the last value by a short straight line (4 to 32
      steps, a twentieth of the series) instead of a jump.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size >= steps:
        return values[:steps], ""
    if difference:
        step = float(np.mean(np.diff(values)))
        parts, offset = [], 0.0
        while sum(p.size for p in parts) < steps:
            parts.append(values + offset)
            offset = parts[-1][-1] + step - values[0]
        return np.concatenate(parts)[:steps], f"repeated forwards x{len(parts)}, each continuing the last"
    bridge = int(np.clip(values.size // 20, *BRIDGE_STEPS))
    ramp = np.linspace(values[-1], values[0], bridge + 2)[1:-1]
    parts = []
    while sum(p.size for p in parts) < steps:
        parts.extend([values, ramp])
    repeats = (len(parts) + 1) // 2
    return np.concatenate(parts)[:steps], f"repeated forwards x{repeats}, joined by {bridge}-step lines"


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
