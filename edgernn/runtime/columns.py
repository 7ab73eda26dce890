"""Which columns feed a model and what its outputs mean: several input features, several targets, a horizon.

Every model is described by ``Columns``: each input column with its own differencing and scaling (fitted on the
training split, so that one int8 input scale serves every feature), and each model output with the target and
horizon step it predicts and its own decoding back to raw units. The model's output vector is target-major:
``[target0 step1, target0 step2, ..., target1 step1, ...]``. Stored in the ``.keras`` metadata and the manifest
(``columns``), applied by the predictor with numpy; raw units in, raw units out, per column. A univariate model
is F = K = H = 1; one written as older edgernn wrote it (a ``preprocessing``, no columns) is read into
``from_preprocessing`` (``named`` False) and written back the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edgernn.runtime import smoothing as holt_winters
from edgernn.runtime.preprocessing import Preprocessing
from edgernn.runtime.safe_json import finite_number
from edgernn.runtime.smoothing import Smoothing

MAX_COLUMNS = 1024  # inputs or outputs: far beyond any sensor row, small enough to bound a crafted manifest
MAX_HORIZON = 1024
MAX_PERIOD = 100_000  # a season in rows: a year of 5-minute readings; bounds what a stream remembers
MAX_PAST_VALUES = 1_000_000  # past rows x columns one stream keeps (8 MB): a crafted file cannot ask for more
MAX_NAME_CHARS = 200


@dataclass(frozen=True)
class InputColumn:
    """One input feature: ``model input = (value [- previous value] - offset) / divisor``."""

    name: str
    difference: bool = False
    offset: float = 0.0
    divisor: float = 1.0
    range: tuple[float, float] | None = None  # calibrated model-input range (set at export)
    period: int = 1  # with ``difference``: the value ``period`` rows back is subtracted (a season)
    smoothing: Smoothing | None = None  # with a season: Holt-Winters' forecast of the value is subtracted instead


@dataclass(frozen=True)
class OutputColumn:
    """One model output: ``target``'s value ``step`` samples ahead = ``output * divisor + offset`` (``+`` the
    target's latest raw value when ``relative``: the model predicts the change from it)."""

    target: str
    step: int = 1
    source: int | None = None  # the input column holding the target's raw values (needed when relative)
    relative: bool = False
    offset: float = 0.0
    divisor: float = 1.0
    period: int = 1  # relative to the target's value ``period - step`` rows before the latest (seasonal naive)
    smoothed: bool = False  # relative to its source column's Holt-Winters forecast instead (``smoothing``)

    @property
    def base_lag(self) -> int:
        """Rows before the latest whose value a relative output adds: 0 (the latest) unless a season is longer
        than the step, then the value one season before the predicted step."""
        return self.period - self.step if self.period > self.step else 0


