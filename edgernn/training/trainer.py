"""``edgernn train`` and ``edgernn.predict``: data in, a trained Keras recurrent model out, raw units throughout.

Two modes of the classic model family (recurrent layers + ``Dense(1)``, adam, mse):
- streaming (default): sequence-to-sequence training on long chunks, so the model learns what the device does,
  one step per sample with the hidden state carried forward indefinitely;
- window (``window=N``): the classic exercise, N values in, the next value out.

A multivariate model (``columns``, ``targets``, ``horizon``) is the same family with F features in and a
``Dense(K*H)`` head: each of K targets' next H values (``edgernn.runtime.columns``), every column differenced and
scaled on its own. One column in, the same column out, one step ahead is the univariate model, trained exactly
as before.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgernn.training.comparison import versus
from edgernn.data.series import (FLOAT32_MAX, Series, Split, Table, chronological_split, load_series, load_table,
                          model_inputs)
from edgernn.training.model_metadata import DataRecord, ModelMetadata
from edgernn.training.modeling import build_model, check_model_target, load_model, save_model
from edgernn.runtime.cell_table import CELLS, DEFAULT_CELL
from edgernn.runtime.columns import (MAX_COLUMNS, MAX_HORIZON, MAX_PERIOD, Columns, InputColumn, OutputColumn,
                                     output_base)
from edgernn.errors import DataError, ModelError
from edgernn.runtime.manifest import Mode
from edgernn.runtime.options import BASELINES, DIFFERENCE_CHOICES, SCALES
from edgernn.runtime.preprocessing import Preprocessing
from edgernn.runtime.smoothing import forecasts
from edgernn.training.season_baseline import (choose_season, clear_seasons, network_shares, persistence_beats_the_mean,
                                     seasonal_changes, seasonal_input, smoothing_if_better, with_shares)
from edgernn.training.search import DEFAULT_LR, DEFAULT_UNITS

TREND_R2 = 0.5  # a straight line explaining at least this share of the training variance means "trending"
CHUNK_LENGTH = 128  # streaming training sequence length
TEST_CONTEXT = 256  # values before the test split stored with the model, to warm the state up for verify
TRAIN_VALUES_STORED = 20000  # training values stored with the model: export's default calibration data
FOUND = "found"  # no --season given: each target's clear seasons (``clear_seasons``) are offered to the model


@dataclass
class TrainResult:
    """What ``train`` returns: the model (preprocessed units), the pipeline and the summary figures."""

    model: object
    preprocessing: Preprocessing  # identity for a multivariate model: see ``columns``
    metrics: dict
    model_path: Path | None
    metadata: dict = field(repr=False, default_factory=dict)  # the edgernn.json record (ModelMetadata.to_dict)
    columns: Columns | None = None  # a multivariate model's inputs and outputs


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
    offset, divisor = fit_scale(base, scale, name, "differences" if difference else "values", peak)
    return Preprocessing(difference, scale, offset, divisor)


def fit_scale(base: np.ndarray, scale: str, name: str, what: str, peak: float) -> tuple[float, float]:
    """``(offset, divisor)`` of a ``scale`` fitted on ``base`` (training values, differences, or a model output's
    targets); ``what`` and ``peak`` (the largest raw magnitude behind them) are for the overflow message.

    Raises:
        DataError: the scale overflows float64.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is checked below, by name
        if scale == "standard":
            offset, divisor = float(base.mean()), float(base.std())
        elif scale == "minmax":
            offset, divisor = float((base.max() + base.min()) / 2), float((base.max() - base.min()) / 2)
        else:
            offset, divisor = 0.0, 1.0
    if not (math.isfinite(offset) and math.isfinite(divisor)):
        raise DataError(f"{name}: {scale} scaling overflows float64 on the training {what} (values up to "
                        f"{peak:.3g}: offset {offset:.3g}, divisor {divisor:.3g}); rescale the data (e.g. to other "
                        "units)")
    magnitude = float(np.max(np.abs(base)))
    if scale != "none" and not divisor > 1e-9 * magnitude:
        # e.g. a perfect ramp: its differences are constant, so only the offset is informative; the divisor is
        # the data's own magnitude (relative, so a series of 1e-15 values is scaled as well as one of 1e15)
        divisor = magnitude if magnitude > 0 else 1.0
    return offset, divisor


