"""Data made ready to train on: the series or table split 70/15/15 in time order, differencing chosen and
scaling fitted on the training split (per column for a table), and the (x, y) sequences or windows a model is
fitted on (``Prepared``). A univariate model is the table of one column (``prepare_any``)."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

import numpy as np

from edgernn.data.series import (FLOAT32_MAX, Series, Split, Table, chronological_split, load_series, load_table,
                                 model_inputs)
from edgernn.errors import DataError
from edgernn.runtime.columns import MAX_COLUMNS, Columns, InputColumn, OutputColumn, output_base
from edgernn.runtime.preprocessing import Preprocessing
from edgernn.runtime.smoothing import forecasts
from edgernn.training.season_baseline import (choose_season, clear_seasons, persistence_beats_the_mean,
                                              seasonal_changes, seasonal_input, smoothing_if_better)

TREND_R2 = 0.5  # a straight line explaining at least this share of the training variance means "trending"
CHUNK_LENGTH = 128  # streaming training sequence length
FOUND = "found"  # no --season given: each target's clear seasons (``clear_seasons``) are offered to the model


def log(message: str, quiet: bool) -> None:
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


def prepare_any(data, column, columns, targets, horizon, time_column, window, difference, scale, quiet,
                seasons=(), smooth=False):
    """One column or several prepared as a table: a univariate model is the table of one column, one target,
    horizon 1 (``plain``: its one value scaled once, in and out, unless a season is offered). ``seasons``: the
    candidate periods, or ``FOUND`` (each target's ``clear_seasons``)."""
    one_series = columns is None and targets is None and horizon in (None, 1)
    if one_series:
        table = one_column(load_series(data, column=column, time_column=time_column), column)
    else:
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
    plain = len(table.names) == 1 and (horizon or 1) == 1 and not seasons  # one column in and out, one step
    if plain and not one_series:  # a table's one column: named as load_series names it
        if table.skipped:
            log(f"data: left out index-like column(s) {', '.join(map(repr, table.skipped))} (row numbers)", False)
        table = one_column(table.column(0), column)  # its blend named as the --column given
    return prepare_table(table, chosen, horizon or 1, window, difference, scale, quiet, seasons, smooth, plain)


def one_column(series: Series, column: str | None) -> Table:
    """A series as the one-column table a seasonal or blended univariate model is prepared from."""
    return Table(series.values[:, None], (column or "value",), series.name, (series.filled,), series.spacing)



def _found(values: np.ndarray, spacing: float | None) -> tuple[int, ...]:
    """One column's clear seasons (none for fewer than 3 values: nothing to split)."""
    return tuple(clear_seasons(values, chronological_split(values.size), spacing)) if values.size > 2 else ()


@dataclass
class Prepared:
    """Columns made ready to train on: the columns fitted, and (x, y) arrays for training and validation (y:
    every target's next ``horizon`` values, scaled). A plain univariate model's ``preprocessing`` is its one
    scaling; any other model's is the identity (its columns say it all)."""

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

    @property
    def plain(self) -> bool:
        """One value in, its next value out, one scaling (``Columns.named`` False)."""
        return not self.columns.named


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


def prepare_table(table: Table, targets: list[int], horizon: int, window, difference, scale,
                  quiet, seasons=(), smooth=False, plain=False) -> Prepared:
    """Split; difference (over a season where it beats persistence) and scale each column on its own; fit each
    output's scale; cut training sequences. ``plain`` (one column in and out, one step, no season): the
    univariate model, scaled once: its output is the next value, or its change from the latest when differenced,
    in the input's scale (``Columns.from_preprocessing``)."""
    values = table.values
    points = values.shape[0]
    split = chronological_split(points)
    decisions, periods, smoothings = _differencing(table, split, targets, horizon, difference, seasons, smooth)
    lag = max([p if on else 0 for p, (on, _) in zip(periods, decisions)], default=0)
    _check_sizes(table.name, points, split, window, lag + horizon - 1)
    if plain:
        preprocessing = fit_preprocessing(values[:, 0], split, decisions[0][0], scale, table.name)
        model_inputs(values[:, 0], preprocessing, table.name, split)  # refuses values beyond float32, naming one
        columns = Columns.from_preprocessing(preprocessing)
    else:
        preprocessing = Preprocessing()
        inputs = tuple(_fit_input(values[:, j], split, on, period, scale, table, j, smoothings[j])
                       for j, ((on, _), period) in enumerate(zip(decisions, periods)))
        relative = {j: inputs[j].difference or (difference == "auto" and persistence_beats_the_mean(values[:, j],
                                                                                                    split))
                    for j in targets}  # the baseline under each target: persistence (or its season), else none
        columns = Columns(inputs, _fit_outputs(table, split, inputs, targets, horizon, scale, relative))
    width = None if window is None else window - lag
    if width is not None and width < 1:
        raise DataError(f"--window {window} leaves no model input after differencing; use --window 2 or more")
    training, validation = _cut(table, split, columns, horizon, width)
    if plain:
        reason = decisions[0][1]
    else:
        reason = "; ".join(f"{name}: difference {'on' if on else 'off'}{_over(period)} ({why})"
                           for name, (on, why), period in zip(table.names, decisions, periods))
    notes = _table_notes(table, split, decisions, columns, scale)
    return Prepared(table, split, columns, reason, width, training, validation, preprocessing, tuple(notes), columns)


def _differencing(table: Table, split: Split, targets: list[int], horizon: int, difference: str, seasons,
                  smooth: bool) -> tuple[list, list, list]:
    """Each column's ``(difference, why)``, its period (a target's season where one pays) and its Holt-Winters
    smoothing (``smooth``: under a seasonal target where it beats the season's naive forecasts)."""
    values, points = table.values, table.values.shape[0]
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
    return decisions, periods, smoothings


def _cut(table: Table, split: Split, columns: Columns, horizon: int, width: int | None) -> tuple[tuple, tuple]:
    """The training and validation ``(x, y)``: overlapping chunks (streaming) or windows, every pair's target in
    its split (a window's rows before validation's first target come from training). A streaming model's
    validation starts at the row before the split (its target is the split's first row); a plain univariate
    one's at the split, as edgernn has always cut it (the same arrays, so the same weights for a seed)."""
    values, lag = table.values, columns.lag
    z = columns.transform(values)  # z[i] is the model input made from raw row i + lag
    y = _scaled_targets(values, columns)  # y[t]: what the model should say after raw row t
    train_end, val_end = split.train_end - horizon, split.val_end - horizon  # rows whose targets are in the split
    val_start = max(lag, train_end - (width or (1 if columns.named else 0)) + 1)
    if columns.named and (train_end - lag < (width or 8) + 2 or val_end - val_start < (width or 3)):
        raise DataError(f"{table.name} has {values.shape[0]} rows (train {split.train_end}, validation "
                        f"{split.val_end - split.train_end}): too few for horizon {horizon}; use a shorter --horizon "
                        "or more data")
    train_rows = (z[: train_end - lag], y[lag:train_end])
    val_rows = (z[val_start - lag : val_end - lag], y[val_start:val_end])
    if width is None:
        return _sequence_chunks(*train_rows, CHUNK_LENGTH), _sequence_chunks(*val_rows, CHUNK_LENGTH)
    return _window_pairs(*train_rows, width), _window_pairs(*val_rows, width)


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
    (``always``: printed even when quiet), printed once every candidate is prepared (``announce``)."""
    if not columns.named:  # one value: said as a series is
        on, why = decisions[0]
        return [(f"data: {table.name}, {split.length} points (train {split.train_end}, validation "
                 f"{split.val_end - split.train_end}, test {split.length - split.val_end})"
                 + (f", {table.filled[0]} gaps filled by linear interpolation" if table.filled[0] else ""), False),
                (f"preprocessing: difference {'on' if on else 'off'} ({why}), scale {scale}", False)]
    filled = ", ".join(f"{name} {count}" for name, count in zip(table.names, table.filled) if count)
    width = f"{len(table.names)} column{'' if len(table.names) == 1 else 's'}"
    notes = [(f"data: {table.name}, {split.length} rows of {width} (train {split.train_end}, "
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


def announce(prepared, quiet: bool) -> None:
    for line, always in getattr(prepared, "notes", ()):
        log(line, quiet and not always)
