"""``edgernn train`` and ``edgernn.predict``: data in, a trained Keras recurrent model out, raw units throughout.

Two modes of the classic model family (recurrent layers + ``Dense(1)``, adam, mse):
- streaming (default): sequence-to-sequence training on long chunks, so the model learns what the device does,
  one step per sample with the hidden state carried forward indefinitely;
- window (``window=N``): the classic exercise, N values in, the next value out.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgernn.data import Series, Split, chronological_split, load_series, model_inputs
from edgernn.errors import DataError, ModelError
from edgernn.model_metadata import DataRecord, ModelMetadata
from edgernn.modeling import build_model, check_model_target, load_model, save_model
from edgernn.runtime.cells import CELLS
from edgernn.runtime.manifest import Mode
from edgernn.runtime.preprocessing import DIFFERENCE_CHOICES, SCALES, Preprocessing

TREND_R2 = 0.5  # a straight line explaining at least this share of the training variance means "trending"
CHUNK_LENGTH = 128  # streaming training sequence length
TEST_CONTEXT = 256  # values before the test split stored with the model, to warm the state up for verify
TRAIN_VALUES_STORED = 20000  # training values stored with the model: export's default calibration data


@dataclass
class TrainResult:
    """What ``train`` returns: the model (preprocessed units), the pipeline and the summary figures."""

    model: object
    preprocessing: Preprocessing
    metrics: dict
    model_path: Path | None
    metadata: dict = field(repr=False, default_factory=dict)  # the edgernn.json record (ModelMetadata.to_dict)


def _log(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


def choose_difference(values: np.ndarray, split: Split, mode: str) -> tuple[bool, str]:
    """Decide first differencing from the training data (``auto``) or as told; returns (choice, reason).

    ``auto`` differences when a straight line explains at least half the training split's variance, or when
    the validation split's mean lies outside the training split's range: either way the levels the device will
    see are not the levels the model learned, while the differences are.
    """
    if mode == "on":
        return True, "--difference on"
    if mode == "off":
        return False, "--difference off"
    # both tests are scale-free: on values divided by their largest magnitude, squares cannot overflow
    magnitude = float(np.max(np.abs(values[: split.val_end]))) or 1.0
    train = values[: split.train_end] / magnitude
    t = np.arange(train.size, dtype=np.float64)
    slope, intercept = np.polyfit(t, train, 1)
    residual = train - (slope * t + intercept)
    total = float(np.sum((train - train.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residual**2)) / total if total > 0 else 0.0
    if r2 >= TREND_R2:
        return True, f"auto: a linear trend explains {r2:.0%} of the training variance"
    val = values[split.train_end : split.val_end] / magnitude
    if val.size and not (train.min() <= val.mean() <= train.max()):
        return True, "auto: the validation mean lies outside the training range"
    return False, f"auto: no trend (a line explains {max(r2, 0.0):.0%} of the training variance)"


def fit_preprocessing(values: np.ndarray, split: Split, difference: bool, scale: str,
                      name: str = "the series") -> Preprocessing:
    """Fit the scaling on the training split only (after differencing, when chosen).

    Raises:
        DataError: the training part is constant, or its differences or scale overflow float64 (values near
            1e154 and beyond: the standard deviation squares them), naming ``name`` and the cause.
    """
    train = values[: split.train_end]
    if np.min(train) == np.max(train):
        raise DataError(f"{name}: the training part of the series is constant: there is nothing to learn or normalize")
    peak = float(np.max(np.abs(train)))
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is checked below, by name
        base = np.diff(train) if difference else train
        if not np.isfinite(base).all():
            raise DataError(f"{name}: the differences between training values overflow float64 (values up to "
                            f"{peak:.3g}); rescale the data (e.g. to other units)")
        if scale == "standard":
            offset, divisor = float(base.mean()), float(base.std())
        elif scale == "minmax":
            offset, divisor = float((base.max() + base.min()) / 2), float((base.max() - base.min()) / 2)
        else:
            offset, divisor = 0.0, 1.0
    if not (math.isfinite(offset) and math.isfinite(divisor)):
        raise DataError(f"{name}: {scale} scaling overflows float64 on the training "
                        f"{'differences' if difference else 'values'} (values up to {peak:.3g}: offset {offset:.3g}, "
                        f"divisor {divisor:.3g}); rescale the data (e.g. to other units)")
    magnitude = float(np.max(np.abs(base)))
    if scale != "none" and not divisor > 1e-9 * magnitude:
        # e.g. a perfect ramp: its differences are constant, so only the offset is informative; the divisor is
        # the data's own magnitude (relative, so a series of 1e-15 values is scaled as well as one of 1e15)
        divisor = magnitude if magnitude > 0 else 1.0
    return Preprocessing(difference, scale, offset, divisor)


def _windows(z: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Sliding windows of the model-input series and the value after each: ``[n, width, 1]``, ``[n]``."""
    count = z.size - width
    x = np.lib.stride_tricks.sliding_window_view(z, width)[:count]
    return x[..., None].astype(np.float32), z[width:].astype(np.float32)


