"""The predictor's general path: rows of F values per stream in (a number per stream for a one-value model, F =
1), K targets x H steps out, for many streams (a fast case when every input is inside its range), a season's past
rows and window models; and one stream's compiled row step (``row_step``). Part of ``StreamingPredictor`` (a base
class holding these methods only: the state they use is the predictor's)."""

from __future__ import annotations

import math

import numpy as np

from edgernn.errors import EdgernnError
from edgernn.runtime.inputs import INPUT_LIMIT, rows_per_stream, values_per_stream
from edgernn.runtime.quantization import dequantize, is_quantized, quantize
from edgernn.runtime.row_step import one_output_decoder, row_encoder


class RowPaths:
    """Methods of ``StreamingPredictor`` for rows; see there for the attributes they read and write."""

    def _prepare_row_path(self) -> None:
        """The one-stream row step (see ``row_step``), guarding each input within its calibrated range and
        INPUT_LIMIT (and, for an integer input, a step inside what the tensor represents, so that a guarded value
        never needs clipping)."""
        columns = self._columns
        low = np.maximum(self._feature_low, -INPUT_LIMIT)
        high = np.minimum(self._feature_high, INPUT_LIMIT)
        quantization = None
        if is_quantized(self._x_spec):
            low = np.maximum(low, self._representable[0] + self._x_spec.scale)
            high = np.minimum(high, self._representable[1] - self._x_spec.scale)
            quantization = (self._x_spec.scale, self._x_spec.zero_point)
        self._decode_one = self._decode_row
        if len(columns.outputs) == 1:  # as dequantize and Columns.decode, in the same order (bit-equal)
            out, y = columns.outputs[0], self._y_spec
            zero, scale = (int(y.zero_point), float(y.scale)) if is_quantized(y) else (0, 1.0)
            self._decode_one = one_output_decoder(zero, scale, float(out.divisor), float(out.offset),
                                                  out.source if out.relative else None)
        self._encode_row = row_encoder(columns.inputs, low.tolist(), high.tolist(), self._x, quantization)

    def _step_row(self, x):
        """One stream of a streaming model: the common row encoded straight into the input (``row_encoder``),
        one backend call, the states handed over, the row kept (into ``_last`` when someone reads it:
        ``_settle_row``; a copy per step costs more); anything else through the general path."""
        row = self._encode_row(x, self._row, self._last)
        if row is None:
            return self._step_rows(x)
        out = self._run([self._x, *self._states])
        self._states = out[1:] if self._handover_is_copy else self._handed_over(out)
        self._row = row
        self.steps += 1
        return self._decode_one(out[0], row)

    def _handed_over(self, out: list[np.ndarray]) -> list[np.ndarray]:
        """The state outputs of ``out`` (``[y, *states]``) as the next step's state inputs (requantized)."""
        if len(out) == 2:  # one state (SimpleRNN, GRU): no list built from a zip
            return [out[1] if self._handovers[0] is None else self._handovers[0](out[1])]
        return [o if h is None else h(o) for h, o in zip(self._handovers, out[1:])]

    def _decode_row(self, y: np.ndarray, row: list[float]) -> np.ndarray:
        """One stream's outputs ``y`` ``[1, K*H]`` in raw units ``[K, H]`` (the row step's several outputs)."""
        return self._columns.decode(dequantize(y[0], self._y_spec), np.array(row)).reshape(self.output_shape)

    def _step_rows(self, x):
        """``step`` for everything but one stream's scalar, row and season paths: rows ``[streams, F]`` (a
        number per stream for a one-value model) through the model, ``on_nan`` applied."""
        self._settle_row()
        if type(x) is np.ndarray and x.dtype.kind == "f" and x.shape == self._row_shape:  # the usual: a copy only
            rows = x.astype(np.float64).reshape(self.streams, self.features)
        elif self._takes_rows:
            rows = rows_per_stream(x, self.streams, self.features)
        else:  # a number per stream, in any shape of that size, as edgernn always took it
            rows = values_per_stream(x, self.streams)[:, None]
        out = None if self._window or self._seasonal else self._rows_inside(rows)
        if out is None:
            rows, finite = self._apply_on_nan(rows)
            good = finite.all(axis=1)  # a row with a value missing is skipped (or held above)
            with np.errstate(over="ignore", invalid="ignore"):
                out = (self._window_rows(rows, good) if self._window else
                       self._season_rows(rows, good) if self._seasonal else self._stream_rows(rows, good))
        self.steps += 1
        k, h = self.output_shape
        if k * h == 1:
            return float(out[0, 0]) if self.streams == 1 else out[:, 0]
        out = out.reshape(self.streams, k, h)
        return out[0] if self.streams == 1 else out

    def _step_season(self, x) -> float:
        """One value of one stream of a seasonal one-column model (``SeasonStep``), ``on_nan`` applied."""
        value = x if isinstance(x, float) else float(rows_per_stream(x, 1, 1)[0, 0])
        if not math.isfinite(value):
            last = self._season_step.ring[-1]
            if self.on_nan == "raise":
                raise EdgernnError(f"non-finite input [{value}] (on_nan='raise')")
            if self.on_nan != "hold" or not math.isfinite(last):
                self.steps += 1
                return math.nan
            value = last
        prediction, self._states = self._season_step.step(value, self._states)
        self.steps += 1
        return prediction

    def _settle_row(self) -> None:
        """Write the row path's last row into ``_last`` (the state, the general path and hold read it there),
        and the seasonal fast path's ring into ``_past``."""
        if self._season_fast:
            self._past[0, :, 0] = self._season_step.ring
            if self._columns.smoothed:
                self._smooth[0, 0] = self._season_step.smooth_state()
            self._last[0, 0] = self._past[0, -1, 0]
        if self._row is not None:
            self._last[0] = self._row
            self._row = None

    def _rows_inside(self, rows: np.ndarray) -> np.ndarray | None:
        """Many streams, the common case: every model input finite and inside its calibrated range (so nothing to
        hold, skip, count or clip): the interpreter's call and the arithmetic around it only, as a hand-written
        batched loop would (issue 31). None, having changed nothing, when any input is not: ``_stream_rows``."""
        with np.errstate(over="ignore", invalid="ignore"):
            z = self._encode_rows(rows, self._last)  # NaN where a value or (differencing) a last value is
        low, high = self._inside
        if not (low <= z.min() and z.max() <= high if self.features == 1 else (low <= z).all() and (z <= high).all()):
            return None  # NaN compares False
        quantize(z, self._x_spec, out=self._x)
        out = self._run([self._x, *self._states])
        self._states = out[1:] if self._handover_is_copy else self._handed_over(out)
        self._last = rows
        return self._decode_rows(dequantize(out[0], self._y_spec), rows)

    def _stream_rows(self, rows: np.ndarray, good: np.ndarray) -> np.ndarray:
        columns, last = self._columns, self._last
        active = good & np.isfinite(last).all(axis=1) if columns.lag else good
        z = columns.encode(rows, last)  # [streams, F]
        self._count_outside(z, active[:, None], self._feature_low, self._feature_high)
        z = np.where(active[:, None], np.clip(z, -INPUT_LIMIT, INPUT_LIMIT), 0.0)
        quantize(z, self._x_spec, out=self._x)
        out = self._run([self._x, *self._states])
        predictions = columns.decode(dequantize(out[0], self._y_spec), rows)  # [streams, K*H]
        for k, handover in enumerate(self._handovers):
            new = out[k + 1] if handover is None else handover(out[k + 1])
            self._states[k] = np.where(active[:, None], new, self._states[k])
        self._last = np.where(good[:, None], rows, last)
        return np.where(active[:, None], predictions, np.nan)

    def _season_rows(self, rows: np.ndarray, good: np.ndarray) -> np.ndarray:
        """``_stream_rows`` for a model differenced over a season: inputs and the baseline read each stream's
        past rows; a stream predicts (and its hidden state moves) once it has a season of rows, NaN before."""
        columns, past = self._columns, self._past
        active = good & np.isfinite(past).all(axis=(1, 2))
        ahead = None
        if columns.smoothed:  # Holt-Winters under the network: started from a stream's first season of rows
            fresh = active & np.isnan(self._smooth).any(axis=(1, 2))
            self._smooth[fresh] = columns.smoothing_start(past[fresh])
            ahead = columns.smoothing_ahead(self._smooth)
        z = columns.encode_past(rows, past, ahead)  # [streams, F]
        self._count_outside(z, active[:, None], self._feature_low, self._feature_high)
        z = np.where(active[:, None], np.clip(np.nan_to_num(z), -INPUT_LIMIT, INPUT_LIMIT), 0.0)
        quantize(z, self._x_spec, out=self._x)
        out = self._run([self._x, *self._states])
        if columns.smoothed:
            self._smooth[active] = columns.smoothing_update(self._smooth[active], rows[active])
            ahead = columns.smoothing_ahead(self._smooth)
        predictions = columns.decode(dequantize(out[0], self._y_spec), rows, past, ahead)  # [streams, K*H]
        for k, new in enumerate(self._handed_over(out)):
            self._states[k] = np.where(active[:, None], new, self._states[k])
        past[good] = np.concatenate([past[good, 1:], rows[good, None]], axis=1)
        self._last = np.where(good[:, None], rows, self._last)
        return np.where(active[:, None], predictions, np.nan)

    def _window_rows(self, rows: np.ndarray, good: np.ndarray) -> np.ndarray:
        buffer = self._buffer  # [streams, raw_window, F]
        buffer[good, :-1] = buffer[good, 1:]
        buffer[good, -1] = rows[good]
        self._filled[good] += 1
        self._last = np.where(good[:, None], rows, self._last)
        ready = good & (self._filled >= buffer.shape[1])
        result = np.full((self.streams, len(self._columns.outputs)), np.nan)
        if ready.any():
            z = np.nan_to_num(self._columns.transform(buffer))  # [streams, window, F]
            self._count_outside(z[:, -1], ready[:, None], self._feature_low, self._feature_high)  # once per row
            quantize(np.clip(z, -INPUT_LIMIT, INPUT_LIMIT), self._x_spec, out=self._x)
            out = self._run([self._x])
            y = self._columns.decode(dequantize(out[0], self._y_spec), buffer[:, -1])
            result = np.where(ready[:, None], y, np.nan)
        return result
