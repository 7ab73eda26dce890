"""The bundle's manifest: the one contract between ``edgernn export`` and the device runtime.

A bundle is a directory holding ``manifest.json``, one model file per variant, the float reference model, the
float weights for the numpy backend and the calibration sample. This module owns the format (dataclasses,
read/validate/write), the variant names, and the safe resolution of every path the manifest names. It imports
only the standard library, so the device can read a bundle with nothing else installed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

from edgernn.runtime.errors import BundleError

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


class Variant(str, Enum):
    """Exported variants; the values are the names used by the CLI, the manifest, verify and bench."""

    TFLITE_FLOAT32 = "tflite-float32"
    TFLITE_FLOAT16 = "tflite-float16"
    TFLITE_DYNAMIC = "tflite-dynamic"
    TFLITE_INT8 = "tflite-int8"
    TFLITE_INT16X8 = "tflite-int16x8"
    ONNX_FLOAT32 = "onnx-float32"
    ONNX_INT8 = "onnx-int8"

    @property
    def format(self) -> str:
        return self.value.split("-", 1)[0]

    @property
    def is_float32(self) -> bool:
        return self in (Variant.TFLITE_FLOAT32, Variant.ONNX_FLOAT32)

    @property
    def file_name(self) -> str:
        return f"{self.value}.{self.format}"


ALL_VARIANTS = tuple(v.value for v in Variant)
FORMATS = ("tflite", "onnx")
MODES = ("streaming", "window")
CELLS = ("simple_rnn", "gru", "lstm")
DTYPES = ("float32", "float16", "int8", "int16", "uint8")


def parse_variants(text: str | list | tuple | None) -> list[str]:
    """``"all"``/None, or a comma-separated list (or sequence) of variant names, validated and de-duplicated."""
    if text is None or text == "all":
        return list(ALL_VARIANTS)
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else list(text)
    unknown = [n for n in names if n not in ALL_VARIANTS]
    if unknown or not names:
        raise BundleError(f"unknown variant {', '.join(unknown) or '(none)'}; choose from {', '.join(ALL_VARIANTS)}")
    return list(dict.fromkeys(names))


@dataclass
class TensorSpec:
    """One named model input or output; ``scale``/``zero_point`` only for integer tensors."""

    name: str
    shape: list[int]  # batch first, batch 1 as exported
    dtype: str
    scale: float | None = None
    zero_point: int | None = None


@dataclass
class LayerSpec:
    """One recurrent layer, with what the numpy backend needs to reproduce Keras' cell equations."""

    cell: str
    units: int
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"
    reset_after: bool = True  # GRU only
    use_bias: bool = True

    @property
    def state_names(self) -> tuple[str, ...]:
        return ("h", "c") if self.cell == "lstm" else ("h",)


@dataclass
class ModelInfo:
    """What the exported model is: its layers, mode and window."""

    layers: list[LayerSpec]
    mode: str  # streaming | window
    window: int | None = None  # model input length for window models (after any differencing)
    raw_window: int | None = None  # raw values the window needs (window + 1 when differencing)
    input_features: int = 1
    output_features: int = 1

    def state_inputs(self) -> list[tuple[str, int]]:
        """``[(name, units)]`` of the step model's state inputs, in layer order: h0, c0, h1, ..."""
        if self.mode != "streaming":
            return []
        return [(f"{kind}{i}", layer.units) for i, layer in enumerate(self.layers) for kind in layer.state_names]


@dataclass
class VariantEntry:
    """One exported variant: its file, hash, tensors and state pairing."""

    name: str
    file: str
    format: str
    sha256: str
    size_bytes: int
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    state_pairs: list[list[str]]  # [[state input name, state output name], ...]
    converter: dict = field(default_factory=dict)
    notes: str = ""
    input_limits: list[float] | None = None  # integer variants: the model-input range x can represent

    def input(self, name: str) -> TensorSpec:
        return next(t for t in self.inputs if t.name == name)

    def output(self, name: str) -> TensorSpec:
        return next(t for t in self.outputs if t.name == name)