def _windows(z: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Sliding windows of the model-input series and the value after each: ``[n, width, 1]``, ``[n]``."""
    count = z.size - width
    x = np.lib.stride_tricks.sliding_window_view(z, width)[:count]
    return x[..., None].astype(np.float32), z[width:].astype(np.float32)


def _chunks(z: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping sequence-to-sequence chunks: inputs ``z[i:i+L]``, targets ``z[i+1:i+L+1]`` (``[n, L, 1]``)."""
    return _sequence_chunks(z[:-1, None], z[1:, None], length)


def _sequence_chunks(x: np.ndarray, y: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping chunks of aligned rows (``y[i]`` is what the model should say after ``x[i]``): ``[n, L, F]``,
    ``[n, L, outputs]``; a quarter-chunk stride, and the last chunk ends at the last row."""
    rows = x.shape[0]
    length = min(length, rows)
    stride = max(1, length // 4)
    starts = list(range(0, rows - length + 1, stride))
    if starts[-1] != rows - length:
        starts.append(rows - length)
    chunks_x = np.stack([x[s : s + length] for s in starts])
    chunks_y = np.stack([y[s : s + length] for s in starts])
    return chunks_x.astype(np.float32), chunks_y.astype(np.float32)


def _window_pairs(x: np.ndarray, y: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Sliding windows of aligned rows and what the model should say after each: ``[n, width, F]``,
    ``[n, outputs]``."""
    windows = np.lib.stride_tricks.sliding_window_view(x, width, axis=0)  # [n, F, width]
    return np.swapaxes(windows, 1, 2).astype(np.float32), y[width - 1 :].astype(np.float32)


def _check_sizes(name: str, points: int, split: Split, window: int | None, lag: int) -> None:
    """Refuse a series too short for the mode; ``lag`` counts the rows a prediction needs beyond the window."""
    need_train = (window or 8) + lag + 2
    need_other = (window or 2) + lag + 1
    train, val, test = split.train_end, split.val_end - split.train_end, split.length - split.val_end
    if train < need_train or val < 1 or test < 1 or (window is not None and points < window + 3):
        what = f"window {window}" if window else "streaming training"
        raise DataError(
            f"{name} has {points} points (train {train}, validation {val}, test {test}): "
            f"too few for {what}; need at least {need_train} training and {need_other} validation points"
        )
    if window is None and val < 3:
        raise DataError(f"{name}: the validation split has {val} points; streaming training needs 3")


class _EpochLine:
    """A Keras callback printing one line per epoch to stderr (quiet under --json and in tests)."""

    def __new__(cls, epochs: int, quiet: bool):
        from edgernn.training.tf_import import import_keras

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
    columns=None,
    targets=None,
    horizon: int | None = None,
    time_column: str | None = None,
    cell: str = DEFAULT_CELL,
    units: int = DEFAULT_UNITS,
    layers: int = 1,
    window: int | None = None,
    epochs: int = 40,
    batch_size: int = 32,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    patience: int = 10,
    difference: str = "auto",
    scale: str = "standard",
    force: bool = False,
    quiet: bool = False,
    season: list[int] | str | None = None,
    baseline: str = "auto",
    budget: float | None = None,
) -> TrainResult:
    """Train a model on a series and (with ``out``) save it as a ``.keras`` file with its pipeline.

    Args:
        data: ``counting``, ``sine``, ``lagged``, or a ``.csv``/``.npy`` path (see ``edgernn.data.series.load_series``).
        out: where to save the model (``.keras``); None keeps it in memory only.
        column: the one column of a univariate model (CSV, ``lagged``).
        columns: a multivariate model's input columns: names or 0-based indices, or ``"all"`` (every numeric
            column; the default when ``targets`` or ``horizon`` is given). See ``edgernn.data.series.load_table``.
        targets: the input columns to predict (names or indices); default the first input column.
        horizon: predict each target's next H values (default 1).
        cell: ``simple_rnn``, ``gru`` or ``lstm``.
        window: None for a streaming model (default), N for the classic N-values-in window model.
        difference: ``auto`` (decided from the training split), ``on`` or ``off``.
        scale: ``standard`` (mean/std), ``minmax`` (train range to [-1, 1]) or ``none``.
        seed: same seed, same weights on the same machine.
        force: replace an existing ``out`` (atomically); without it an existing file is refused before training.
        season: seasonal periods in rows. None detects them on the training split for the peers the summary
            holds the model beside (``edgernn.training.peers``), and offers the clear ones to a streaming model
            (``clear_seasons``); ``[]`` (``"none"``) uses none. Given (``[48, 336]``, or ``--season`` text
            ``"48,336"``), they are offered to the model (streaming only): a target whose season beats
            persistence on validation is differenced over it, and the season is kept only if the model with it
            beats the same model without it on validation (``edgernn.training.season_baseline``).
        budget: seconds for choosing the network by validation (``edgernn.training.search``): 0 trains the given size
            only; None (auto) searches a short series (``search.auto_budget``) for a streaming model whose
            ``units`` and ``lr`` are left at their defaults.
        baseline: under a seasonal target, ``auto`` puts Holt-Winters (``edgernn.runtime.smoothing``) where it
            beats the season's naive forecasts on validation; ``naive`` keeps those (the value one season back).
            Under a one-column model that does not beat persistence on validation, both blend the network into
            persistence (``_blended_if_better``); ``none`` keeps the network alone (what c-array can generate).

    Returns:
        A ``TrainResult``; ``metrics`` holds test RMSE/MAE and the persistence baseline's, in raw units. A
        multivariate model's are per output (``test_rmse[temp+3]``, ``persistence_rmse[temp+3]``, ...), and the
        plain keys (``test_rmse``, ``persistence_rmse``, ...) are those of its worst output: the one whose test
        RMSE is the largest share of persistence's at its horizon, so ``test_rmse < persistence_rmse`` says
        every output beats persistence (raw RMSEs of different targets are in different units: no mean).
        The peers' validation and test RMSEs are there too (``peer_val_rmse[NAME]``, ``peer_test_rmse[NAME]``;
        ``[OUTPUT: NAME]`` per one-step output): see ``edgernn.training.peers``.

    Raises:
        DataError, ModelError: bad data or options, one line each.
    """
    _validate_options(cell, units, layers, window, epochs, batch_size, lr, patience, difference, scale)
    _validate_outputs(column, columns, targets, horizon)
    if baseline not in BASELINES:
        raise ModelError(f"baseline must be one of {', '.join(BASELINES)}, got {baseline!r}")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float))
                               or not 0 <= budget < math.inf):
        raise ModelError(f"budget must be a number of seconds, 0 or more, got {budget!r}")
    from edgernn.data.seasons import periods_given

    season = periods_given(season)  # None: found on the training split (peers; the model where they are clear)
    seasons = FOUND if season is None and window is None else _validate_seasons(season, window)
    if out is not None:
        check_model_target(out, force)
    from edgernn.training.tf_import import import_keras

    keras = import_keras()  # a missing TensorFlow is the first and only thing reported
    fit = _Fit(keras, cell, units, layers, window, epochs, batch_size, lr, seed, patience, quiet)
    prepared = _prepare_any(data, column, columns, targets, horizon, time_column, window, difference, scale, quiet,
                            seasons, smooth=baseline == "auto")
    started = time.monotonic()
    prepared, model, metrics = _kept_if_it_pays(fit, prepared, lambda: _prepare_any(
        data, column, columns, targets, horizon, time_column, window, difference, scale, True), quiet)
    if (baseline != "none" and not isinstance(prepared, _PreparedTable)
            and not metrics["val_rmse"] < metrics["val_persistence_rmse"]):
        prepared, model, metrics = _blended_if_better(fit, prepared, model, metrics, column, window, difference,
                                                      scale, quiet)
    if budget is None:
        budget = _auto_budget(prepared, window is None and (units, lr) == (DEFAULT_UNITS, DEFAULT_LR), quiet)
    if budget > 0:
        fit, prepared, model, metrics = _searched(fit, prepared, model, metrics, time.monotonic() - started, budget,
                                                  quiet)
    _warn_if_behind(metrics, prepared)
    multivariate = isinstance(prepared, _PreparedTable)
    metrics.update(_peer_metrics(prepared, season, quiet))
    columns = prepared.columns if multivariate else None
    if columns is not None:
        _log_outputs(metrics, columns, quiet)
    metadata = ModelMetadata(Mode.STREAMING if window is None else Mode.WINDOW, window, cell, fit.units, layers,
                             prepared.preprocessing, prepared.reason, seed, _data_record(prepared), metrics, columns)
    model_path = save_model(model, out, metadata) if out is not None else None
    return TrainResult(model, prepared.preprocessing, metrics, model_path, metadata.to_dict(), columns)


