"""``StreamingPredictor``: one sample in, one prediction out, the hidden state carried between calls.

The predictor owns everything stateful (hidden states in the model's own dtypes, the last raw value for
differencing, the window ring buffer) and all unit conversions (preprocessing, quantization); the backend only
runs one invoke per ``step``. It imports numpy and the standard library only.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgernn.runtime import backends
from edgernn.runtime.bundle import load_weights, open_bundle, read_verified, variant_entry
from edgernn.runtime.errors import EdgernnError
from edgernn.runtime.preprocessing import Preprocessing
from edgernn.runtime.quantization import dequantize, quantize, requantize
from edgernn.runtime.state_file import read_state, write_state
from edgernn.runtime.errors import BundleError

ON_NAN = ("skip", "hold", "raise")


class StreamingPredictor:
    """Stateful step-by-step inference over ``streams`` independent streams in one interpreter invoke.

    Use ``StreamingPredictor.load(bundle_dir, ...)``. ``step(x)`` returns the next-value prediction in raw units
    (a float for one stream, ``[streams]`` otherwise). Window models return NaN until their buffer is full;
    models on differences return NaN for a stream's first value.
    """

    def __init__(self, manifest, entry, backend, preprocessing: Preprocessing, streams: int, on_nan: str):
        self.manifest = manifest
        self.variant = entry.name
        self.backend_name = backend.name
        self.streams = streams
        self.on_nan = on_nan
        self._entry = entry
        self._backend = backend
        self._pre = preprocessing
        self._window = manifest.model.mode == "window"
        self._x_spec = entry.input("x")
        self._y_spec = entry.output("y")
        self._pairs = [(entry.input(i), entry.output(o)) for i, o in entry.state_pairs]
        self._feeds = {"x": np.zeros([streams, *self._x_spec.shape[1:]], dtype=self._x_spec.dtype)}
        self.reset()

    @classmethod
    def load(cls, bundle_dir: str | os.PathLike, variant: str = "tflite-int8", backend: str = "auto",
             streams: int = 1, on_nan: str = "skip") -> "StreamingPredictor":
        """Open a bundle (validated, hash-checked) and load one variant on one backend.

        Args:
            bundle_dir: a directory written by ``edgernn export``.
            variant: ``tflite-float32``, ``tflite-float16``, ``tflite-dynamic``, ``tflite-int8``,
                ``tflite-int16x8``, ``onnx-float32`` or ``onnx-int8``.
            backend: ``auto``, ``litert``, ``tflite-runtime``, ``onnxruntime``, ``numpy`` or ``tensorflow``.
            streams: independent streams stepped together (the batch dimension).
            on_nan: what a NaN/inf input does: ``skip`` (state untouched, prediction NaN), ``hold`` (feed the
                stream's last good value) or ``raise``.

        Raises:
            BundleError, BackendError: one line each.
        """
        if on_nan not in ON_NAN:
            raise EdgernnError(f"on_nan must be one of {', '.join(ON_NAN)}, got {on_nan!r}")
        if isinstance(streams, bool) or not isinstance(streams, int) or not 1 <= streams <= 1 << 16:
            raise EdgernnError(f"streams must be an integer from 1 to 65536, got {streams!r}")
        path, manifest = open_bundle(bundle_dir)
        entry = variant_entry(manifest, variant)
        from edgernn.runtime.manifest import Variant

        cls_ = backends.choose(backend, entry.format, Variant(variant).is_float32)
        content = read_verified(path, entry.file, entry.sha256)
        weights = load_weights(path, manifest) if cls_.name == "numpy" else None
        try:
            preprocessing = Preprocessing.from_dict(manifest.preprocessing)
        except ValueError as exc:
            raise BundleError(f"manifest.json: {exc}") from None
        engine = cls_(content, entry, streams, weights=weights, model_info=manifest.model)
        return cls(manifest, entry, engine, preprocessing, streams, on_nan)

    # -- state -----------------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the start of every stream: zero states, empty window, no last value."""
        self._states = {spec.name: quantize(np.zeros([self.streams, *spec.shape[1:]]), spec)
                        for spec, _ in self._pairs}
        self._last = np.full(self.streams, np.nan)  # last raw value fed (differencing, hold)
        self._buffer = np.full((self.streams, self.manifest.model.raw_window or 0), np.nan)
        self._filled = np.zeros(self.streams, dtype=np.int64)
        self.steps = 0

    @property
    def state(self) -> dict[str, np.ndarray]:
        """A copy of everything that carries over between steps, hidden states in the model's own dtypes."""
        state = {name: value.copy() for name, value in self._states.items()}
        state["last"] = self._last.copy()
        if self._window:
            state["buffer"] = self._buffer.copy()
            state["filled"] = self._filled.copy()
        return state

    def _state_meta(self) -> dict:
        return {"model_sha256": self.manifest.model_sha256, "variant": self.variant, "streams": self.streams}

    def save_state(self, path: str | os.PathLike, extra: dict | None = None) -> None:
        """Write the state atomically (temp file, fsync, rename), tagged with the model hash and variant."""
        arrays = {f"state/{k}": v for k, v in self.state.items()}
        arrays["steps"] = np.array(self.steps)
        for key, value in (extra or {}).items():
            arrays[f"extra/{key}"] = np.asarray(value)
        write_state(path, self._state_meta(), arrays)

    def load_state(self, path: str | os.PathLike) -> dict:
        """Restore a state written by ``save_state`` of the same model, variant and stream count.

        Returns the ``extra`` values saved with it. Raises StateError for a foreign, damaged or truncated file.
        """
        from edgernn.runtime.errors import StateError

        arrays = read_state(path, self._state_meta())
        current = self.state
        restored = {}
        for key, value in current.items():
            saved = arrays.get(f"state/{key}")
            if saved is None or saved.shape != value.shape or saved.dtype != value.dtype:
                raise StateError(f"state file {path} lacks a valid {key!r} array; use --reset-state to start over")
            restored[key] = saved
        for name in self._states:
            self._states[name] = restored[name].copy()
        self._last = restored["last"].copy()
        if self._window:
            self._buffer, self._filled = restored["buffer"].copy(), restored["filled"].copy()
        self.steps = int(arrays.get("steps", 0))
        return {k[len("extra/"):]: v for k, v in arrays.items() if k.startswith("extra/")}

    # -- stepping --------------------------------------------------------------------------------------------

    def step(self, x):
        """Feed one value per stream; returns the next-value prediction(s) in raw units."""
        values = np.array(x, dtype=np.float64).reshape(-1)
        if values.size != self.streams:
            raise EdgernnError(f"step expects {self.streams} value(s), one per stream, got {values.size}")
        good = np.isfinite(values)
        if not good.all():
            if self.on_nan == "raise":
                raise EdgernnError(f"non-finite input {values[~good].tolist()} (on_nan='raise')")
            if self.on_nan == "hold":
                values = np.where(good, values, self._last)
                good = np.isfinite(values)
        predictions = self._step_window(values, good) if self._window else self._step_streaming(values, good)
        self.steps += 1
        return float(predictions[0]) if self.streams == 1 else predictions

    def _step_streaming(self, values: np.ndarray, good: np.ndarray) -> np.ndarray:
        last = self._last
        active = good & np.isfinite(last) if self._pre.difference else good
        z = self._pre.encode(values, last)  # [streams]
        feeds = self._feeds
        quantize(np.where(active, z, 0.0)[:, None], self._x_spec, out=feeds["x"])
        feeds.update(self._states)
        out = self._backend.run(feeds)
        y = dequantize(out["y"][:, 0], self._y_spec)
        predictions = np.where(active, self._pre.decode(y, values), np.nan)
        everyone = active.all()
        for in_spec, out_spec in self._pairs:
            new = requantize(out[out_spec.name], out_spec, in_spec)
            self._states[in_spec.name] = new if everyone else np.where(active[:, None], new, self._states[in_spec.name])
        self._last = np.where(good, values, last)
        return predictions

    def _step_window(self, values: np.ndarray, good: np.ndarray) -> np.ndarray:
        buffer = self._buffer
        buffer[good, :-1] = buffer[good, 1:]
        buffer[good, -1] = values[good]
        self._filled[good] += 1
        self._last = np.where(good, values, self._last)
        ready = good & (self._filled >= buffer.shape[1])
        if not ready.any():
            return np.full(self.streams, np.nan)
        z = np.nan_to_num(self._pre.transform_rows(buffer))  # [streams, window]
        quantize(z[:, :, None], self._x_spec, out=self._feeds["x"])
        out = self._backend.run(self._feeds)
        y = dequantize(out["y"][:, 0], self._y_spec)
        return np.where(ready, self._pre.decode(y, buffer[:, -1]), np.nan)

    def run(self, values) -> np.ndarray:
        """Step through ``values`` (``[n]``, or ``[n, streams]``); returns one prediction per step."""
        values = np.asarray(values, dtype=np.float64)
        out = np.empty((values.shape[0], self.streams))
        for i, value in enumerate(values):
            out[i] = self.step(value)
        return out[:, 0] if self.streams == 1 and values.ndim == 1 else out
