"""The float model's answers, which every variant is measured against: replaying a series to a length, and the
float Keras model's prediction after each value. Used by export (the stored reference) and by verify."""

from __future__ import annotations

import numpy as np


BRIDGE_STEPS = (4, 32)  # a level model's joins: a straight line back to the start over this many steps (min, max)


def replay(rows: np.ndarray, steps: int, difference, season: int = 1) -> tuple[np.ndarray, str]:
    """``rows`` (a series ``[n]``, or a table ``[n, F]``) repeated forwards to ``steps``, the way a device could
    see them; returns them (the shape given) and how.

    Reversed data is data a device never sees (a trend backwards, a model on differences fed differences of the
    wrong sign), so every repeat runs forwards. ``difference``: one flag, or one per column.
    - A model differenced over a season (``season`` rows) sees its last whole seasons repeated: the cycle never
      skips.
    - Every column differenced: each repeat continues from where the last ended, so the model sees the series'
      own differences, in order and with their sign, plus one difference per join equal to their mean.
    - Otherwise each repeat is joined to the last by a short run of rows (4 to 32, a twentieth of the series)
      along which a level column goes in a straight line back to its start and a differenced one keeps its mean
      step (and the next repeat continues from there).
    """
    rows = np.asarray(rows, dtype=np.float64)
    table = rows.reshape(rows.shape[0], -1)
    if table.shape[0] >= steps:
        return rows[:steps], ""
    if season > 1 and table.shape[0] >= 2 * season:
        block = table[table.shape[0] % season:]  # whole seasons, ending with the last row
        count = -(-(steps - table.shape[0]) // block.shape[0])
        out = np.concatenate([table, *[block] * count])[:steps]
        return out.reshape(-1, *rows.shape[1:]), f"its last {block.shape[0] // season} seasons repeated x{count}"
    difference = np.broadcast_to(np.asarray(difference, dtype=bool), table.shape[1:])
    step = np.array([np.mean(np.diff(column)) if flag else 0.0 for column, flag in zip(table.T, difference)])
    if difference.all():
        parts, offset = [], 0.0
        while sum(p.shape[0] for p in parts) < steps:
            parts.append(table + offset)
            offset = parts[-1][-1] + step - table[0]
        how = f"repeated forwards x{len(parts)}, each continuing the last"
        return np.concatenate(parts)[:steps].reshape(-1, *rows.shape[1:]), how
    bridge = int(np.clip(table.shape[0] // 20, *BRIDGE_STEPS))
    parts, start, count = [], table[0], 0
    while sum(p.shape[0] for p in parts) < steps:
        repeat = table + np.where(difference, start - table[0], 0.0)
        end = repeat[-1]
        ahead = np.where(difference, end + (bridge + 1) * step, table[0])  # where the next repeat starts
        parts.extend([repeat, np.linspace(end, ahead, bridge + 2)[1:-1]])
        start, count = ahead, count + 1
    joins = f"{bridge}-step lines" if rows.ndim == 1 else f"{bridge}-row runs"
    return np.concatenate(parts)[:steps].reshape(-1, *rows.shape[1:]), f"repeated forwards x{count}, joined by {joins}"


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
