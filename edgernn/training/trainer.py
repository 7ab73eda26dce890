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

import functools
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgernn.training.model_metadata import DataRecord, ModelMetadata
from edgernn.training.modeling import build_model, check_model_target, load_model, save_model
from edgernn.runtime.cell_table import CELLS, DEFAULT_CELL
from edgernn.runtime.columns import MAX_HORIZON, MAX_PERIOD, Columns
from edgernn.errors import DataError, ModelError
from edgernn.runtime.manifest import Mode
from edgernn.runtime.options import BASELINES, DIFFERENCE_CHOICES, SCALES
from edgernn.runtime.preprocessing import Preprocessing
from edgernn.training.search import DEFAULT_LR, DEFAULT_UNITS
from edgernn.training.evaluation import judge, log_outputs, peer_metrics, predict_with, warn_if_behind
from edgernn.training.preparation import (FOUND, announce, log, prepare_any,
                                          prepare_table)

TEST_CONTEXT = 256  # values before the test split stored with the model, to warm the state up for verify
TRAIN_VALUES_STORED = 20000  # training values stored with the model: export's default calibration data


@dataclass
class TrainResult:
    """What ``train`` returns: the model (preprocessed units), the pipeline and the summary figures."""

    model: object
    preprocessing: Preprocessing  # a plain univariate model's scaling; identity for any other: see ``columns``
    metrics: dict
    model_path: Path | None
    metadata: dict = field(repr=False, default_factory=dict)  # the edgernn.json record (ModelMetadata.to_dict)
    columns: Columns | None = None  # the model's inputs and outputs (a plain univariate one's: ``named`` False)