def _kept_if_it_pays(fit, prepared, prepare_plain, quiet: bool):
    """``(prepared, model, metrics)`` fitted on ``prepared``; when it carries a season, the same model is also
    fitted without it (``prepare_plain()``) and the one with the lower validation RMSE is kept, both logged.
    Both are prepared before either trains: data either refuses is refused before any training or log line."""
    seasonal = isinstance(prepared, _PreparedTable) and prepared.columns.lag > 1
    plain = prepare_plain() if seasonal else None
    _announce(prepared, quiet)
    model, metrics = fit(prepared)
    if plain is None:
        return prepared, model, metrics
    plain_model, plain_metrics = fit(plain)
    keep = metrics["val_rmse"] <= plain_metrics["val_rmse"]
    _log(f"season {prepared.columns.lag}: validation RMSE {metrics['val_rmse']:.4g}, without it "
         f"{plain_metrics['val_rmse']:.4g}: {'keeping the season' if keep else 'no season'}", quiet)
    return (prepared, model, metrics) if keep else (plain, plain_model, plain_metrics)


def _blended_if_better(fit, prepared, model, metrics, column, window, difference, scale, quiet: bool):
    """A univariate model that does not beat persistence on validation, trained again as a one-column table
    (F = K = H = 1) whose output is its baseline (persistence where it beats the mean) plus the network's share
    of the change, fitted on validation (``network_shares``; 0 = the baseline alone): kept if its validation
    RMSE is lower, so the model deployed is about as good as persistence at worst."""
    try:
        blended = _prepare_table(_one_column(prepared.series, column), [0], 1, window, difference, scale, True)
    except DataError:
        return prepared, model, metrics  # too few rows for the table's cut: keep what there is
    if _same_arrays(blended.training, prepared.training) and _same_arrays(blended.validation, prepared.validation):
        # differenced: the table's network sees and predicts exactly what this one was trained on, so it is
        # this network, judged again with persistence and a share under it (no second training)
        blended_model, blended_metrics = model, _judge_table(model, blended, window, fit.lr)
    else:
        blended_model, blended_metrics = fit(blended)
    keep = blended_metrics["val_rmse"] < metrics["val_rmse"]
    _log(f"the model does not beat persistence on validation (RMSE {metrics['val_rmse']:.4g} vs "
         f"{metrics['val_persistence_rmse']:.4g}); with the network blended into its baseline "
         f"{blended_metrics['val_rmse']:.4g}: {'keeping the blend' if keep else 'keeping the model'}", quiet)
    return (blended, blended_model, blended_metrics) if keep else (prepared, model, metrics)


def _same_arrays(a: tuple, b: tuple) -> bool:
    return all(x.shape == y.shape and np.array_equal(x, y, equal_nan=True) for x, y in zip(a, b))


def _auto_budget(prepared, default_model: bool, quiet: bool) -> float:
    """The search's budget when none was given (``search.auto_budget``), said in the log when there is one."""
    from edgernn.training.search import auto_budget

    rows = prepared.split.train_end
    budget = auto_budget(rows, default_model)
    if budget:
        _log(f"a short series ({rows} training rows): other sizes too, within {budget:g} s (--budget 0: the default "
             "size only)", quiet)
    return budget


def _searched(fit, prepared, model, metrics, seconds: float, budget: float, quiet: bool):
    """The default model beside the ``edgernn.training.search`` candidates the budget allows; the kept one, logged."""
    from edgernn.training import search

    log = lambda message: _log(message, quiet)  # noqa: E731
    fit, prepared, model, metrics, tried = search.search(fit, prepared, model, metrics, seconds, budget, log)
    kept = next(t for t in tried if (t.units, t.lr) == (fit.units, fit.lr))
    for line in [f"search within {budget:g} s, chosen on validation:", *search.table(tried, kept)]:
        log(line)
    metrics.update({f"candidate_val_rmse[{t.label}]": t.val_rmse for t in tried})
    return fit, prepared, model, metrics


