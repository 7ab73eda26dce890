"""``StreamingPredictor``: one sample in, one prediction out, the hidden state carried between calls.

The predictor owns everything stateful (hidden states in the model's own dtypes, the last raw value for
differencing, the window ring buffer) and all unit conversions (preprocessing, quantization); the backend only
runs one invoke per ``step``. It imports numpy and the standard library only.

One stream on a streaming model takes a scalar fast path (plain Python arithmetic around one backend call,
preallocated input array, no per-step dicts); many streams and window models take the vectorized path. Both
compute the same thing, and the tests hold them to equal outputs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os

import numpy as np

from edgernn.runtime import backends, signing, variants
from edgernn.runtime.bundle import Bundle

from edgernn.errors import EdgernnError, StateError
from edgernn.runtime.inputs import INPUT_LIMIT, rows_per_stream
from edgernn.runtime.row_paths import RowPaths
from edgernn.runtime.manifest import Mode
from edgernn.runtime.options import ON_NAN
from edgernn.runtime.preprocessing import Preprocessing
from edgernn.runtime.season_step import SeasonStep
from edgernn.runtime.quantization import (
    bounds,
    is_quantized,
    quantize,
    requantizer,
    scalar_dequantizer,
    scalar_quantizer,
)
from edgernn.runtime.state_file import read_state, write_state

# what one stream's step takes as a number as it is (a value read from a numpy array is a numpy scalar)
SCALARS = frozenset((float, int, np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8))


def _identity(content: bytes, weights: dict | None, entry, preprocessing: Preprocessing, model,
              columns=None) -> str:
    """What a saved state is only valid for, computed from what was loaded: the model file's bytes (its
    quantization parameters included), the float weights a numpy backend runs, the tensors' dtypes and
    quantization as checked against the interpreter, the preprocessing and the window."""
    digest = hashlib.sha256(content)
    for key in sorted(weights or {}):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(weights[key]).tobytes())
    described = {"tensors": [[t.name, t.dtype, t.scale, t.zero_point] for t in [*entry.inputs, *entry.outputs]],
                 "preprocessing": preprocessing.to_dict(), "mode": model.mode, "raw_window": model.raw_window}
    if columns.named:  # a plain univariate model is its preprocessing: states saved before columns stay valid
        described["columns"] = columns.to_dict()
    digest.update(json.dumps(described, sort_keys=True).encode())
    return digest.hexdigest()


def _engine(bundle, variant: str, entry, content: bytes, backend: str, streams: int, refuse_recorded: bool):
    """``(engine, weights, notes)``: the variant loaded on the backend ``backend`` names (``backends.load``)."""
    loaded = {}

    def make(engine_class):
        loaded["weights"] = bundle.weights() if engine_class.needs_weights else None
        options = {"hand_over": True} if getattr(engine_class, "can_hand_over", False) else {}
        return engine_class(content, entry, streams, weights=loaded["weights"], model_info=bundle.manifest.model,
                            **options)

    engine, notes = backends.load(backend, variants.variant(variant), entry if refuse_recorded else None, make)
    return engine, loaded["weights"], notes


class StreamingPredictor(RowPaths):
    """Stateful step-by-step inference over ``streams`` independent streams in one interpreter invoke.

    Use ``StreamingPredictor.load(bundle_dir, ...)``. ``step(x)`` returns the next-value prediction in raw units
    (a float for one stream, ``[streams]`` otherwise). Window models return NaN until their buffer is full;
    models on differences return NaN for a stream's first value.

    A multivariate model (``manifest.columns``: F features in, K targets x H steps out) takes one row of F raw
    values per stream (``[F]`` or ``[streams, F]``) and returns ``[K, H]`` per stream (``[streams, K, H]``);
    a float (``[streams]``) when K and H are both 1.
    """

    def __init__(self, manifest, entry, backend, preprocessing: Preprocessing, streams: int, on_nan: str,
                 identity: str):
        self.manifest = manifest
        self.identity = identity  # what saved states are valid for (see _identity)
        self.bundle_version = None  # the signed bundle's version when loaded with trust (rollback: load_state)
        self.variant = entry.name
        self.intervals = entry.intervals  # calibrated at export (None for bundles exported without them)
        self.backend_name = backend.name
        self.backend_note = getattr(backend, "note", None)  # e.g. a fallback to slower kernels, for the user
        self.streams = streams
        self.on_nan = on_nan
        self._run = backend.run
        self._pre = preprocessing
        self._window = manifest.model.mode is Mode.WINDOW
        self._columns = manifest.columns
        self._takes_rows = manifest.takes_rows  # otherwise a number per stream in, a number out, counts per stream
        self._flat_state = not manifest.columns.named  # a plain univariate model's states hold [streams] values
        self.features = manifest.features
        self.output_shape = (len(self._columns.targets), self._columns.horizon)
        self._x_spec = entry.input("x")
        self._y_spec = entry.output("y")
        self._pairs = [(entry.input(i), entry.output(o)) for i, o in entry.state_pairs]
        # each state output -> the next step's state input: None when the quantization is the same, or when the
        # backend hands the states over in the graph (``tflite_handover``)
        handed = getattr(backend, "states_handed_over", False)
        self._handovers = [None if handed else requantizer(out_spec, in_spec) for in_spec, out_spec in self._pairs]
        self._handover_is_copy = not any(self._handovers)
        self._x = np.zeros([streams, *self._x_spec.shape[1:]], dtype=self._x_spec.dtype)
        self._choose_scalar_path(manifest, backend)
        # a season's past rows (a ring per stream) go through the general row path
        self._seasonal = self._columns.lag > 1
        self._row_fast = streams == 1 and not self._window and not self._seasonal and not self._fast
        self._quantize_x = scalar_quantizer(self._x_spec)
        self._dequantize_y = scalar_dequantizer(self._y_spec)
        # monitoring, in model-input units: the calibrated range, and what the input tensor can represent
        calibrated = manifest.input_range or [-math.inf, math.inf]
        self._calibrated = (float(calibrated[0]), float(calibrated[1]))
        self._guard = (max(self._calibrated[0], -INPUT_LIMIT), min(self._calibrated[1], INPUT_LIMIT))
        spans = [c.range or self._calibrated for c in self._columns.inputs]  # per feature, where export recorded it
        self._feature_low, self._feature_high = (np.array(v, dtype=np.float64) for v in zip(*spans))
        if self._fast:  # the scalar path guards and counts against the one feature's range
            self._calibrated = (float(self._feature_low[0]), float(self._feature_high[0]))
            self._guard = (max(self._calibrated[0], -INPUT_LIMIT), min(self._calibrated[1], INPUT_LIMIT))
        self._choose_rows_path()
        if is_quantized(self._x_spec):
            low, high = bounds(self._x_spec)
            scale, zero = self._x_spec.scale, self._x_spec.zero_point
            half = scale / 2  # values within half a step of the ends still round to them
            self._representable = (scale * (low - zero) - half, scale * (high - zero) + half)
        else:
            self._representable = (-math.inf, math.inf)
        if self._row_fast:
            self._prepare_row_path()
        self._season_fast = self._seasonal and streams == 1 and self._columns.univariate
        if self._season_fast:  # one stream of one value: floats and a deque (see season_step)
            self._season_step = SeasonStep(self._columns, self._run, self._x, self._quantize_x, self._dequantize_y,
                                           None if self._handover_is_copy else self._handed_over,
                                           (self._guard, self._calibrated, self._representable, INPUT_LIMIT))
        self.reset()

    def _choose_rows_path(self) -> None:
        """The general path's common case (``_rows_inside``): its guard, and for many streams of one value
        ``Columns.encode``/``decode`` specialised to its numbers (the same float operations)."""
        inside = (np.maximum(self._feature_low, -INPUT_LIMIT), np.minimum(self._feature_high, INPUT_LIMIT))
        self._inside = tuple(float(v[0]) for v in inside) if self.features == 1 else inside
        one_value = self._one_value  # set by _choose_scalar_path
        self._encode_rows = one_value.encode if one_value is not None else self._columns.encode
        self._decode_rows = one_value.decode if one_value is not None else self._columns.decode
        streams, features = self.streams, self.features
        self._row_shape = (streams,) if features == 1 and streams > 1 else (streams, features)

    def _choose_scalar_path(self, manifest, backend) -> None:
        """One stream of one value in and out (a univariate bundle, or F = K = H = 1 columns without a season):
        ``step`` goes straight to the scalar path (the checks in ``step`` cost 0.1 us), through the backend's
        fused one-stream step where it has one (the c backend: a value in and out, the states stepped in its
        memory; its int8 step hands them over to the next step's quantization itself)."""
        self._one_value = one_value = manifest.columns.one_value()
        self._fast = self.streams == 1 and not self._window and one_value is not None
        self._fused = self._fused_states = None
        if not self._fast:
            return
        self._pre = one_value
        self.step = self._step_one
        if getattr(backend, "step_one", None) is not None and (
                self._handover_is_copy or getattr(backend, "hands_over", False)):
            self._fused, self._fused_states = backend.step_one, backend.one_states

    @classmethod
    def load(cls, bundle_dir: str | os.PathLike, variant: str = variants.DEFAULT_VARIANT, backend: str = "auto",
             streams: int = 1, on_nan: str = "skip", refuse_recorded: bool = True,
             trust=None) -> "StreamingPredictor":
        """Open a bundle (validated, hash-checked) and load one variant on one backend.

        Args:
            bundle_dir: a directory written by ``edgernn export``.
            variant: a name from ``edgernn.runtime.variants.ALL_VARIANTS`` (e.g. ``tflite-int8``).
            backend: ``auto``, a name from ``edgernn.runtime.backends.BACKENDS``, or a comma-separated
                preference list of them (the first that runs the variant here).
            streams: independent streams stepped together (the batch dimension).
            on_nan: what a NaN/inf input does: ``skip`` (state untouched, prediction NaN), ``hold`` (feed the
                stream's last good value) or ``raise``.
            refuse_recorded: refuse an interpreter the export recorded as unable to run this variant (False:
                try it anyway; verify does, so that no manifest can hide a variant from the gate).
            trust: a public key file or a directory of them (or ``signing.load_trust``'s keys): the bundle must
                be signed by one (``edgernn.runtime.signing``); its version is then saved with the state, and a
                state saved with a newer version refuses this bundle.

        Raises:
            BundleError, BackendError, EdgernnError: one line each.
        """
        if on_nan not in ON_NAN:
            raise EdgernnError(f"on_nan must be one of {', '.join(ON_NAN)}, got {on_nan!r}")
        if isinstance(streams, bool) or not isinstance(streams, int) or not 1 <= streams <= 1 << 16:
            raise EdgernnError(f"streams must be an integer from 1 to 65536, got {streams!r}")
        if trust is not None and not isinstance(trust, dict):
            trust = signing.load_trust(trust)
        bundle = Bundle.open(bundle_dir, trust)
        manifest = bundle.manifest
        entry = bundle.variant(variant)
        content = bundle.read(variant)
        engine, weights, gave_way = _engine(bundle, variant, entry, content, backend, streams, refuse_recorded)
        preprocessing = manifest.preprocessing
        identity = _identity(content, weights, entry, preprocessing, manifest.model, manifest.columns)
        predictor = cls(manifest, entry, engine, preprocessing, streams, on_nan, identity)
        predictor.bundle_version = bundle.signed.version if bundle.signed else None
        if gave_way:
            predictor.backend_note = "; ".join(filter(None, [*gave_way, predictor.backend_note]))
        return predictor

    # -- intervals -------------------------------------------------------------------------------------------

    def half_width(self, level: float) -> float:
        """The interval half-width (raw units) this variant's residuals stayed within at ``level`` on held-out
        data at export: the prediction +- it is a split-conformal interval. Raises EdgernnError (one line) for a
        bundle without intervals, a level not calibrated, or held-out data too short for it."""
        if self.intervals is None:
            raise EdgernnError(f"this bundle has no calibrated intervals for {self.variant} (exported by an older "
                               "edgernn, or with no held-out data): export it again to get them")
        try:
            width = self.intervals.half_width(level)
        except ValueError as exc:
            raise EdgernnError(str(exc)) from None
        if width is None:
            raise EdgernnError(f"level {level:g} needs more held-out residuals than the {self.intervals.residuals} "
                               f"export had ({self.intervals.source}); choose a lower level")
        return width

    def monitor(self, level: float = 0.9, adaptive: bool = False, rate: float | None = None, scaled: bool = True,
                clean: bool = False):
        """A ``Monitor`` (``edgernn.runtime.intervals``) around this predictor: intervals at ``level`` and each
        value scored against its prediction; ``adaptive`` tracks the half-width online. A bundle calibrated with
        a residual scale gets intervals that follow the residuals' recent size unless ``scaled=False``;
        ``clean`` feeds a flagged reading to the model clipped to its interval."""
        from edgernn.runtime.intervals import ADAPTIVE_RATE, Monitor

        return Monitor(self, level, self.half_width(level), adaptive, ADAPTIVE_RATE if rate is None else rate,
                       self.intervals.scaling if scaled else None, clean)

    # -- state -----------------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the start of every stream: zero states, empty window, no last value."""
        self._states = [quantize(np.zeros([self.streams, *spec.shape[1:]]), spec) for spec, _ in self._pairs]
        row = (self.features,)  # a stream's values are rows of F
        self._last = np.full((self.streams, *row), np.nan)  # last raw value fed (differencing, hold)
        self._buffer = np.full((self.streams, self.manifest.model.raw_window or 0, *row), np.nan)
        self._filled = np.zeros(self.streams, dtype=np.int64)
        if self._seasonal:  # each stream's last ``lag`` raw rows, oldest first (NaN: none yet)
            self._past = np.full((self.streams, self._columns.lag, *row), np.nan)
            # Holt-Winters states (level, trend, season) of the smoothed columns; NaN until a season is in
            self._smooth = np.full((self.streams, len(self._columns.smoothed), 2 + self._columns.lag), np.nan)
        self.steps = 0
        self._out_of_range = np.zeros((self.streams, *row), dtype=np.int64)
        self._clipped = np.zeros((self.streams, *row), dtype=np.int64)
        self._row = None  # the row path's last row (a list), not yet written into _last (_settle_row)
        if self._season_fast:
            self._season_step.load(self._past[0, :, 0], self._smooth[0, 0] if self._columns.smoothed else None)
            self._season_step.counts = (self._out_of_range, self._clipped)
        self._adopt_states()

    def _adopt_states(self) -> None:
        """With a fused step the states live in the backend's memory: the new ones are copied there, and those
        views become the states (read by ``state``, written in place by each step)."""
        if self._fused is not None:
            for view, value in zip(self._fused_states, self._states):
                view[...] = value
            self._states = list(self._fused_states)

    @property
    def stats(self) -> dict[str, np.ndarray]:
        """Per stream: steps whose model input fell outside the calibrated range (``out_of_range``), and
        outside what an integer variant's input tensor can represent, i.e. clipped (``clipped``); per stream and
        feature (``[streams, F]``) for a model taking rows (``manifest.takes_rows``).

        Counted since load or ``reset``; a device seeing these grow is seeing data the model never saw.
        """
        return {"steps": np.full(self.streams, self.steps), "out_of_range": self._per_stream(self._out_of_range).copy(),
                "clipped": self._per_stream(self._clipped).copy(), "calibrated_range": np.array(self._calibrated)}

    def _per_stream(self, counts: np.ndarray) -> np.ndarray:
        """Counts ``[streams, F]`` as the API gives them: ``[streams]`` for a model taking a number per stream."""
        return counts if self._takes_rows else counts[:, 0]

    def out_of_range_counts(self) -> np.ndarray:
        """``stats["out_of_range"]`` as it grows: a read-only view, no copy, so a per-line check costs nothing
        (``edgernn stream``'s warning). Valid until ``reset``, which starts new counts."""
        view = self._per_stream(self._out_of_range).view()
        view.flags.writeable = False
        return view

    @property
    def state(self) -> dict[str, np.ndarray]:
        """A copy of everything that carries over between steps, hidden states in the model's own dtypes."""
        state = {spec.name: value.copy() for (spec, _), value in zip(self._pairs, self._states)}
        self._settle_row()
        state["last"] = self._saved(self._last).copy()
        if self._seasonal:
            state["past"] = self._past.copy()
            if self._columns.smoothed:
                state["smooth"] = self._smooth.copy()
        if self._window:
            state["buffer"] = self._saved(self._buffer).copy()
            state["filled"] = self._filled.copy()
        return state

    def _saved(self, values: np.ndarray) -> np.ndarray:
        """Last values or a window buffer as states hold them: without the row axis for a plain univariate model
        (its states are read and written as older edgernn wrote them)."""
        return values[..., 0] if self._flat_state else values

    def _held(self, values: np.ndarray) -> np.ndarray:
        """``_saved`` undone: rows of F again."""
        return values[..., None] if self._flat_state else values

    def _state_meta(self) -> dict:
        # checked in this order: the clearest reason first (another variant, then another stream count)
        return {"variant": self.variant, "streams": self.streams, "identity": self.identity}

    def save_state(self, path: str | os.PathLike, extra: dict | None = None) -> None:
        """Write the state atomically (temp file, fsync, rename), tagged with what is loaded (``identity``).

        ``extra``: JSON values saved alongside (returned by ``load_state``).
        """
        arrays = {f"state/{k}": v for k, v in self.state.items()}
        arrays["steps"] = np.array(self.steps)
        signed = {} if self.bundle_version is None else {"bundle_version": self.bundle_version}
        write_state(path, {**self._state_meta(), **signed, "extra": extra or {}}, arrays)

    def load_state(self, path: str | os.PathLike) -> dict:
        """Restore a state written by ``save_state`` of the same model file, variant and stream count.

        Returns the ``extra`` values saved with it. Raises StateError for a foreign, damaged or truncated file,
        and for one holding non-finite hidden states (a NaN state would make every later prediction NaN).
        """
        meta, arrays = read_state(path, self._state_meta(), self.bundle_version)
        steps = arrays.get("steps")
        if steps is None or steps.shape != () or steps.dtype.kind not in "iu" or int(steps) < 0:
            raise StateError(f"state file {path} lacks a valid step count; use --reset-state to start over")
        self._restore({key[len("state/"):]: value for key, value in arrays.items() if key.startswith("state/")},
                      int(steps), f"state file {path}")
        return dict(meta.get("extra", {}))

    def restore_state(self, state: dict[str, np.ndarray], steps: int | None = None) -> None:
        """Take over ``state`` (as ``state`` returns it, for this predictor's stream count), checked like a
        state file: how the MQTT bridge moves its streams into a predictor with more of them."""
        self._restore(state, self.steps if steps is None else steps, "the given state")

    def _restore(self, given: dict[str, np.ndarray], steps: int, source: str) -> None:
        restored = {}
        for key, value in self.state.items():
            saved = given.get(key)
            if saved is None or saved.shape != value.shape or saved.dtype != value.dtype:
                raise StateError(f"{source} lacks a valid {key!r} array; use --reset-state to start over")
            finite = np.isfinite(saved) if key not in ("last", "buffer", "past", "smooth") else ~np.isinf(saved)  # NaN: none yet
            if saved.dtype.kind == "f" and not finite.all():
                raise StateError(f"{source} holds non-finite values in {key!r}; use --reset-state to start over")
            restored[key] = saved.copy()
        if self._window and ((restored["filled"] < 0).any() or restored["filled"].dtype.kind not in "iu"):
            raise StateError(f"{source} has a negative window fill; use --reset-state to start over")
        self._states = [restored[spec.name] for spec, _ in self._pairs]
        self._adopt_states()
        self._last = self._held(restored["last"])
        if self._seasonal:
            self._past = restored["past"]
            if self._columns.smoothed:
                self._smooth = restored["smooth"]
        self._row = None
        if self._season_fast:
            self._season_step.load(self._past[0, :, 0], self._smooth[0, 0] if self._columns.smoothed else None)
        if self._window:
            self._buffer, self._filled = self._held(restored["buffer"]), restored["filled"]
        self.steps = steps

    # -- stepping --------------------------------------------------------------------------------------------

    def step(self, x):
        """Feed one value per stream (one row of F per stream for a multivariate model); returns the
        prediction(s) in raw units."""
        if self._row_fast:  # one stream of a streaming model taking rows: its row encoder around one call
            return self._step_row(x)
        if self._season_fast:
            return self._step_season(x)
        return self._step_rows(x)

    def _step_scalar(self, x):
        """``step`` for one stream of one value: a number (Python's or numpy's) straight to the scalar path, anything else
        through ``rows_per_stream``'s checks (a string, None or a dict is refused there, in one line)."""
        return self._step_one(float(x) if type(x) in SCALARS else float(rows_per_stream(x, 1, 1)[0, 0]))

    def _apply_on_nan(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``values`` (per stream, or rows) with ``on_nan`` applied to their non-finite entries (raise; hold: the
        stream's last value; skip: left as they are), and which entries are finite now."""
        finite = np.isfinite(values)
        if not finite.all():
            if self.on_nan == "raise":
                raise EdgernnError(f"non-finite input {values[~finite].tolist()} (on_nan='raise')")
            if self.on_nan == "hold":
                values = np.where(finite, values, self._last)
                finite = np.isfinite(values)
        return values, finite

    def _step_one(self, value: float) -> float:
        """The scalar fast path: one stream of a streaming model (Python floats: cheaper than numpy scalars).
        ``step`` itself for a Python float (one call less: a tenth of a c backend step), ``_step_scalar``'s
        checks for anything else."""
        if type(value) is not float:
            return self._step_scalar(value)
        last = self._last.item(0)
        if not math.isfinite(value):
            if self.on_nan == "raise":
                raise EdgernnError(f"non-finite input [{value}] (on_nan='raise')")
            if self.on_nan == "hold" and math.isfinite(last):
                value = last
            else:
                self.steps += 1
                return math.nan
        pre = self._pre
        if pre.difference and not math.isfinite(last):
            self._last[0, 0] = value
            self.steps += 1
            return math.nan
        z = pre.encode(value, last)
        if not self._guard[0] <= z <= self._guard[1]:  # rare: outside the calibrated range, or absurd
            if not self._calibrated[0] <= z <= self._calibrated[1]:
                self._out_of_range[0] += 1
                if not self._representable[0] <= z <= self._representable[1]:
                    self._clipped[0] += 1
            z = min(INPUT_LIMIT, max(-INPUT_LIMIT, z))
        if self._fused is not None:
            y = self._fused(z)
        else:
            self._x[0, 0] = self._quantize_x(z)
            out = self._run([self._x, *self._states])
            self._states = out[1:] if self._handover_is_copy else self._handed_over(out)
            y = self._dequantize_y(out[0][0, 0])
        self._last[0, 0] = value
        self.steps += 1
        return pre.decode(y, value)

    def _count_outside(self, z: np.ndarray, active: np.ndarray, low, high) -> None:
        """Count the active model inputs outside their calibrated range [low, high] (per stream, or per stream
        and feature), and those beyond what the input tensor represents (clipped)."""
        outside = active & ((z < low) | (z > high))
        if outside.any():
            self._out_of_range += outside
            self._clipped += outside & ((z < self._representable[0]) | (z > self._representable[1]))

    def run(self, values) -> np.ndarray:
        """Step through ``values`` (``[n]``, or ``[n, streams]``; rows ``[n, F]`` or ``[n, streams, F]`` for a
        model taking rows); returns one prediction per step."""
        values = np.asarray(values, dtype=np.float64)
        if self._takes_rows or self._columns.named:  # a row of F per step: one output per step
            out = [np.asarray(self.step(row), dtype=np.float64) for row in values]
            return np.stack(out) if out else np.empty((0,))
        out = np.empty((len(values), self.streams))  # a plain model: [n, streams], or [n] as given
        for i, value in enumerate(values):
            out[i] = self.step(value)
        return out[:, 0] if self.streams == 1 and values.ndim == 1 else out