class _EpochLine:
    """A Keras callback printing one line per epoch to stderr (quiet under --json and in tests)."""

    def __new__(cls, epochs: int, quiet: bool):
        from edgernn.training.tf_import import import_keras

        keras = import_keras()

        class EpochLine(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                log(
                    f"epoch {epoch + 1}/{epochs}  loss {logs.get('loss', math.nan):.5f}"
                    f"  val_loss {logs.get('val_loss', math.nan):.5f}",
                    quiet,
                )

        return EpochLine()


def train(data: str = "sine", out: str | os.PathLike | None = None, *, column: str | None = None, columns=None,
          targets=None, horizon: int | None = None, time_column: str | None = None, cell: str = DEFAULT_CELL,
          units: int = DEFAULT_UNITS, layers: int = 1, window: int | None = None, epochs: int = 40,
          batch_size: int = 32, lr: float = DEFAULT_LR, seed: int = 0, patience: int = 10, difference: str = "auto",
          scale: str = "standard", force: bool = False, quiet: bool = False, season: list[int] | str | None = None,
          baseline: str = "auto", budget: float | None = None) -> TrainResult:
    """Train a model on a series and (with ``out``) save it as a ``.keras`` file with its pipeline.

    Args:
        data: ``counting``, ``sine``, ``lagged``, or a ``.csv``/``.npy`` path (see ``edgernn.data.series.load_series``).
        out: where to save the model (``.keras``); None keeps it in memory only.
        column: the one column of a univariate model (CSV, ``lagged``).
        columns: a multivariate model's input columns: names or 0-based indices, or ``"all"`` (every numeric
            column; the default when ``targets`` or ``horizon`` is given). See ``edgernn.data.series.load_table``.
        targets: the columns to predict (names or indices; default the first); horizon: their next H values.
        window: None for a streaming model (default), N for the classic N-values-in window model.
        difference: ``auto`` (decided from the training split), ``on`` or ``off``; scale: ``standard`` (mean/std),
            ``minmax`` (train range to [-1, 1]) or ``none``. seed: same seed, same weights on the same machine.
        force: replace an existing ``out`` (atomically); without it an existing file is refused before training.
        season: seasonal periods in rows: None finds them on the training split (the peers; the clear ones are
            offered to a streaming model), ``[]``/``"none"`` none, ``[48, 336]``/``"48,336"`` offered to the model
            and kept only if they pay on validation (``edgernn.training.season_baseline``).
        budget: seconds for choosing the network by validation (``edgernn.training.search``); 0: the given size
            only; None: ``search.auto_budget`` for a default-sized streaming model.
        baseline: ``auto`` puts Holt-Winters under a seasonal target where it beats the season's naive forecasts,
            ``naive`` keeps those; both blend a one-column model that does not beat persistence into it
            (``_blended_if_better``); ``none`` keeps the network alone (what c-array can generate).

    Returns:
        A ``TrainResult``; ``metrics`` holds test RMSE/MAE and persistence's, in raw units; a multivariate model's
        per output (``test_rmse[temp+3]``...), the plain keys being its worst output's (the largest share of
        persistence's: ``test_rmse < persistence_rmse`` says every output beats it); the peers' as
        ``peer_val_rmse[NAME]``/``peer_test_rmse[NAME]`` (``edgernn.training.peers``).

    Raises:
        DataError, ModelError: bad data or options, one line each.
    """
    season, seasons = _validated(cell, units, layers, window, epochs, batch_size, lr, patience, difference, scale,
                                 column, columns, targets, horizon, baseline, budget, season)
    if out is not None:
        check_model_target(out, force)
    from edgernn.training.tf_import import import_keras

    keras = import_keras()  # a missing TensorFlow is the first and only thing reported
    fit = _Fit(keras, cell, units, layers, window, epochs, batch_size, lr, seed, patience, quiet)
    prepare = functools.partial(prepare_any, data, column, columns, targets, horizon, time_column, window,
                                difference, scale)
    prepared = prepare(quiet, seasons, smooth=baseline == "auto")
    started = time.monotonic()
    prepared, model, metrics = _kept_if_it_pays(fit, prepared, lambda: prepare(True), quiet)
    if baseline != "none" and prepared.plain and not metrics["val_rmse"] < metrics["val_persistence_rmse"]:
        prepared, model, metrics = _blended_if_better(fit, prepared, model, metrics, column, window, difference,
                                                      scale, quiet)
    if budget is None:
        budget = _auto_budget(prepared, window is None and (units, lr) == (DEFAULT_UNITS, DEFAULT_LR), quiet)
    if budget > 0:
        fit, prepared, model, metrics = _searched(fit, prepared, model, metrics, time.monotonic() - started, budget,
                                                  quiet)
    return _saved(fit, prepared, model, metrics, out, season, quiet)


def _validated(cell, units, layers, window, epochs, batch_size, lr, patience, difference, scale, column, columns,
               targets, horizon, baseline, budget, season) -> tuple:
    """Every option checked before anything is loaded or trained (one line each); the seasons given, and those
    offered to the model (``FOUND``: each target's clear ones)."""
    _validate_options(cell, units, layers, window, epochs, batch_size, lr, patience, difference, scale)
    _validate_outputs(column, columns, targets, horizon)
    if baseline not in BASELINES:
        raise ModelError(f"baseline must be one of {', '.join(BASELINES)}, got {baseline!r}")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float))
                               or not 0 <= budget < math.inf):
        raise ModelError(f"budget must be a number of seconds, 0 or more, got {budget!r}")
    from edgernn.data.seasons import periods_given

    season = periods_given(season)  # None: found on the training split (peers; the model where they are clear)
    return season, FOUND if season is None and window is None else _validate_seasons(season, window)


def _saved(fit, prepared, model, metrics, out, season, quiet: bool) -> TrainResult:
    """The kept model judged beside its peers, its metadata written with it (``out``), and the result."""
    warn_if_behind(metrics, prepared)
    metrics.update(peer_metrics(prepared, season, quiet))
    columns = prepared.columns
    if columns.named:
        log_outputs(metrics, columns, quiet)
    metadata = ModelMetadata(Mode.STREAMING if fit.window is None else Mode.WINDOW, fit.window, fit.cell, fit.units,
                             fit.layers, prepared.preprocessing, prepared.reason, fit.seed, _data_record(prepared),
                             metrics, columns)
    model_path = save_model(model, out, metadata) if out is not None else None
    return TrainResult(model, prepared.preprocessing, metrics, model_path, metadata.to_dict(), columns)


def _kept_if_it_pays(fit, prepared, prepare_plain, quiet: bool):
    """``(prepared, model, metrics)`` fitted on ``prepared``; when it carries a season, the same model is also
    fitted without it (``prepare_plain()``) and the one with the lower validation RMSE is kept, both logged.
    Both are prepared before either trains: data either refuses is refused before any training or log line."""
    seasonal = prepared.columns.lag > 1
    plain = prepare_plain() if seasonal else None
    announce(prepared, quiet)
    model, metrics = fit(prepared)
    if plain is None:
        return prepared, model, metrics
    plain_model, plain_metrics = fit(plain)
    keep = metrics["val_rmse"] <= plain_metrics["val_rmse"]
    log(f"season {prepared.columns.lag}: validation RMSE {metrics['val_rmse']:.4g}, without it "
         f"{plain_metrics['val_rmse']:.4g}: {'keeping the season' if keep else 'no season'}", quiet)
    return (prepared, model, metrics) if keep else (plain, plain_model, plain_metrics)