@dataclass(frozen=True)
class _Fit:
    """Build, fit and judge one model on prepared data: ``(model, metrics)``, the same seed every time."""

    keras: object
    cell: str
    units: int
    layers: int
    window: int | None
    epochs: int
    batch_size: int
    lr: float
    seed: int
    patience: int
    quiet: bool

    def __call__(self, prepared):
        keras, table = self.keras, isinstance(prepared, _PreparedTable)
        keras.utils.set_random_seed(self.seed)
        model = build_model(self.cell, self.units, self.layers, prepared.width,
                            *((prepared.features, len(prepared.columns.outputs)) if table else ()))
        model.compile(optimizer=keras.optimizers.Adam(self.lr), loss="mse")
        callbacks = [_EpochLine(self.epochs, self.quiet)]
        if self.patience > 0:
            callbacks.append(keras.callbacks.EarlyStopping(patience=self.patience, restore_best_weights=True))
        model.fit(*prepared.training, validation_data=prepared.validation, epochs=self.epochs,
                  batch_size=self.batch_size, shuffle=True, verbose=0, callbacks=callbacks)
        return model, (_judge_table if table else _judge)(model, prepared, self.window, self.lr)


def _prepare_any(data, column, columns, targets, horizon, time_column, window, difference, scale, quiet,
                 seasons=(), smooth=False):
    """The univariate preparation, unless more than one column in, another column out, a horizon or a season is
    asked (a seasonal univariate model is a one-column table). ``seasons``: the candidate periods, or ``FOUND``
    (each target's ``clear_seasons``)."""
    if columns is None and targets is None and horizon in (None, 1):
        series = load_series(data, column=column, time_column=time_column)
        seasons = _found(series.values, series.spacing) if seasons == FOUND else seasons
        if not seasons:
            return _prepare(series, window, difference, scale, quiet)
        return _prepare_table(_one_column(series, column), [0], 1, window, difference, scale, quiet, seasons, smooth)
    table = load_table(data, [column] if column is not None else columns, time_column)
    chosen = _target_indices(table, targets)
    outputs = len(chosen) * (horizon or 1)
    if len(table.names) > MAX_COLUMNS:
        raise DataError(f"{table.name}: {len(table.names)} input columns; a model takes at most {MAX_COLUMNS} "
                        "(choose some with --columns)")
    if outputs > MAX_COLUMNS:
        raise DataError(f"{len(chosen)} target(s) x horizon {horizon} = {outputs} outputs; a model has at most "
                        f"{MAX_COLUMNS} (fewer --target or a shorter --horizon)")
    if len(table.names) == 1 and seasons == FOUND:
        seasons = _found(table.values[:, 0], table.spacing)
    if len(table.names) == 1 and (horizon or 1) == 1 and not seasons:  # one column in and out, one step
        if table.skipped:
            _log(f"data: left out index-like column(s) {', '.join(map(repr, table.skipped))} (row numbers)", False)
        return _prepare(table.column(0), window, difference, scale, quiet)
    return _prepare_table(table, chosen, horizon or 1, window, difference, scale, quiet, seasons, smooth)


def _one_column(series: Series, column: str | None) -> Table:
    """A series as the one-column table a seasonal or blended univariate model is prepared from."""
    return Table(series.values[:, None], (column or "value",), series.name, (series.filled,), series.spacing)


def _found(values: np.ndarray, spacing: float | None) -> tuple[int, ...]:
    """One column's clear seasons (none for fewer than 3 values: nothing to split)."""
    return tuple(clear_seasons(values, chronological_split(values.size), spacing)) if values.size > 2 else ()


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


def _prepare(series: Series, window, difference, scale, quiet) -> _Prepared:
    """Split, choose differencing, fit the scaling on the training split, cut training sequences."""
    values = series.values
    split = chronological_split(values.size)
    use_difference, reason = choose_difference(values, split, difference) if values.size > 2 else (False, "")
    _check_sizes(series.name, values.size, split, window, int(use_difference))
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
    """Test and validation figures beside persistence (``_warn_if_behind`` warns when the model does not beat
    it); refuses a diverged model (nothing is saved)."""
    values, split = prepared.series.values, prepared.split
    metrics = evaluate(model, prepared.preprocessing, values, split.val_end, window)
    validation = evaluate(model, prepared.preprocessing, values[: split.val_end], split.train_end, window)
    metrics["val_rmse"], metrics["val_persistence_rmse"] = validation["test_rmse"], validation["persistence_rmse"]
    if not math.isfinite(metrics["val_rmse"]) or not metrics["test_points"]:
        # a model of NaN weights is of no use to anyone: nothing is saved
        raise ModelError(f"training diverged: the model's predictions are not finite; nothing saved (try a lower "
                         f"--lr than {lr:g})")
    return metrics


def _peer_metrics(prepared, season, quiet: bool) -> dict:
    """The peers' figures (``edgernn.training.peers``) for the series, or for each target of a one-step output."""
    from edgernn.training import peers

    split = prepared.split
    log = lambda message: _log(message, quiet)  # noqa: E731
    if not isinstance(prepared, _PreparedTable):
        return peers.metrics_for(prepared.series.values, split.train_end, split.val_end, prepared.series.spacing,
                                 season, log)
    table, found, one = prepared.table, {}, prepared.columns.univariate  # one column: keyed as a series is
    for name, output in zip(prepared.columns.output_names(), prepared.columns.outputs):
        if output.step == 1:
            found.update(peers.metrics_for(table.values[:, output.source], split.train_end, split.val_end,
                                           table.spacing, season, log, None if one else name))
    return found


