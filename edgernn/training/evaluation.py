"""A fitted model judged in raw units: validation and test RMSE/MAE beside persistence (``evaluate``,
``evaluate_rows``), the peers (``edgernn.training.peers``), and the predictions of a saved model on a series
(``predict_with``, behind ``edgernn.predict``)."""

from __future__ import annotations

import functools
import math

import numpy as np

from edgernn.errors import DataError, ModelError
from edgernn.runtime.columns import Columns
from edgernn.runtime.preprocessing import Preprocessing
from edgernn.training.comparison import versus
from edgernn.training.model_metadata import ModelMetadata
from edgernn.training.preparation import Prepared, PreparedTable, log
from edgernn.training.season_baseline import network_shares, with_shares


def judge(model, prepared: Prepared, window: int | None, lr: float) -> dict:
    """Test and validation figures beside persistence (``warn_if_behind`` warns when the model does not beat
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


def judge_table(model, prepared: PreparedTable, window: int | None, lr: float) -> dict:
    """Per-output test and validation figures beside persistence at each output's horizon (see
    ``warn_if_behind``); refuses a diverged model (nothing is saved)."""
    values, split, columns = prepared.table.values, prepared.split, prepared.unshared or prepared.columns
    predictions = predict_rows(model, columns, values, window)
    shares = network_shares(predictions, columns, values, split)
    prepared.columns = with_shares(columns, shares)
    if any(share != 1.0 for share in shares):  # the network turned down towards its baseline where it adds noise
        columns = prepared.columns
        predictions = predict_rows(model, columns, values, window)
        log("baseline blend: the network's share of each output's change (chosen on validation): " + ", ".join(
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


def peer_metrics(prepared, season, quiet: bool) -> dict:
    """The peers' figures (``edgernn.training.peers``) for the series, or for each target of a one-step output."""
    from edgernn.training import peers

    split = prepared.split
    say = functools.partial(log, quiet=quiet)
    if not isinstance(prepared, PreparedTable):
        return peers.metrics_for(prepared.series.values, split.train_end, split.val_end, prepared.series.spacing,
                                 season, say)
    table, found, one = prepared.table, {}, prepared.columns.univariate  # one column: keyed as a series is
    for name, output in zip(prepared.columns.output_names(), prepared.columns.outputs):
        if output.step == 1:
            found.update(peers.metrics_for(table.values[:, output.source], split.train_end, split.val_end,
                                           table.spacing, season, say, None if one else name))
    return found


def warn_if_behind(metrics: dict, prepared) -> None:
    """A warning (printed even when quiet) for the kept model, or each of its outputs, that does not beat
    persistence on the validation split; an alternative trained and dropped (``_kept_if_it_pays``) warns of
    nothing."""
    if not isinstance(prepared, PreparedTable):
        if metrics["val_rmse"] >= metrics["val_persistence_rmse"]:
            log(f"warning: the model does not beat persistence on the validation split (RMSE "
                 f"{metrics['val_rmse']:.4g} vs {metrics['val_persistence_rmse']:.4g}); try more --epochs, "
                 f"--difference {'off' if prepared.preprocessing.difference else 'on'}, or more data", quiet=False)
        return
    for name, output in zip(prepared.columns.output_names(), prepared.columns.outputs):
        model_rmse, baseline = metrics[f"val_rmse[{name}]"], metrics[f"val_persistence_rmse[{name}]"]
        if output.relative and output.divisor == 0 and not output.period > 1:  # share 0: persistence itself
            log(f"warning: {name}: the network adds nothing to persistence on the validation split: the model "
                 f"forecasts the latest value (the network's share is 0); try more --epochs or --units, or more "
                 "data", quiet=False)
        elif model_rmse >= baseline:
            log(f"warning: {name}: the model does not beat persistence on the validation split (RMSE "
                 f"{model_rmse:.4g} vs {baseline:.4g}); try more --epochs or --units, --difference "
                 f"{'off' if output.relative else 'on'}, a shorter --horizon, or more data", quiet=False)


def log_outputs(metrics: dict, columns: Columns, quiet: bool) -> None:
    """Each output's test RMSE beside persistence's at its horizon, in the training log."""
    for name in columns.output_names():
        rmse, baseline = metrics[f"test_rmse[{name}]"], metrics[f"persistence_rmse[{name}]"]
        gain = f", {versus(rmse, baseline)}" if baseline > 0 else ""
        log(f"test {name}: RMSE {rmse:.4g} (persistence {baseline:.4g}{gain})", quiet)


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