def _blended_if_better(fit, prepared, model, metrics, column, window, difference, scale, quiet: bool):
    """A univariate model that does not beat persistence on validation, trained again as a one-column table
    (F = K = H = 1) whose output is its baseline (persistence where it beats the mean) plus the network's share
    of the change, fitted on validation (``network_shares``; 0 = the baseline alone): kept if its validation
    RMSE is lower, so the model deployed is about as good as persistence at worst."""
    try:
        blended = prepare_table(prepared.table, [0], 1, window, difference, scale, True)
    except DataError:
        return prepared, model, metrics  # too few rows for the table's cut: keep what there is
    if _same_arrays(blended.training, prepared.training) and _same_arrays(blended.validation, prepared.validation):
        # differenced: the table's network sees and predicts exactly what this one was trained on, so it is
        # this network, judged again with persistence and a share under it (no second training)
        blended_model, blended_metrics = model, judge(model, blended, window, fit.lr)
    else:
        blended_model, blended_metrics = fit(blended)
    keep = blended_metrics["val_rmse"] < metrics["val_rmse"]
    log(f"the model does not beat persistence on validation (RMSE {metrics['val_rmse']:.4g} vs "
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
        log(f"a short series ({rows} training rows): other sizes too, within {budget:g} s (--budget 0: the default "
             "size only)", quiet)
    return budget


def _searched(fit, prepared, model, metrics, seconds: float, budget: float, quiet: bool):
    """The default model beside the ``edgernn.training.search`` candidates the budget allows; the kept one, logged."""
    from edgernn.training import search

    say = functools.partial(log, quiet=quiet)
    fit, prepared, model, metrics, tried = search.search(fit, prepared, model, metrics, seconds, budget, say)
    kept = next(t for t in tried if (t.units, t.lr) == (fit.units, fit.lr))
    for line in [f"search within {budget:g} s, chosen on validation:", *search.table(tried, kept)]:
        say(line)
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
        keras = self.keras
        keras.utils.set_random_seed(self.seed)
        model = build_model(self.cell, self.units, self.layers, prepared.width, prepared.features,
                            len(prepared.columns.outputs))
        model.compile(optimizer=keras.optimizers.Adam(self.lr), loss="mse")
        callbacks = [_EpochLine(self.epochs, self.quiet)]
        if self.patience > 0:
            callbacks.append(keras.callbacks.EarlyStopping(patience=self.patience, restore_best_weights=True))
        model.fit(*prepared.training, validation_data=prepared.validation, epochs=self.epochs,
                  batch_size=self.batch_size, shuffle=True, verbose=0, callbacks=callbacks)
        return model, judge(model, prepared, self.window, self.lr)


def _data_record(prepared) -> DataRecord:
    """What the model keeps of its data: the held-out test part (verify's default) and the training split.

    A multivariate model's stretches are rows of F values, stored flat (row after row), cut where a univariate
    model's are cut (the training split capped at ``TRAIN_VALUES_STORED`` rows)."""
    split = prepared.split
    table, lag = prepared.table, prepared.columns.lag
    name, values, filled = table.name, table.values, sum(table.filled)
    per_column = {"features": len(table.names), "filled_columns": dict(zip(table.names, table.filled))}
    context = TEST_CONTEXT + (lag if prepared.columns.named else 0)  # + a season, or a differenced row
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


def predict(model_or_path, values) -> np.ndarray:
    """Predictions in raw units from a model trained by edgernn (or a user's model: identity preprocessing).

    A univariate model (one column in and out, one step ahead: plain, seasonal or blended alike): a streaming
    model's prediction after each input value (same length as ``values``; NaN where none exists yet, e.g. the
    first value when the model works on differences); a window model's one per complete window, so ``[-1]`` is
    the next value after the last window. A model taking rows: ``[n, K*H]`` after each row (``predict_with``).
    """
    if isinstance(model_or_path, (str, os.PathLike)):
        model, metadata = load_model(model_or_path)
    elif isinstance(model_or_path, TrainResult):
        model, metadata = model_or_path.model, ModelMetadata.from_dict(model_or_path.metadata)
    else:
        model, metadata = model_or_path, None
    return predict_with(model, metadata, values)