def _data_record(prepared) -> DataRecord:
    """What the model keeps of its data: the held-out test part (verify's default) and the training split.

    A multivariate model's stretches are rows of F values, stored flat (row after row), cut where a univariate
    model's are cut (the training split capped at ``TRAIN_VALUES_STORED`` rows)."""
    split = prepared.split
    if isinstance(prepared, _PreparedTable):
        table = prepared.table
        name, values, filled = table.name, table.values, sum(table.filled)
        per_column = {"features": len(table.names), "filled_columns": dict(zip(table.names, table.filled))}
    else:
        name, values, filled, per_column = prepared.series.name, prepared.series.values, prepared.series.filled, {}
    context = TEST_CONTEXT + (prepared.columns.lag if isinstance(prepared, _PreparedTable) else 0)  # + a season
    test_start = max(0, split.val_end - context)
    val_start = max(0, split.train_end - context)
    return DataRecord(
        name=name,
        points=int(values.shape[0]),
        filled=filled,
        split={"train_end": split.train_end, "val_end": split.val_end},
        # the held-out test part plus context to warm the state up: verify's default data
        test_start=int(test_start),
        test_context=int(split.val_end - test_start),
        test_values=values[test_start:].reshape(-1).tolist(),
        # export's default calibration data: the training split (capped)
        train_values=values[: min(split.train_end, TRAIN_VALUES_STORED)].reshape(-1).tolist(),
        # the validation part plus context: export sets each variant's intervals on it (never on the test part,
        # which verify measures their coverage on)
        val_context=int(split.train_end - val_start),
        val_values=values[val_start: split.val_end].reshape(-1).tolist(),
        **per_column,
    )


@dataclass
class _PreparedTable:
    """Several columns made ready to train on: the columns fitted, and (x, y) arrays for training and
    validation (y: every target's next ``horizon`` values, scaled)."""

    table: Table
    split: Split
    columns: Columns
    reason: str  # why each column is differenced or not
    width: int | None
    training: tuple[np.ndarray, np.ndarray]
    validation: tuple[np.ndarray, np.ndarray]
    preprocessing: Preprocessing = field(default_factory=Preprocessing)  # identity: the columns say it all
    notes: tuple = ()  # the training log's lines about it (``_table_notes``)
    unshared: Columns | None = None  # ``columns`` before judging sets the network's share in them

    @property
    def features(self) -> int:
        return len(self.columns.inputs)


def _target_indices(table: Table, targets) -> list[int]:
    """The input columns to predict, by name or 0-based index among the inputs (default the first)."""
    if targets is None:
        return [0]
    chosen = []
    for target in [targets] if isinstance(targets, (str, int)) else targets:
        text = str(target).strip()
        if text in table.names:
            index = table.names.index(text)
        elif text.isdigit() and int(text) < len(table.names):
            index = int(text)
        else:
            raise DataError(f"target {text!r} is not an input column; inputs: {', '.join(table.names)} (a target "
                            "must be one of --columns)")
        if index in chosen:
            raise DataError(f"target {table.names[index]!r} is given twice")
        chosen.append(index)
    if not chosen:
        raise DataError(f"no target given; inputs: {', '.join(table.names)}")
    return chosen


def _prepare_table(table: Table, targets: list[int], horizon: int, window, difference, scale,
                   quiet, seasons=(), smooth=False) -> _PreparedTable:
    """Split; difference (over a season where it beats persistence) and scale each column on its own; fit each
    output's scale; cut training sequences."""
    values = table.values
    points = values.shape[0]
    split = chronological_split(points)
    decisions = [choose_difference(values[:, j], split, difference) if points > 2 else (False, "")
                 for j in range(len(table.names))]
    periods, smoothings = [1] * len(table.names), [None] * len(table.names)
    for j in targets if seasons and points > 2 else ():
        candidates = clear_seasons(values[:, j], split, table.spacing) if seasons == FOUND else seasons
        periods[j], why = choose_season(values[:, j], split, candidates, horizon)
        decisions[j] = (True, why) if periods[j] > 1 else (decisions[j][0], "; ".join(filter(None, [
            decisions[j][1], why])))
    lag = max([p if on else 0 for p, (on, _) in zip(periods, decisions)], default=0)
    for j in targets if smooth and lag > 1 and horizon == 1 else ():  # Holt-Winters under the network if it wins
        if periods[j] == lag:
            smoothings[j], why = smoothing_if_better(values[:, j], split, lag)
            decisions[j] = (True, f"{decisions[j][1]}; {why}") if why else decisions[j]
    _check_sizes(table.name, points, split, window, lag + horizon - 1)
    inputs = tuple(_fit_input(values[:, j], split, on, period, scale, table, j, smoothings[j])
                   for j, ((on, _), period) in enumerate(zip(decisions, periods)))
    relative = {j: inputs[j].difference or (difference == "auto" and persistence_beats_the_mean(values[:, j], split))
                for j in targets}  # the baseline under each target: persistence (or its season), else none
    columns = Columns(inputs, _fit_outputs(table, split, inputs, targets, horizon, scale, relative))
    z = columns.transform(values)  # z[i] is the model input made from raw row i + lag
    y = _scaled_targets(values, columns)  # y[t]: what the model should say after raw row t
    notes = _table_notes(table, split, decisions, columns, scale)
    width = None if window is None else window - lag
    if width is not None and width < 1:
        raise DataError(f"--window {window} leaves no model input after differencing; use --window 2 or more")
    train_end, val_end = split.train_end - horizon, split.val_end - horizon  # rows whose targets are in the split
    val_start = max(lag, train_end - (width or 1) + 1)  # a window's rows before the first validation target
    if train_end - lag < (width or 8) + 2 or val_end - val_start < (width or 3):
        raise DataError(f"{table.name} has {points} rows (train {split.train_end}, validation "
                        f"{split.val_end - split.train_end}): too few for horizon {horizon}; use a shorter --horizon "
                        "or more data")
    train_rows = (z[: train_end - lag], y[lag:train_end])
    val_rows = (z[val_start - lag : val_end - lag], y[val_start:val_end])
    if window is None:
        training, validation = _sequence_chunks(*train_rows, CHUNK_LENGTH), _sequence_chunks(*val_rows, CHUNK_LENGTH)
    else:
        training, validation = _window_pairs(*train_rows, width), _window_pairs(*val_rows, width)
    reason = "; ".join(f"{name}: difference {'on' if on else 'off'}{_over(period)} ({why})"
                       for name, (on, why), period in zip(table.names, decisions, periods))
    return _PreparedTable(table, split, columns, reason, width, training, validation, notes=tuple(notes),
                          unshared=columns)


