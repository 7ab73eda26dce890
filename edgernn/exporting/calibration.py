"""Representative data for full-integer quantization: real (x, state) pairs from the float model.

Random numbers give the converter the wrong ranges; the states a device will feed back are the ones the float
step model produces over real data, so the calibration set is taken by running it over the calibration series.
The model runs over the whole series (up to ``MAX_STEPS``) and the samples are spread over it, the extremes of
every feature among them: the first steps alone miss the range a later week reaches (half-hourly demand: 1.9 %
of test steps clipped from the first 1,000 training steps, 0.36 % from the training and validation splits).
"""

from __future__ import annotations

import numpy as np

from edgernn.data.series import FLOAT32_MAX, load_series, load_table
from edgernn.runtime.cells import NumpyStepModel
from edgernn.errors import ExportError
from edgernn.runtime.manifest import ModelInfo

DEFAULT_STEPS = 1000  # samples handed to the converter
MAX_STEPS = 200_000  # model inputs the float model is run over, at most (a few seconds of numpy steps)


def calibration_inputs(source, columns, steps: int, fallback: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs for calibration ``[n, F]`` float32 (at most ``MAX_STEPS``) and the raw rows; ``steps`` is the
    number of samples to be taken from them, checked here. A plain univariate model (``columns.named`` False:
    its bundle holds a series, as older bundles do) gets both as a series ``[n]``.

    ``source``: None (use ``fallback``: the training and validation rows stored with the model), ``sine`` or
    ``counting``, a ``.csv``/``.npy`` path read with the model's column names (a plain model: its one column),
    or a numpy array (a series for a one-column model, rows ``[n, F]``).
    """
    if steps < 1:
        raise ExportError(f"--calibration-steps must be at least 1, got {steps}")
    features, width = ",".join(columns.features), len(columns.inputs)
    name = "calibration data"
    if source is None:
        if fallback is None:
            raise ExportError("this model carries no training data: give --calibration-data (a .csv/.npy, sine or "
                              f"counting{f'; with the columns {features}' if columns.named else ''})")
        raw, name = np.asarray(fallback, dtype=np.float64), "the model's stored training and validation data"
    elif isinstance(source, np.ndarray):
        raw = source.astype(np.float64)
    else:  # the training loaders: the same checks, the same one-line errors
        read = load_table(str(source), columns=columns.features) if columns.named else load_series(str(source))
        raw, name = read.values, read.name
    if not (raw.ndim == 2 and raw.shape[1] == width or raw.ndim == 1 and width == 1):
        raise ExportError(f"calibration data must be rows of {width} values ({features}), got shape "
                          f"{list(raw.shape)}" if width > 1 else
                          f"calibration data must be a 1-D series, got shape {raw.shape}")
    if not np.isfinite(raw).all():
        raise ExportError("calibration data contains NaN or inf values")
    rows = raw.reshape(raw.shape[0], width)
    z = _inputs(rows, columns, name)
    if z.shape[0] < 2:
        raise ExportError(f"calibration data has {rows.shape[0]} rows; need at least {2 + columns.lag}")
    z = z[:MAX_STEPS].astype(np.float32)
    return (z, rows) if columns.named else (z[:, 0], rows[:, 0])


def _inputs(rows: np.ndarray, columns, name: str) -> np.ndarray:
    """``columns.transform(rows)``, refused unless every model input is a finite float32 (as training refuses
    one), naming the first raw row that is not."""
    with np.errstate(over="ignore", invalid="ignore"):
        z = columns.transform(rows)
    outside = ~(np.abs(z) <= FLOAT32_MAX)  # NaN fails the comparison too
    bad = np.flatnonzero(outside.any(axis=1))
    if bad.size:
        index, what = int(bad[0]) + columns.lag, "value" if rows.shape[1] == 1 else "row"
        first = z[bad[0]][outside[bad[0]]][0]
        raise ExportError(f"{name}: {what} {index + 1} (of {rows.shape[0]}) becomes {first:.3g} after preprocessing: "
                          "beyond float32, the model's input type; an outlier far outside the training range, or "
                          "data to rescale")
    return z


def spread(z: np.ndarray, count: int, width: int = 1) -> np.ndarray:
    """Start indices of ``count`` samples of ``width`` steps evenly spread over ``z``, plus ones holding each
    feature's lowest and highest value, so the calibrated input range is the whole series' range."""
    starts = z.shape[0] - width + 1
    rows = z.reshape(z.shape[0], -1)
    even = np.linspace(0, starts - 1, min(count, starts)).round().astype(int)
    extremes = np.concatenate([rows.argmin(axis=0), rows.argmax(axis=0)])
    return np.unique(np.concatenate([even, np.clip(extremes - width + 1, 0, starts - 1)]))


def streaming_samples(info: ModelInfo, weights: dict, z: np.ndarray, count: int = DEFAULT_STEPS) -> list[dict]:
    """Run the float step model over all of ``z`` from zero state; a ``{x, h0, ...}`` dict for each step
    ``spread`` keeps (real inputs with the states they really meet)."""
    model = NumpyStepModel(info.layers, weights)
    names = [name for name, _ in info.state_inputs()]
    states = [np.zeros((1, units), np.float32) for _, units in info.state_inputs()]
    keep = set(spread(z, count).tolist())
    samples = []
    for i, value in enumerate(z):
        x = np.asarray(value, np.float32).reshape(1, -1)  # [1, F]
        if i in keep:
            samples.append({"x": x, **{n: s.copy() for n, s in zip(names, states)}})
        _, states = model.step(x, states)
    return samples


def with_headroom(samples: list[dict], z: np.ndarray, headroom: float) -> list[dict]:
    """The samples plus two whose model input sits ``headroom`` x the calibrated span beyond each end (every
    feature, every window position), states from a real sample: the full-integer variants' input range widened
    so that data a little outside the training range is represented instead of clipped, at the cost of a
    coarser input step (``--headroom``; 0 leaves the samples as they are)."""
    if headroom <= 0:
        return samples
    low, high = float(z.min()), float(z.max())
    margin = headroom * ((high - low) or 1.0)
    extra = []
    for end in (low - margin, high + margin):
        sample = {k: v.copy() for k, v in samples[len(samples) // 2].items()}
        sample["x"] = np.full_like(sample["x"], end)
        extra.append(sample)
    return samples + extra


def window_samples(info: ModelInfo, z: np.ndarray, count: int = DEFAULT_STEPS) -> list[dict]:
    """Windows of ``z`` (``[n]`` or rows ``[n, F]``) spread over it, as ``{x: [1, window, F]}`` dicts."""
    if z.shape[0] < info.window:
        raise ExportError(f"calibration data has {z.shape[0]} model inputs; the window model needs {info.window}")
    rows = z.reshape(z.shape[0], -1)
    return [{"x": rows[i:i + info.window][None].astype(np.float32)} for i in spread(z, count, info.window)]