def _chunks(z: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping sequence-to-sequence chunks: inputs ``z[i:i+L]``, targets ``z[i+1:i+L+1]`` (``[n, L, 1]``)."""
    length = min(length, z.size - 1)
    stride = max(1, length // 4)
    starts = list(range(0, z.size - length, stride))
    if starts[-1] != z.size - length - 1:
        starts.append(z.size - length - 1)
    x = np.stack([z[s : s + length] for s in starts])[..., None]
    y = np.stack([z[s + 1 : s + length + 1] for s in starts])[..., None]
    return x.astype(np.float32), y.astype(np.float32)


def _check_sizes(series: Series, split: Split, window: int | None, lag: int) -> None:
    need_train = (window or 8) + lag + 2
    need_other = (window or 2) + lag + 1
    train, val, test = split.train_end, split.val_end - split.train_end, split.length - split.val_end
    if train < need_train or val < 1 or test < 1 or (window is not None and series.values.size < window + 3):
        what = f"window {window}" if window else "streaming training"
        raise DataError(
            f"{series.name} has {series.values.size} points (train {train}, validation {val}, test {test}): "
            f"too few for {what}; need at least {need_train} training and {need_other} validation points"
        )
    if window is None and val < 3:
        raise DataError(f"{series.name}: the validation split has {val} points; streaming training needs 3")


class _EpochLine:
    """A Keras callback printing one line per epoch to stderr (quiet under --json and in tests)."""

    def __new__(cls, epochs: int, quiet: bool):
        from edgernn.tf_import import import_keras

        keras = import_keras()

        class EpochLine(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                _log(
                    f"epoch {epoch + 1}/{epochs}  loss {logs.get('loss', math.nan):.5f}"
                    f"  val_loss {logs.get('val_loss', math.nan):.5f}",
                    quiet,
                )

        return EpochLine()


def train(
    data: str = "sine",
    out: str | os.PathLike | None = None,
    *,
    column: str | None = None,
    time_column: str | None = None,
    cell: str = "simple_rnn",
    units: int = 50,
    layers: int = 1,
    window: int | None = None,
    epochs: int = 40,
    batch_size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
    patience: int = 10,
    difference: str = "auto",
    scale: str = "standard",
    force: bool = False,
    quiet: bool = False,
) -> TrainResult:
    """Train a model on a series and (with ``out``) save it as a ``.keras`` file with its pipeline.

    Args:
        data: ``counting``, ``sine``, or a ``.csv``/``.npy`` path (see ``edgernn.data.load_series``).
        out: where to save the model (``.keras``); None keeps it in memory only.
        cell: ``simple_rnn``, ``gru`` or ``lstm``.
        window: None for a streaming model (default), N for the classic N-values-in window model.
        difference: ``auto`` (decided from the training split), ``on`` or ``off``.
        scale: ``standard`` (mean/std), ``minmax`` (train range to [-1, 1]) or ``none``.
        seed: same seed, same weights on the same machine.
        force: replace an existing ``out`` (atomically); without it an existing file is refused before training.

    Returns:
        A ``TrainResult``; ``metrics`` holds test RMSE/MAE and the persistence baseline's, in raw units.

    Raises:
        DataError, ModelError: bad data or options, one line each.
    """
    _validate_options(cell, units, layers, window, epochs, batch_size, lr, patience, difference, scale)
    if out is not None:
        check_model_target(out, force)
    from edgernn.tf_import import import_keras

    keras = import_keras()  # a missing TensorFlow is the first and only thing reported
    prepared = _prepare(data, column, time_column, window, difference, scale, quiet)
    keras.utils.set_random_seed(seed)
    model = build_model(cell, units, layers, prepared.width)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
    callbacks = [_EpochLine(epochs, quiet)]
    if patience > 0:
        callbacks.append(keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True))
    model.fit(*prepared.training, validation_data=prepared.validation, epochs=epochs, batch_size=batch_size,
              shuffle=True, verbose=0, callbacks=callbacks)
    metrics = _judge(model, prepared, window, lr)
    metadata = ModelMetadata(Mode.STREAMING if window is None else Mode.WINDOW, window, cell, units, layers,
                             prepared.preprocessing, prepared.reason, seed, _data_record(prepared), metrics)
    model_path = save_model(model, out, metadata) if out is not None else None
    return TrainResult(model, prepared.preprocessing, metrics, model_path, metadata.to_dict())


@dataclass
class _Prepared:
    """A series made ready to train on: the pipeline fitted, and (x, y) arrays for training and validation."""

    series: Series
    split: Split
    preprocessing: Preprocessing
    reason: str  # why differencing is on or off
    width: int | None  # the model's input length (window models)
    training: tuple[np.ndarray, np.ndarray]
    validation: tuple[np.ndarray, np.ndarray]


def _prepare(data, column, time_column, window, difference, scale, quiet) -> _Prepared:
    """Load, split, choose differencing, fit the scaling on the training split, cut training sequences."""
    series = load_series(data, column=column, time_column=time_column)
    values = series.values
    split = chronological_split(values.size)
    use_difference, reason = choose_difference(values, split, difference) if values.size > 2 else (False, "")
    _check_sizes(series, split, window, int(use_difference))
    preprocessing = fit_preprocessing(values, split, use_difference, scale, series.name)
    z = model_inputs(values, preprocessing, series.name, split)  # z[k] is the model input made from raw value k + lag
    _log(f"data: {series.name}, {values.size} points (train {split.train_end}, "
         f"validation {split.val_end - split.train_end}, test {split.length - split.val_end})"
         + (f", {series.filled} gaps filled by linear interpolation" if series.filled else ""), quiet)
    _log(f"preprocessing: difference {'on' if use_difference else 'off'} ({reason}), scale {scale}", quiet)
    lag = preprocessing.lag
    width = None if window is None else window - lag
    if width is not None and width < 1:
        raise DataError(f"--window {window} leaves no model input after differencing; use --window 2 or more")
    train_z = z[: split.train_end - lag]
    val_z = z[max(0, split.train_end - lag - (width or 0)) : split.val_end - lag]
    if window is None:
        training, validation = _chunks(train_z, CHUNK_LENGTH), _chunks(val_z, CHUNK_LENGTH)
    else:
        training, validation = _windows(train_z, width), _windows(val_z, width)
    return _Prepared(series, split, preprocessing, reason, width, training, validation)


def _judge(model, prepared: _Prepared, window: int | None, lr: float) -> dict:
    """Test and validation figures beside persistence; warns when the model does not beat it, refuses a
    diverged model (nothing is saved)."""
    values, split = prepared.series.values, prepared.split
    metrics = evaluate(model, prepared.preprocessing, values, split.val_end, window)
    validation = evaluate(model, prepared.preprocessing, values[: split.val_end], split.train_end, window)
    metrics["val_rmse"], metrics["val_persistence_rmse"] = validation["test_rmse"], validation["persistence_rmse"]
    if metrics["val_rmse"] >= metrics["val_persistence_rmse"]:
        _log(f"warning: the model does not beat persistence on the validation split (RMSE "
             f"{metrics['val_rmse']:.4g} vs {metrics['val_persistence_rmse']:.4g}); try more --epochs, "
             f"--difference {'off' if prepared.preprocessing.difference else 'on'}, or more data",
             quiet=False)  # a warning, not progress
    if not math.isfinite(metrics["val_rmse"]) or not metrics["test_points"]:
        # a model of NaN weights is of no use to anyone: nothing is saved
        raise ModelError(f"training diverged: the model's predictions are not finite; nothing saved (try a lower "
                         f"--lr than {lr:g})")
    return metrics


def _data_record(prepared: _Prepared) -> DataRecord:
    """What the model keeps of its data: the held-out test part (verify's default) and the training split."""
    series, split = prepared.series, prepared.split
    values = series.values
    test_start = max(0, split.val_end - TEST_CONTEXT)
    val_start = max(0, split.train_end - TEST_CONTEXT)
    return DataRecord(
        name=series.name,
        points=int(values.size),
        filled=series.filled,
        split={"train_end": split.train_end, "val_end": split.val_end},
        # the held-out test part plus context to warm the state up: verify's default data
        test_start=int(test_start),
        test_context=int(split.val_end - test_start),
        test_values=values[test_start:].tolist(),
        # export's default calibration data: the training split (capped)
        train_values=values[: min(split.train_end, TRAIN_VALUES_STORED)].tolist(),
        # the validation part plus context: export sets each variant's intervals on it (never on the test part,
        # which verify measures their coverage on)
        val_context=int(split.train_end - val_start),
        val_values=values[val_start: split.val_end].tolist(),
    )


def _validate_options(cell, units, layers, window, epochs, batch_size, lr, patience, difference, scale) -> None:
    if cell not in CELLS:
        raise ModelError(f"unknown cell {cell!r}; expected one of {', '.join(CELLS)}")
    for name, value in (("units", units), ("layers", layers), ("epochs", epochs), ("batch size", batch_size)):
        if value < 1:
            raise ModelError(f"{name} must be at least 1, got {value}")
    if window is not None and window < 1:
        raise ModelError(f"window must be at least 1, got {window}")
    if not lr > 0:
        raise ModelError(f"learning rate must be positive, got {lr}")
    if patience < 0:
        raise ModelError(f"patience must be 0 (off) or more, got {patience}")
    if difference not in DIFFERENCE_CHOICES:
        raise ModelError(f"difference must be one of {', '.join(DIFFERENCE_CHOICES)}, got {difference!r}")
    if scale not in SCALES:
        raise ModelError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")


def evaluate(model, preprocessing: Preprocessing, values: np.ndarray, test_start: int, window: int | None) -> dict:
    """Test RMSE/MAE of next-value predictions whose target index is ``>= test_start``, beside persistence."""
    predictions = _predict(model, preprocessing, values, window)  # aligned: predictions[i] targets values[i+1]
    targets = values[1:]
    index = np.arange(1, values.size)
    keep = (index >= test_start) & np.isfinite(predictions[:-1])
    with np.errstate(over="ignore"):  # a difference of two finite values can overflow: +-inf, then kept out below
        error = predictions[:-1][keep] - targets[keep]
        persistence = values[:-1][keep] - targets[keep]
    (test_rmse, test_mae), (persistence_rmse, persistence_mae) = map(_rms_and_mean_abs, (error, persistence))
    return {
        "test_rmse": test_rmse,
        "test_mae": test_mae,
        "persistence_rmse": persistence_rmse,
        "persistence_mae": persistence_mae,
        "test_points": int(keep.sum()),
    }


def _rms_and_mean_abs(error: np.ndarray) -> tuple[float, float]:
    """RMSE and MAE of ``error`` (NaN for no points), computed on ``error / max|error|`` so that squares and sums of
    values near 1e200 cannot overflow."""
    peak = float(np.max(np.abs(error))) if error.size else math.nan
    if not 0 < peak < math.inf:  # no points (NaN), all zero (0), an overflowed difference (inf)
        return peak, peak
    scaled = error / peak
    return peak * float(np.sqrt(np.mean(scaled**2))), peak * float(np.mean(np.abs(scaled)))


def _predict(model, preprocessing: Preprocessing, values: np.ndarray, window: int | None) -> np.ndarray:
    """The prediction made after each raw value (NaN where none exists yet), in raw units: ``[len(values)]``."""
    values = np.asarray(values, dtype=np.float64)
    lag = preprocessing.lag
    z = preprocessing.transform(values)
    out = np.full(values.size, np.nan)
    if window is None:
        if z.size:
            y = model.predict(z[None, :, None].astype(np.float32), verbose=0)[0, :, 0]
            out[lag:] = preprocessing.decode(y.astype(np.float64), values[lag:])
        return out
    width = window - lag
    if z.size >= width:
        x = np.lib.stride_tricks.sliding_window_view(z, width)[..., None].astype(np.float32)
        y = model.predict(x, verbose=0, batch_size=1024)[:, 0]
        out[window - 1 :] = preprocessing.decode(y.astype(np.float64), values[window - 1 :])
    return out


def predict(model_or_path, values) -> np.ndarray:
    """Predictions in raw units from a model trained by edgernn (or a user's model: identity preprocessing).

    Streaming model: the prediction after each input value (same length as ``values``; NaN for the first value
    when the model works on differences). Window model: one prediction per complete window, so ``[-1]`` is the
    next value after the last window.
    """
    if isinstance(model_or_path, (str, os.PathLike)):
        model, metadata = load_model(model_or_path)
    elif isinstance(model_or_path, TrainResult):
        model, metadata = model_or_path.model, ModelMetadata.from_dict(model_or_path.metadata)
    else:
        model, metadata = model_or_path, None
    return predict_with(model, metadata, values)


def predict_with(model, metadata: ModelMetadata | None, values) -> np.ndarray:
    """``predict`` for a loaded model and its checked metadata (``modeling.load_model``/``load_model_bytes``)."""
    preprocessing = metadata.preprocessing if metadata else Preprocessing()
    window = metadata.window if metadata else None
    if window is None and model.inputs[0].shape[1] is not None:
        window = int(model.inputs[0].shape[1])
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.isfinite(values).all():
        raise DataError("values to predict from must all be finite numbers")
    out = _predict(model, preprocessing, values, window)
    return out if window is None else out[window - 1 :]