def _fit_input(values: np.ndarray, split: Split, on: bool, period: int, scale: str, table: Table,
               j: int, smoothing=None) -> InputColumn:
    """One input column's differencing (over ``period`` rows, or from Holt-Winters' forecast with
    ``smoothing``) and scale, fitted on the training split, each column's model inputs checked as a univariate
    input's are."""
    name = f"{table.name} column {table.names[j]!r}"
    if period == 1:
        p = fit_preprocessing(values, split, on, scale, name)
        model_inputs(values, p, name, split)  # refuses values beyond float32 after scaling, naming the first
        return InputColumn(table.names[j], p.difference, p.offset, p.divisor)
    if smoothing is not None:
        return _smoothed_input(values, split, period, scale, table.names[j], name, smoothing)
    changes = seasonal_changes(values[: split.train_end], period)
    peak = float(np.max(np.abs(values[: split.train_end])))
    if not np.isfinite(changes).all():
        raise DataError(f"{name}: the seasonal changes overflow float64 (values up to {peak:.3g}); rescale the data")
    column = seasonal_input(table.names[j], period, *fit_scale(changes, scale, name, "seasonal changes", peak))
    if not (np.abs(seasonal_changes(values, period) - column.offset) / column.divisor <= FLOAT32_MAX).all():
        raise DataError(f"{name}: a seasonal change is beyond float32 after scaling; rescale the data")
    return column


def _smoothed_input(values: np.ndarray, split: Split, period: int, scale: str, column: str, name: str,
                    smoothing) -> InputColumn:
    """A column whose model input is its error from Holt-Winters' forecast, scaled on the training split."""
    errors = values - forecasts(values, period, smoothing)[:-1]
    peak = float(np.max(np.abs(values[: split.train_end])))
    train = errors[period: split.train_end]
    if not np.isfinite(train).all():
        raise DataError(f"{name}: Holt-Winters' errors overflow float64 (values up to {peak:.3g}); rescale the data")
    offset, divisor = fit_scale(train, scale, name, "Holt-Winters errors", peak)
    if not (np.abs(errors[period:] - offset) / divisor <= FLOAT32_MAX).all():
        raise DataError(f"{name}: an error from Holt-Winters' forecast is beyond float32 after scaling; rescale the "
                        "data")
    return InputColumn(column, True, offset, divisor, period=period, smoothing=smoothing)


def _over(period: int) -> str:
    return f" over season {period}" if period > 1 else ""


def _output_change(values: np.ndarray, output: OutputColumn, inputs) -> np.ndarray:
    """What an output predicts after each raw row, before scaling: the target ``step`` rows later, less its
    baseline when the output is relative (``output_base``); NaN where the series has ended or the baseline does
    not exist yet. ``[n]``."""
    source = values[:, output.source]
    change = np.full(source.size, np.nan)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is checked by the caller, by name
        change[:-output.step] = source[output.step:] - output_base(values, output, inputs)[:-output.step]
    return change


def _fit_outputs(table: Table, split: Split, inputs, targets: list[int], horizon: int,
                 scale: str, relatives: dict[int, bool]) -> tuple[OutputColumn, ...]:
    """Each target's steps 1..H (target-major), relative (a change from its baseline) as ``relatives`` says, each
    output's scale fitted on the training split's rows whose target lies in the training split too."""
    outputs = []
    for source in targets:
        name, relative, period = table.names[source], relatives[source], inputs[source].period
        peak = float(np.max(np.abs(table.values[: split.train_end, source])))
        for step in range(1, horizon + 1):
            smoothed = inputs[source].smoothing is not None
            output = OutputColumn(name, step, source, relative, period=period, smoothed=smoothed)
            base = _output_change(table.values, output, inputs)[max(output.base_lag, period if smoothed else 0):
                                                                split.train_end - step]
            what = f"{step}-step {'changes' if relative else 'values'}"
            if not np.isfinite(base).all():
                raise DataError(f"{table.name} column {name!r}: the training {what} overflow float64 (values up to "
                                f"{peak:.3g}); rescale the data (e.g. to other units)")
            offset, divisor = fit_scale(base, scale, f"{table.name} column {name!r}", what, peak)
            outputs.append(OutputColumn(name, step, source, relative, offset, divisor, period, smoothed))
    return tuple(outputs)