@dataclass
class Manifest:
    """The whole ``manifest.json``."""

    model: ModelInfo
    preprocessing: dict
    variants: dict[str, VariantEntry]
    files: dict[str, dict] = field(default_factory=dict)  # other files: role -> {"file", "sha256"}
    calibration: dict = field(default_factory=dict)
    input_range: list[float] | None = None  # calibrated model-input range (after preprocessing)
    schema_version: int = SCHEMA_VERSION
    edgernn_version: str = ""
    created: str = ""
    model_sha256: str = ""  # hash of the reference model: identifies "the same model" for state files

    def to_dict(self) -> dict:
        return asdict(self)


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_inside(bundle: str | os.PathLike, relative: str) -> Path:
    """The path of a bundle member; refuses absolute paths, ``..`` and symlinks that lead out of the bundle."""
    if not isinstance(relative, str) or not relative or "\x00" in relative:
        raise BundleError(f"bad file name in manifest: {relative!r}")
    if os.path.isabs(relative) or relative.startswith(("/", "\\")) or ".." in Path(relative).parts:
        raise BundleError(f"manifest path {relative!r} points outside the bundle")
    root = Path(bundle).resolve()
    target = (root / relative).resolve()
    if target != root and root not in target.parents:
        raise BundleError(f"manifest path {relative!r} points outside the bundle (via a symlink)")
    return target


def write_manifest(manifest: Manifest, bundle: str | os.PathLike) -> Path:
    path = Path(bundle) / MANIFEST_NAME
    path.write_text(json.dumps(manifest.to_dict(), indent=2) + "\n")
    return path


def read_manifest(bundle: str | os.PathLike) -> Manifest:
    """Read and validate ``manifest.json``; every problem is a one-line ``BundleError``."""
    bundle = Path(bundle)
    if not bundle.exists():
        raise BundleError(f"bundle not found: {bundle}")
    if not bundle.is_dir():
        raise BundleError(f"not a bundle directory: {bundle}")
    path = bundle / MANIFEST_NAME
    if not path.is_file():
        raise BundleError(f"{bundle} has no {MANIFEST_NAME}: not an edgernn bundle")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise BundleError(f"{MANIFEST_NAME} is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{MANIFEST_NAME} is not valid JSON (truncated or damaged?): {exc}") from None
    try:
        return _parse(data)
    except BundleError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BundleError(f"{MANIFEST_NAME} is malformed: {type(exc).__name__}: {exc}") from None


