"""A fitted model judged in raw units: validation and test RMSE/MAE beside persistence (``judge``,
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
from edgernn.training.preparation import Prepared, log
from edgernn.training.season_baseline import network_shares, with_shares


def judge(model, prepared: Prepared, window: int | None, lr: float) -> dict:
    """Test and validation figures, per output, beside persistence at each output's horizon (see
    ``warn_if_behind``), a named model's relative outputs blended into their baselines where the network adds
    noise on validation (``network_shares``); refuses a diverged model (nothing is saved). A plain univariate
    model's figures are its one output's, without the per-output keys."""
    values, split, columns = prepared.table.values, prepared.split, prepared.unshared or prepared.columns
    predictions = predict_rows(model, columns, values, window)
    if columns.named:
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
    return metrics if columns.named else {key: value for key, value in metrics.items() if "[" not in key}


def peer_metrics(prepared, season, quiet: bool) -> dict:
    """The peers' figures (``edgernn.training.peers``) for each target of a one-step output (a one-column model's
    keyed as a series' are)."""
    from edgernn.training import peers

    split, table, found, one = prepared.split, prepared.table, {}, prepared.columns.univariate
    say = functools.partial(log, quiet=quiet)
    for name, output in zip(prepared.columns.output_names(), prepared.columns.outputs):
        if output.step == 1:
            found.update(peers.metrics_for(table.values[:, output.source], split.train_end, split.val_end,
                                           table.spacing, season, say, None if one else name))
    return found


def warn_if_behind(metrics: dict, prepared) -> None:
    """A warning (printed even when quiet) for the kept model, or each of its outputs, that does not beat
    persistence on the validation split; an alternative trained and dropped (``_kept_if_it_pays``) warns of
    nothing."""
    columns = prepared.columns
    for name, output in zip(columns.output_names(), columns.outputs):
        key = f"[{name}]" if columns.named else ""
        model_rmse, baseline = metrics[f"val_rmse{key}"], metrics[f"val_persistence_rmse{key}"]
        said = f"{name}: " if columns.named else ""
        if output.relative and output.divisor == 0 and not output.period > 1:  # share 0: persistence itself
            log(f"warning: {said}the network adds nothing to persistence on the validation split: the model "
                 f"forecasts the latest value (the network's share is 0); try more --epochs or --units, or more "
                 "data", quiet=False)
        elif model_rmse >= baseline:
            log(f"warning: {said}the model does not beat persistence on the validation split (RMSE "
                 f"{model_rmse:.4g} vs {baseline:.4g}); try more --epochs{' or --units' if columns.named else ''}, "
                 "--difference "
                 f"{'off' if output.relative else 'on'}{', a shorter --horizon' if columns.horizon > 1 else ''}, "
                 "or more data", quiet=False)


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


def _rms_and_mean_abs(error: np.ndarray) -> tuple[float, float]:
    """RMSE and MAE of ``error`` (NaN for no points), computed on ``error / max|error|`` so that squares and sums of
    values near 1e200 cannot overflow."""
    peak = float(np.max(np.abs(error))) if error.size else math.nan
    if not 0 < peak < math.inf:  # no points (NaN), all zero (0), an overflowed difference (inf)
        return peak, peak
    scaled = error / peak
    return peak * float(np.sqrt(np.mean(scaled**2))), peak * float(np.mean(np.abs(scaled)))


def predict_with(model, metadata: ModelMetadata | None, values) -> np.ndarray:
    """``predict`` for a loaded model and its checked metadata (``modeling.load_model``/``load_model_bytes``;
    None: a user's own model, one value in and out, no scaling).

    Raw rows ``[n, F]`` in (``[n]`` when F is 1), ``[n, K*H]`` raw predictions out, one row per input row (NaN
    where none exists yet), as ``StreamingPredictor.step`` gives them; a univariate model (F = K = H = 1) gives
    ``[n]``, a window one only the predictions of its complete windows.
    """
    columns = metadata.columns if metadata is not None else Columns.from_preprocessing(Preprocessing())
    window = metadata.window if metadata is not None else None
    if window is None and model.inputs[0].shape[1] is not None:
        window = int(model.inputs[0].shape[1])
    features = len(columns.inputs)
    values = np.asarray(values, dtype=np.float64)
    if features == 1 and (values.ndim < 2 or (values.ndim == 2 and values.shape[0] == 1)):
        values = values.reshape(-1, 1)  # a series (a number, or one row of them) of a one-value model
    if values.ndim != 2 or values.shape[1] != features:
        wanted = (f"rows of {features} values ({', '.join(columns.features)})" if columns.named
                  else "a series of numbers")
        raise DataError(f"values to predict from must be {wanted}, got an array of shape {values.shape}")
    if not np.isfinite(values).all():
        raise DataError("values to predict from must all be finite numbers")
    out = predict_rows(model, columns, values, window)
    if not columns.univariate:
        return out
    return out[:, 0] if window is None else out[window - 1:, 0]