def _scaled_targets(values: np.ndarray, columns: Columns) -> np.ndarray:
    """The training targets after each raw row, ``[n, K*H]`` in the model's output units (NaN past the end)."""
    return np.stack([(_output_change(values, c, columns.inputs) - c.offset) / c.divisor for c in columns.outputs],
                    axis=1)


def _table_notes(table: Table, split: Split, decisions, columns: Columns, scale: str) -> list[tuple[str, bool]]:
    """The data, each column's differencing (and why) and the outputs, for the training log: ``(line, always)``
    (``always``: printed even when quiet), printed once every candidate is prepared (``_announce``)."""
    filled = ", ".join(f"{name} {count}" for name, count in zip(table.names, table.filled) if count)
    notes = [(f"data: {table.name}, {split.length} rows of {len(table.names)} columns (train {split.train_end}, "
              f"validation {split.val_end - split.train_end}, test {split.length - split.val_end})"
              + (f", gaps filled by linear interpolation: {filled}" if filled else ""), False)]
    if table.skipped:
        notes.append((f"data: left out index-like column(s) {', '.join(map(repr, table.skipped))} (row numbers)",
                      True))
    notes += [(f"preprocessing: {name}: difference {'on' if on else 'off'} ({why}), scale {scale}", False)
              for name, (on, why) in zip(table.names, decisions)]
    bases = sorted({"Holt-Winters' forecast" if c.smoothed else "value one season before the step" if c.period > 1
                    else "latest value" for c in columns.outputs if c.relative})
    said = f" (changes from each target's {' or '.join(bases)})" if bases else ""
    return notes + [(f"outputs: {', '.join(columns.output_names())}{said}", False)]


def _announce(prepared, quiet: bool) -> None:
    for line, always in getattr(prepared, "notes", ()):
        _log(line, quiet and not always)


def _judge_table(model, prepared: _PreparedTable, window: int | None, lr: float) -> dict:
    """Per-output test and validation figures beside persistence at each output's horizon (see
    ``_warn_if_behind``); refuses a diverged model (nothing is saved)."""
    values, split, columns = prepared.table.values, prepared.split, prepared.unshared or prepared.columns
    predictions = predict_rows(model, columns, values, window)
    shares = network_shares(predictions, columns, values, split)
    prepared.columns = with_shares(columns, shares)
    if any(share != 1.0 for share in shares):  # the network turned down towards its baseline where it adds noise
        columns = prepared.columns
        predictions = predict_rows(model, columns, values, window)
        _log("baseline blend: the network's share of each output's change (chosen on validation): " + ", ".join(
            f"{name} {share:.2f}" for name, share in zip(columns.output_names(), shares)), quiet=False)
    metrics = evaluate_rows(predictions, columns, values, split.val_end)
    validation = evaluate_rows(predictions[: split.val_end], columns, values[: split.val_end], split.train_end)
    metrics["val_rmse"], metrics["val_persistence_rmse"] = validation["test_rmse"], validation["persistence_rmse"]
    for name, output in zip(columns.output_names(), columns.outputs):
        model_rmse, baseline = validation[f"test_rmse[{name}]"], validation[f"persistence_rmse[{name}]"]
        metrics[f"val_rmse[{name}]"], metrics[f"val_persistence_rmse[{name}]"] = model_rmse, baseline
    if not math.isfinite(metrics["val_rmse"]) or not metrics["test_points"]:
        # a model of NaN weights is of no use to anyone: nothing is saved
        raise ModelError(f"training diverged: the model's predictions are not finite; nothing saved (try a lower "
                         f"--lr than {lr:g})")
    return metrics


def _warn_if_behind(metrics: dict, prepared) -> None:
    """A warning (printed even when quiet) for the kept model, or each of its outputs, that does not beat
    persistence on the validation split; an alternative trained and dropped (``_kept_if_it_pays``) warns of
    nothing."""
    if not isinstance(prepared, _PreparedTable):
        if metrics["val_rmse"] >= metrics["val_persistence_rmse"]:
            _log(f"warning: the model does not beat persistence on the validation split (RMSE "
                 f"{metrics['val_rmse']:.4g} vs {metrics['val_persistence_rmse']:.4g}); try more --epochs, "
                 f"--difference {'off' if prepared.preprocessing.difference else 'on'}, or more data", quiet=False)
        return
    for name, output in zip(prepared.columns.output_names(), prepared.columns.outputs):
        model_rmse, baseline = metrics[f"val_rmse[{name}]"], metrics[f"val_persistence_rmse[{name}]"]
        if output.relative and output.divisor == 0 and not output.period > 1:  # share 0: persistence itself
            _log(f"warning: {name}: the network adds nothing to persistence on the validation split: the model "
                 f"forecasts the latest value (the network's share is 0); try more --epochs or --units, or more "
                 "data", quiet=False)
        elif model_rmse >= baseline:
            _log(f"warning: {name}: the model does not beat persistence on the validation split (RMSE "
                 f"{model_rmse:.4g} vs {baseline:.4g}); try more --epochs or --units, --difference "
                 f"{'off' if output.relative else 'on'}, a shorter --horizon, or more data", quiet=False)