@dataclass(frozen=True)
class Columns:
    """A model's inputs and outputs in raw units; ``encode``/``decode`` work on ``[..., F]``/``[..., K*H]``."""

    inputs: tuple[InputColumn, ...]
    outputs: tuple[OutputColumn, ...]
    # False: one value in, its next value out, written as a plain ``preprocessing`` (what a univariate file holds,
    # without a column name: read as "value"); such a model takes no CSV header and keeps no per-output metrics
    named: bool = True

    @property
    def features(self) -> list[str]:
        return [c.name for c in self.inputs]

    @property
    def targets(self) -> list[str]:
        """Target names in output order, each once."""
        return list(dict.fromkeys(c.target for c in self.outputs))

    @property
    def horizon(self) -> int:
        return max(c.step for c in self.outputs)

    @property
    def lag(self) -> int:
        """Raw rows consumed before the first model input exists (1 when any column is differenced, the season
        when one is differenced over a season): also how many past rows a stream remembers."""
        return self._lag

    @property
    def univariate(self) -> bool:
        return len(self.inputs) == 1 and len(self.outputs) == 1

    def __post_init__(self):
        inputs, outputs = self.inputs, self.outputs
        object.__setattr__(self, "_lag", max([c.period for c in inputs if c.difference], default=0))  # every step
        object.__setattr__(self, "_period", np.array([c.period if c.difference else 0 for c in inputs]))
        back = [self._lag - c.period if c.difference else 0 for c in inputs]  # where in the past rows
        object.__setattr__(self, "_back", np.array(back)[None, None, :])
        object.__setattr__(self, "_diff", np.array([c.difference for c in inputs]))
        object.__setattr__(self, "_in_offset", np.array([c.offset for c in inputs]))
        object.__setattr__(self, "_in_divisor", np.array([c.divisor for c in inputs]))
        object.__setattr__(self, "_out_offset", np.array([c.offset for c in outputs]))
        object.__setattr__(self, "_out_divisor", np.array([c.divisor for c in outputs]))
        object.__setattr__(self, "_relative",
                           [(k, c.source, c.base_lag) for k, c in enumerate(outputs) if c.relative and not c.smoothed])
        smoothed = [j for j, c in enumerate(inputs) if c.smoothing is not None]
        object.__setattr__(self, "_smoothed", smoothed)  # the columns with a Holt-Winters state, in state order
        object.__setattr__(self, "_smoothing_params", [np.array([getattr(inputs[j].smoothing, name) for j in smoothed])
                                                       for name in ("alpha", "beta", "gamma")])
        object.__setattr__(self, "_smoothed_outputs", [(k, smoothed.index(c.source)) for k, c in enumerate(outputs)
                                                       if c.smoothed and c.source in smoothed])
        for j in smoothed:
            column = inputs[j]
            if not column.difference or column.period != self._lag or len(column.smoothing.season) != self._lag:
                raise ValueError(f"input {column.name}: Holt-Winters smoothing needs the model's longest season "
                                 f"({self._lag}) as its period")
        for c in outputs:
            if c.smoothed and (not c.relative or c.step != 1 or c.source not in smoothed
                               or c.period != inputs[c.source].period):
                raise ValueError(f"output {c.target} +{c.step}: a Holt-Winters baseline is one step ahead of a "
                                 "smoothed input column")
            if c.relative and c.base_lag and (c.base_lag > self._lag or c.source is None):
                raise ValueError(f"output {c.target} +{c.step} is relative to a value {c.base_lag} rows back, "
                                 f"beyond the {self._lag} rows a stream remembers")

    def one_value(self) -> "OneValue | None":
        """This model as ``Preprocessing``'s scalar ``encode``/``decode`` when it is one value in and one out, one
        step ahead, with no season (F = K = H = 1: what ``edgernn train`` makes of one series): the predictor's
        one-stream scalar path then runs it. None for any other model."""
        if not self.univariate or self.horizon != 1 or self.lag > 1 or self._smoothed:
            return None
        column, output = self.inputs[0], self.outputs[0]
        if output.smoothed or (output.relative and (output.source != 0 or output.base_lag)):
            return None
        return OneValue(column.difference, column.offset, column.divisor, output.offset, output.divisor,
                        output.relative)

    def encode(self, values: np.ndarray, last: np.ndarray) -> np.ndarray:
        """Raw rows ``[..., F]`` to model inputs, given each row's previous raw row (used by differenced columns;
        a model with a season needs its past rows: ``encode_past``)."""
        base = values - np.where(self._diff, last, 0.0) if self.lag else values
        return (base - self._in_offset) / self._in_divisor

    def encode_past(self, values: np.ndarray, past: np.ndarray, ahead: np.ndarray | None = None) -> np.ndarray:
        """Raw rows ``[S, F]`` to model inputs, given each stream's last ``lag`` raw rows ``[S, lag, F]`` (oldest
        first): a differenced column subtracts its value ``period`` rows back, a smoothed one the Holt-Winters
        forecast of the value (``ahead``: ``[S, smoothed columns]``, see ``smoothing_ahead``)."""
        back = np.take_along_axis(past, self._back, axis=1)[:, 0]  # [S, F]
        if self._smoothed:
            back[:, self._smoothed] = ahead
        return (values - np.where(self._diff, back, 0.0) - self._in_offset) / self._in_divisor

    def decode(self, outputs: np.ndarray, latest: np.ndarray, past: np.ndarray | None = None,
               ahead: np.ndarray | None = None) -> np.ndarray:
        """Model outputs ``[..., K*H]`` to raw predictions, given each stream's latest raw row ``[..., F]`` (and,
        for a seasonal baseline, its last ``lag`` rows before it ``[..., lag, F]``, oldest first; for a
        Holt-Winters one, its forecasts after the latest row, ``ahead``)."""
        with np.errstate(over="ignore", invalid="ignore"):  # a crafted scale overflows to inf: reported as such
            raw = outputs * self._out_divisor + self._out_offset
            for k, source, back in self._relative:
                raw[..., k] += latest[..., source] if not back else past[..., self.lag - back, source]
            for k, i in self._smoothed_outputs:
                raw[..., k] += ahead[..., i]
        return raw

    @property
    def smoothed(self) -> list[int]:
        """The input columns whose Holt-Winters states (``smoothing_*``) a stream carries beside its past rows."""
        return list(self._smoothed)

    def smoothing_start(self, past: np.ndarray) -> np.ndarray:
        """Holt-Winters states ``[S, smoothed columns, 2 + lag]`` from each stream's first ``lag`` rows."""
        values = np.swapaxes(past[:, :, self._smoothed], 1, 2).astype(np.float64)  # [S, smoothed, lag]
        return np.stack([holt_winters.start(values[:, i], np.array(self.inputs[j].smoothing.season))
                         for i, j in enumerate(self._smoothed)], axis=1)

    def smoothing_ahead(self, states: np.ndarray) -> np.ndarray:
        """Each state's forecast of its column's next value: ``[S, smoothed columns]``."""
        return holt_winters.forecast(states)

    def smoothing_update(self, states: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The states after seeing raw rows ``[S, F]``."""
        return holt_winters.update(states, rows[:, self._smoothed], *self._smoothing_params)

    def bases(self, rows: np.ndarray) -> np.ndarray:
        """What each relative output adds to the network's change after each raw row of a table ``[n, F]``:
        ``[n, K*H]``, 0 for outputs that are not relative, NaN where the baseline does not exist yet."""
        rows = np.asarray(rows, dtype=np.float64)
        return np.stack([output_base(rows, c, self.inputs) for c in self.outputs], axis=1)

    def transform(self, rows: np.ndarray) -> np.ndarray:
        """A raw table ``[n, F]`` (or windows ``[..., n, F]``) to model inputs, shorter by ``lag`` rows."""
        rows = np.asarray(rows, dtype=np.float64)
        if self.lag <= 1:
            return self.encode(rows, rows) if not self.lag else self.encode(rows[..., 1:, :], rows[..., :-1, :])
        n, lag = rows.shape[-2], self.lag
        back = np.stack([rows[..., lag - p: n - p, j] if p else np.zeros(rows[..., lag:, j].shape)
                         for j, p in enumerate(self._period)], axis=-1)
        for j in self._smoothed:  # a table (a season model has no windows): the forecast of each value
            back[:, j] = holt_winters.forecasts(rows[:, j], lag, self.inputs[j].smoothing)[lag:n]
        return (rows[..., lag:, :] - back - self._in_offset) / self._in_divisor

    def decode_table(self, outputs: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Model outputs ``[n - lag, K*H]`` made after rows ``lag..n-1`` of a raw table ``[n, F]``, in raw units."""
        with np.errstate(over="ignore", invalid="ignore"):
            return outputs * self._out_divisor + self._out_offset + self.bases(rows)[self.lag:]

    def targets_of(self, rows: np.ndarray) -> np.ndarray:
        """What each output predicts after each row of a raw table ``[n, F]``: ``[n, K*H]`` raw values, NaN past
        the end (the truth the outputs are measured against)."""
        rows = np.asarray(rows, dtype=np.float64)
        truth = np.full((rows.shape[0], len(self.outputs)), np.nan)
        for k, c in enumerate(self.outputs):
            if c.source is not None and c.step < rows.shape[0]:
                truth[:-c.step, k] = rows[c.step:, c.source]
        return truth

    def output_names(self) -> list[str]:
        """``temp`` for one step ahead, ``temp+3`` for three; what reports and JSON lines call each output."""
        return [c.target if self.horizon == 1 else f"{c.target}+{c.step}" for c in self.outputs]

    def to_dict(self) -> dict:
        def clean(item):
            data = asdict(item)
            if data.get("range") is not None:
                data["range"] = list(data["range"])
            if data.get("period") == 1:
                del data["period"]  # files without seasons stay what older edgernn wrote
            if data.get("smoothed") is False:
                del data["smoothed"]
            return {k: v for k, v in data.items() if v is not None}

        return {"inputs": [clean(c) for c in self.inputs], "outputs": [clean(c) for c in self.outputs]}

    @classmethod
    def from_preprocessing(cls, preprocessing: Preprocessing, name: str = "value") -> "Columns":
        """A univariate file's ``preprocessing`` in these terms: one unnamed column in, its next value out, relative
        to the latest value when differenced (``named`` False: written back as that ``preprocessing``)."""
        p = preprocessing
        return cls((InputColumn(name, p.difference, p.offset, p.divisor),),
                   (OutputColumn(name, 1, 0, p.difference, p.offset, p.divisor),), named=False)

    @classmethod
    def from_dict(cls, data) -> "Columns":
        """Build from a manifest/metadata dict; raises ValueError (one line, wrapped by callers) when malformed."""
        if not isinstance(data, dict):
            raise ValueError("columns must be an object")
        inputs, outputs = data.get("inputs"), data.get("outputs")
        for what, items in (("inputs", inputs), ("outputs", outputs)):
            if not isinstance(items, list) or not 1 <= len(items) <= MAX_COLUMNS:
                raise ValueError(f"columns.{what} must be a list of 1 to {MAX_COLUMNS} objects")
        columns = cls(tuple(_input(c, i) for i, c in enumerate(inputs)),
                      tuple(_output(c, i, len(inputs)) for i, c in enumerate(outputs)))
        if len(set(columns.features)) != len(inputs):
            raise ValueError("columns.inputs has repeated names")
        if columns.lag * len(inputs) > MAX_PAST_VALUES:  # what each stream remembers: bounded before allocating
            raise ValueError(f"a season of {columns.lag} rows of {len(inputs)} values is more than the "
                             f"{MAX_PAST_VALUES:,} values a stream may remember")
        grid = [(t, h) for t in columns.targets for h in range(1, columns.horizon + 1)]
        if [(c.target, c.step) for c in columns.outputs] != grid:
            raise ValueError("columns.outputs must be each target's steps 1 to the horizon, target by target")
        return columns


class OneValue:
    """``encode(value, last)`` and ``decode(output, latest)`` of a one-value model on Python floats: the float
    operations of ``Columns.encode``/``decode`` in the same order, so bit-equal to them."""

    def __init__(self, difference: bool, in_offset: float, in_divisor: float, out_offset: float,
                 out_divisor: float, relative: bool):
        self.difference, self.relative = difference, relative
        self.numbers = (in_offset, in_divisor, out_offset, out_divisor)  # for C (edgernn.firmware.step)
        if difference:
            self.encode = lambda value, last: (value - last - in_offset) / in_divisor
        else:
            self.encode = lambda value, last: (value - in_offset) / in_divisor
        if relative:
            self.decode = lambda output, latest: output * out_divisor + out_offset + latest
        else:
            self.decode = lambda output, latest: output * out_divisor + out_offset


def output_base(rows: np.ndarray, output: OutputColumn, inputs) -> np.ndarray:
    """What ``output`` adds to the network's change after each raw row of a table ``[n, F]`` (float64): the
    latest value, the value one season before the step, or Holt-Winters' forecast of the next value; 0 when the
    output is not relative; NaN where the baseline does not exist yet."""
    n = rows.shape[0]
    if output.smoothed:
        return holt_winters.forecasts(rows[:, output.source], output.period, inputs[output.source].smoothing)[1:]
    base = np.zeros(n)
    if output.relative:
        base[: output.base_lag] = np.nan
        base[output.base_lag:] = rows[: n - output.base_lag, output.source]
    return base


def _name(value, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_NAME_CHARS or not value.isprintable():
        raise ValueError(f"{where} must be a printable name of 1 to {MAX_NAME_CHARS} characters")
    return value


def _scaling(data: dict, where: str, zero: bool = False) -> tuple[float, float]:
    """``(offset, divisor)``; ``zero``: a relative output's divisor may be 0 (its baseline alone, the network
    turned off on validation)."""
    offset, divisor = data.get("offset", 0.0), data.get("divisor", 1.0)
    for key, value in (("offset", offset), ("divisor", divisor)):
        if not finite_number(value):
            raise ValueError(f"{where}.{key} must be a finite number, got {value!r}")
    if divisor < 0 or (divisor == 0 and not zero):
        raise ValueError(f"{where}.divisor must be positive, got {divisor!r}")
    return float(offset), float(divisor)


def _flag(data: dict, key: str, where: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{where}.{key} must be true or false")
    return value


def _input(data, i: int) -> InputColumn:
    where = f"columns.inputs[{i}]"
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be an object")
    span = data.get("range")
    if span is not None:
        if (not isinstance(span, list) or len(span) != 2 or not all(finite_number(v) for v in span)
                or span[0] > span[1]):
            raise ValueError(f"{where}.range must be [low, high] finite numbers")
        span = (float(span[0]), float(span[1]))
    difference = _flag(data, "difference", where)
    period = _period(data, where)
    if period > 1 and not difference:
        raise ValueError(f"{where}.period needs difference true")
    smoothing = data.get("smoothing")
    if smoothing is not None:
        if period == 1:
            raise ValueError(f"{where}.smoothing needs a period")
        smoothing = Smoothing.from_dict(smoothing)
    return InputColumn(_name(data.get("name"), f"{where}.name"), difference, *_scaling(data, where), span, period,
                       smoothing)


def _period(data: dict, where: str) -> int:
    period = data.get("period", 1)
    if isinstance(period, bool) or not isinstance(period, int) or not 1 <= period <= MAX_PERIOD:
        raise ValueError(f"{where}.period must be an integer from 1 to {MAX_PERIOD}")
    return period


def _output(data, i: int, features: int) -> OutputColumn:
    where = f"columns.outputs[{i}]"
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be an object")
    step, source = data.get("step", 1), data.get("source")
    if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= MAX_HORIZON:
        raise ValueError(f"{where}.step must be an integer from 1 to {MAX_HORIZON}")
    if source is not None and (isinstance(source, bool) or not isinstance(source, int) or not 0 <= source < features):
        raise ValueError(f"{where}.source must be an input column's index (0 to {features - 1}) or absent")
    relative = _flag(data, "relative", where)
    if relative and source is None:
        raise ValueError(f"{where} is relative but names no source column")
    return OutputColumn(_name(data.get("target"), f"{where}.target"), step, source, relative,
                        *_scaling(data, where, zero=relative), _period(data, where), _flag(data, "smoothed", where))
