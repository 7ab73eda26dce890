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


def replay_rows(rows: np.ndarray, steps: int, difference, season: int = 1) -> tuple[np.ndarray, str]:
    """``replay`` for a table ``[n, F]``: each repeat joined to the last by a short run of rows (4 to 32), along
    which a level column goes in a straight line back to its start and a differenced column (``difference``:
    one flag per column) keeps its mean step, and from which each differenced column continues. A model
    differenced over a season (``season`` rows) sees the last whole seasons repeated, so the cycle never skips."""
    rows = np.asarray(rows, dtype=np.float64)
    if rows.shape[0] >= steps:
        return rows[:steps], ""
    if season > 1 and rows.shape[0] >= 2 * season:
        block = rows[rows.shape[0] % season:]  # whole seasons, ending with the last row
        count = -(-(steps - rows.shape[0]) // block.shape[0])
        return np.concatenate([rows, *[block] * count])[:steps], f"its last {block.shape[0] // season} seasons " \
            f"repeated x{count}"
    difference = np.asarray(difference, dtype=bool)
    step = np.where(difference, np.mean(np.diff(rows, axis=0), axis=0), 0.0)
    bridge = int(np.clip(rows.shape[0] // 20, *BRIDGE_STEPS))
    parts, start, count = [], rows[0], 0
    while sum(p.shape[0] for p in parts) < steps:
        repeat = rows + np.where(difference, start - rows[0], 0.0)
        end = repeat[-1]
        ahead = np.where(difference, end + (bridge + 1) * step, rows[0])  # where the next repeat starts
        ramp = np.linspace(end, ahead, bridge + 2)[1:-1]
        parts.extend([repeat, ramp])
        start, count = ahead, count + 1
    return np.concatenate(parts)[:steps], f"repeated forwards x{count}, joined by {bridge}-row runs"


def float_reference(model, values: np.ndarray, columns, window: int | None = None) -> np.ndarray:
    """The float Keras model's prediction after each row of ``values [n, F]`` (NaN where none exists yet):
    ``[n, K*H]``; a plain univariate model's after each value of ``[n]``: ``[n]``."""
    from edgernn.training.evaluation import predict_rows

    rows = np.asarray(values, dtype=np.float64)
    out = predict_rows(model, columns, rows.reshape(rows.shape[0], -1), window)
    return out if columns.named else out[:, 0]


def reference_model(bundle):
    """A bundle's float Keras model and its metadata, from the hash-checked bytes (``safe_mode=True``)."""
    from edgernn.training.modeling import load_model_bytes

    return load_model_bytes(bundle.read("reference"), bundle.manifest.files["reference"].file)