def _log_outputs(metrics: dict, columns: Columns, quiet: bool) -> None:
    """Each output's test RMSE beside persistence's at its horizon, in the training log."""
    for name in columns.output_names():
        rmse, baseline = metrics[f"test_rmse[{name}]"], metrics[f"persistence_rmse[{name}]"]
        gain = f", {versus(rmse, baseline)}" if baseline > 0 else ""
        _log(f"test {name}: RMSE {rmse:.4g} (persistence {baseline:.4g}{gain})", quiet)


def evaluate_rows(predictions: np.ndarray, columns: Columns, values: np.ndarray, test_start: int) -> dict:
    """Per-output RMSE/MAE of the predictions ``[n, K*H]`` made after each raw row of ``values`` ``[n, F]``, over
    targets at rows ``>= test_start``, beside persistence (the target's latest value carried ``step`` rows on);
    the plain keys are the worst output's (see ``train``)."""
    truth = columns.targets_of(values)
    metrics, ratios = {}, []
    for k, (name, output) in enumerate(zip(columns.output_names(), columns.outputs)):
        rows = np.arange(values.shape[0])
        keep = (rows + output.step >= test_start) & np.isfinite(predictions[:, k]) & np.isfinite(truth[:, k])
        with np.errstate(over="ignore"):
            error = predictions[keep, k] - truth[keep, k]
            persistence = values[keep, output.source] - truth[keep, k]
        (rmse, mae), (base_rmse, base_mae) = map(_rms_and_mean_abs, (error, persistence))
        metrics.update({f"test_rmse[{name}]": rmse, f"test_mae[{name}]": mae, f"persistence_rmse[{name}]": base_rmse,
                        f"persistence_mae[{name}]": base_mae, f"test_points[{name}]": int(keep.sum())})
        ratios.append(rmse / base_rmse if base_rmse > 0 else (math.inf if rmse > 0 else 0.0))
    ratios = np.nan_to_num(np.asarray(ratios, dtype=np.float64), nan=math.inf)  # a NaN RMSE is the worst
    worst = columns.output_names()[int(np.argmax(ratios))]
    for key in ("test_rmse", "test_mae", "persistence_rmse", "persistence_mae", "test_points"):
        metrics[key] = metrics[f"{key}[{worst}]"]
    return metrics


def predict_rows(model, columns: Columns, values: np.ndarray, window: int | None) -> np.ndarray:
    """The float model's raw predictions after each raw row, ``[n, K*H]``, NaN where none exists yet (the first
    row when a column is differenced; rows before the first full window): the predictor's alignment."""
    lag = columns.lag
    z = columns.transform(values)  # [n - lag, F]
    out = np.full((values.shape[0], len(columns.outputs)), np.nan)
    if window is None:
        if z.shape[0]:
            y = model.predict(z[None].astype(np.float32), verbose=0)[0]  # [n - lag, K*H]
            out[lag:] = columns.decode_table(y.astype(np.float64), values)
        return out
    width = window - lag
    if z.shape[0] >= width:
        x = np.swapaxes(np.lib.stride_tricks.sliding_window_view(z, width, axis=0), 1, 2)  # [m, width, F]
        y = model.predict(x.astype(np.float32), verbose=0, batch_size=1024)  # [m, K*H]
        out[window - 1 :] = columns.decode(y.astype(np.float64), values[window - 1 :])
    return out


def _validate_outputs(column, columns, targets, horizon) -> None:
    if column is not None and columns is not None:
        raise ModelError("give one column (--column) or several (--columns), not both")
    if horizon is not None and (isinstance(horizon, bool) or not isinstance(horizon, int)
                                or not 1 <= horizon <= MAX_HORIZON):
        raise ModelError(f"horizon must be an integer from 1 to {MAX_HORIZON}, got {horizon!r}")


def _validate_seasons(season, window) -> tuple[int, ...]:
    """Candidate seasons as a tuple of integers >= 2 (none for ``None``)."""
    seasons = () if season is None else tuple([season] if isinstance(season, int) else season)
    for period in seasons:
        if isinstance(period, bool) or not isinstance(period, int) or not 2 <= period <= MAX_PERIOD:
            raise ModelError(f"a season must be an integer from 2 to {MAX_PERIOD} rows, got {period!r}")
    if seasons and window is not None:
        raise ModelError("a season needs a streaming model (no --window): a window model sees no past season")
    return seasons


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
    """``predict`` for a loaded model and its checked metadata (``modeling.load_model``/``load_model_bytes``).

    A multivariate model takes raw rows ``[n, F]`` (``[n]`` when F is 1) and returns ``[n, K*H]`` raw predictions,
    one row per input row in both modes (NaN where none exists yet), as ``StreamingPredictor.step`` gives them.
    """
    if metadata is not None and metadata.columns is not None:
        return _predict_table(model, metadata, values)
    preprocessing = metadata.preprocessing if metadata else Preprocessing()
    window = metadata.window if metadata else None
    if window is None and model.inputs[0].shape[1] is not None:
        window = int(model.inputs[0].shape[1])
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.isfinite(values).all():
        raise DataError("values to predict from must all be finite numbers")
    out = _predict(model, preprocessing, values, window)
    return out if window is None else out[window - 1 :]


def _predict_table(model, metadata: ModelMetadata, values) -> np.ndarray:
    """``predict_with`` for a multivariate model: raw rows in, ``[n, K*H]`` raw predictions out."""
    columns = metadata.columns
    features = len(columns.inputs)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1 and features == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[1] != features:
        raise DataError(f"values to predict from must be rows of {features} values ({', '.join(columns.features)}), "
                        f"got an array of shape {values.shape}")
    if not np.isfinite(values).all():
        raise DataError("values to predict from must all be finite numbers")
    return predict_rows(model, columns, values, metadata.window)