def _need(data: dict, key: str, kind, where: str):
    if not isinstance(data, dict):
        raise BundleError(f"{MANIFEST_NAME}: {where} must be an object")
    if key not in data:
        raise BundleError(f"{MANIFEST_NAME}: {where} lacks {key!r}")
    value = data[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise BundleError(f"{MANIFEST_NAME}: {where}.{key} must be {kinds[0].__name__}, got {value!r}")
    if not isinstance(value, kinds):
        raise BundleError(f"{MANIFEST_NAME}: {where}.{key} must be {kinds[0].__name__}, got {type(value).__name__}")
    return value


def _positive(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 1 << 20:
        raise BundleError(f"{MANIFEST_NAME}: {where} must be a positive integer (at most 2**20), got {value!r}")
    return value


def _tensor(data: dict, where: str) -> TensorSpec:
    name = _need(data, "name", str, where)
    shape = _need(data, "shape", list, where)
    if not shape or len(shape) > 4:
        raise BundleError(f"{MANIFEST_NAME}: {where}.shape must have 1 to 4 dimensions, got {shape!r}")
    shape = [_positive(d, f"{where}.shape") for d in shape]
    dtype = _need(data, "dtype", str, where)
    if dtype not in DTYPES:
        raise BundleError(f"{MANIFEST_NAME}: {where}.dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    scale, zero_point = data.get("scale"), data.get("zero_point")
    if dtype.startswith(("int", "uint")):
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < 1e6:
            raise BundleError(f"{MANIFEST_NAME}: {where} is {dtype} but has no valid scale ({scale!r})")
        if isinstance(zero_point, bool) or not isinstance(zero_point, int) or abs(zero_point) > 65535:
            raise BundleError(f"{MANIFEST_NAME}: {where} is {dtype} but has no valid zero_point ({zero_point!r})")
    return TensorSpec(name, shape, dtype, scale, zero_point)


def _parse(data) -> Manifest:
    if not isinstance(data, dict):
        raise BundleError(f"{MANIFEST_NAME} must hold a JSON object")
    version = _need(data, "schema_version", int, "manifest")
    if version != SCHEMA_VERSION:
        raise BundleError(f"{MANIFEST_NAME} has schema version {version}; this edgernn reads version {SCHEMA_VERSION}")
    model_data = _need(data, "model", dict, "manifest")
    layers = []
    for i, layer in enumerate(_need(model_data, "layers", list, "model")):
        cell = _need(layer, "cell", str, f"model.layers[{i}]")
        if cell not in CELLS:
            raise BundleError(f"{MANIFEST_NAME}: model.layers[{i}].cell {cell!r} is not one of {', '.join(CELLS)}")
        layers.append(LayerSpec(
            cell, _positive(_need(layer, "units", int, f"model.layers[{i}]"), f"model.layers[{i}].units"),
            _need(layer, "activation", str, f"model.layers[{i}]"),
            _need(layer, "recurrent_activation", str, f"model.layers[{i}]"),
            bool(layer.get("reset_after", True)), bool(layer.get("use_bias", True))))
    if not layers:
        raise BundleError(f"{MANIFEST_NAME}: model.layers is empty")
    mode = _need(model_data, "mode", str, "model")
    if mode not in MODES:
        raise BundleError(f"{MANIFEST_NAME}: model.mode {mode!r} is not one of {', '.join(MODES)}")
    window = model_data.get("window")
    raw_window = model_data.get("raw_window")
    if mode == "window":
        window = _positive(window, "model.window")
        raw_window = _positive(raw_window, "model.raw_window")
    else:
        window = raw_window = None  # a streaming model has no window, whatever the file says
    model = ModelInfo(layers, mode, window, raw_window)
    variants = {}
    for name, entry in _need(data, "variants", dict, "manifest").items():
        where = f"variants[{name!r}]"
        if name not in ALL_VARIANTS:
            raise BundleError(f"{MANIFEST_NAME}: unknown variant {name!r}; known: {', '.join(ALL_VARIANTS)}")
        fmt = _need(entry, "format", str, where)
        if fmt != Variant(name).format:
            raise BundleError(f"{MANIFEST_NAME}: {where}.format is {fmt!r}, expected {Variant(name).format!r}")
        sha = _need(entry, "sha256", str, where)
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise BundleError(f"{MANIFEST_NAME}: {where}.sha256 is not a sha256 hex digest")
        inputs = [_tensor(t, f"{where}.inputs[{i}]") for i, t in enumerate(_need(entry, "inputs", list, where))]
        outputs = [_tensor(t, f"{where}.outputs[{i}]") for i, t in enumerate(_need(entry, "outputs", list, where))]
        pairs = _need(entry, "state_pairs", list, where)
        variant = VariantEntry(name, _need(entry, "file", str, where), fmt, sha,
                               _need(entry, "size_bytes", int, where), inputs, outputs,
                               [list(p) for p in pairs], entry.get("converter", {}), str(entry.get("notes", "")),
                               _range(entry.get("input_limits"), f"{where}.input_limits"))
        _check_tensors(variant, model)
        variants[name] = variant
    preprocessing = data.get("preprocessing", {})
    if not isinstance(preprocessing, dict):
        raise BundleError(f"{MANIFEST_NAME}: preprocessing must be an object")
    input_range = _range(data.get("input_range"), "input_range")
    return Manifest(model, preprocessing, variants, data.get("files", {}), data.get("calibration", {}),
                    input_range, version, str(data.get("edgernn_version", "")), str(data.get("created", "")),
                    str(data.get("model_sha256", "")))


def _range(value, where: str) -> list[float] | None:
    """An optional ``[low, high]`` pair of finite numbers, low <= high."""
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
            or value[0] > value[1]):
        raise BundleError(f"{MANIFEST_NAME}: {where} must be [low, high] finite numbers, got {value!r}")
    return [float(value[0]), float(value[1])]


def _check_tensors(entry: VariantEntry, model: ModelInfo) -> None:
    """The tensors a variant declares must be the ones its model info implies, with consistent shapes."""
    where = f"{MANIFEST_NAME}: variants[{entry.name!r}]"
    expected_in = {"x": [1, model.window, 1] if model.mode == "window" else [1, 1]}
    expected_in.update({name: [1, units] for name, units in model.state_inputs()})
    expected_out = {"y": [1, 1]}
    expected_out.update({f"{name}_out": [1, units] for name, units in model.state_inputs()})
    for kind, tensors, expected in (("inputs", entry.inputs, expected_in), ("outputs", entry.outputs, expected_out)):
        got = {t.name: t.shape for t in tensors}
        if got != expected:
            raise BundleError(f"{where}.{kind} are {got}, but the model implies {expected}")
    pairs = {tuple(p) for p in entry.state_pairs if isinstance(p, list) and len(p) == 2}
    wanted = {(name, f"{name}_out") for name, _ in model.state_inputs()}
    if pairs != wanted or len(entry.state_pairs) != len(wanted):
        raise BundleError(f"{where}.state_pairs must pair each state input with its output: {sorted(wanted)}")
