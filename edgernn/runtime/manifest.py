"""The bundle's manifest: the one contract between ``edgernn export`` and the device runtime.

A bundle is a directory holding ``manifest.json``, one model file per variant and the files of ``FILE_ROLES``
(the float reference model, the float weights for the numpy backend, the calibration sample, the stored
reference). This module owns the format: the variant names and file roles with their file names, the tensor
and state names and the dataclasses; ``edgernn.runtime.manifest_reader`` holds the one parse that validates
everything (``read_manifest``). Reading the files it names goes through ``edgernn.runtime.bundle.Bundle.read``
only. It imports the standard library and the runtime's numpy-only modules, so a device reads a bundle with
nothing else installed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum

from edgernn.runtime.cell_table import CELLS
from edgernn.runtime.columns import Columns
from edgernn.runtime.preprocessing import Preprocessing

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024

# The manifest's "files": role -> the file export writes for it. Readers name the role, never the file.
FILE_ROLES = {
    "reference": "model.keras",  # the float Keras model: verify's reference on a host, the int8 diagnosis
    "weights": "weights.npz",  # float weights: the numpy backend
    "calibration": "calibration.npz",  # the calibration model inputs: the int8 diagnosis
    "reference_data": "reference.npz",  # held-out inputs and the float model's outputs: verify on a device
}
SIGNATURE = "serving_default"  # the TFLite signature (and SavedModel endpoint) whose tensor names the manifest uses
INTERVAL_LEVELS = (0.5, 0.8, 0.9, 0.95, 0.98, 0.99)  # the levels export calibrates intervals at
SCALE_KEYS = ("half_life", "start", "clip", "floor")  # a scaled interval's recurrence (``runtime.intervals``)
MAX_REASON_CHARS = 1000  # an interpreter's recorded reason: one line, bounded
MAX_ARENA_BYTES = 1 << 30  # a TFLM tensor arena larger than 1 GiB is no microcontroller's


def state_output(name: str) -> str:
    """The step model's output carrying state input ``name`` to the next step: ``h0`` -> ``h0_out``."""
    return f"{name}_out"


class Mode(str, Enum):
    """How the exported model runs: one step per sample with the state carried, or a fixed window of samples."""

    STREAMING = "streaming"
    WINDOW = "window"


MODES = tuple(mode.value for mode in Mode)
CELL_NAMES = tuple(CELLS)
DTYPES = ("float32", "float16", "int8", "int16", "uint8")


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
        return CELLS[self.cell].state_names


@dataclass
class ModelInfo:
    """What the exported model is: its layers, mode and window."""

    layers: list[LayerSpec]
    mode: Mode
    window: int | None = None  # model input length for window models (after any differencing)
    raw_window: int | None = None  # raw values the window needs (window + 1 when differencing)

    def __post_init__(self):
        self.mode = Mode(self.mode)

    def state_inputs(self) -> list[tuple[str, int]]:
        """``[(name, units)]`` of the step model's state inputs, in layer order: h0, c0, h1, ..."""
        return [(name, layer.units) for name, layer, _ in self.state_layers()]

    def state_layers(self) -> list[tuple[str, LayerSpec, str]]:
        """``[(state input name, its layer, its kind "h"/"c")]`` in layer order; none for a window model."""
        if self.mode is not Mode.STREAMING:
            return []
        return [(f"{kind}{i}", layer, kind) for i, layer in enumerate(self.layers) for kind in layer.state_names]

    def state_pairs(self) -> list[list[str]]:
        """``[[state input, state output], ...]`` in layer order: what a variant's ``state_pairs`` must be."""
        return [[name, state_output(name)] for name, _ in self.state_inputs()]


@dataclass
class Intervals:
    """One variant's split-conformal prediction intervals, set at export on held-out data: at each level, the
    half-width (raw units) that the variant's absolute next-value residuals stayed within, with the finite-sample
    correction; None where the held-out data is too short for that level."""

    levels: list[float]
    half_widths: list[float | None]
    residuals: int  # how many held-out residuals set them
    source: str  # which data, and how the state was warmed
    # {"half_life": steps, "start": the held-out mean |residual|, "clip", "floor"}: the half-widths are scaled on the
    # device by the recent residual size over ``start`` (``runtime.intervals``); None (older bundles): fixed
    scale: dict | None = None

    @property
    def scaling(self) -> tuple[float, float, float, float] | None:
        """(half-life, start, clip, floor) for a ``Monitor`` and ``scale_ratios``, or None for fixed half-widths."""
        return tuple(self.scale[k] for k in SCALE_KEYS) if self.scale else None

    def half_width(self, level: float) -> float | None:
        """The half-width at ``level`` (one of ``levels``); KeyError-free: ValueError names the levels there are."""
        for known, width in zip(self.levels, self.half_widths):
            if abs(known - level) < 1e-9:
                return width
        raise ValueError(f"no interval calibrated at level {level:g}; this bundle has "
                         f"{', '.join(f'{v:g}' for v in self.levels)}")


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
    converter: dict = field(default_factory=dict)  # tool versions and settings: str or int values
    notes: str = ""
    input_limits: list[float] | None = None  # integer variants: the model-input range x can represent
    # interpreter -> {"runs": True/False/None (not checked), "reason": str[, "arena_bytes": TFLM's arena]}
    interpreters: dict[str, dict] = field(default_factory=dict)
    intervals: Intervals | None = None  # None: exported before intervals existed, or no held-out data

    def input(self, name: str) -> TensorSpec:
        return next(t for t in self.inputs if t.name == name)

    def output(self, name: str) -> TensorSpec:
        return next(t for t in self.outputs if t.name == name)

    def refused_by(self, backend: str) -> str | None:
        """Why ``backend`` cannot run this variant, as recorded at export; None when it can or was not checked."""
        record = self.interpreters.get(backend)
        return record.get("reason", "recorded at export") if record and record.get("runs") is False else None


@dataclass
class FileEntry:
    """One file of ``FILE_ROLES``; the stored reference also records its length and where its inputs came from."""

    file: str
    sha256: str
    steps: int | None = None
    source: str | None = None
    test: list[int] | None = None  # [start, stop): the stored predictions whose targets are the held-out test split

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class CalibrationInfo:
    """Where the calibration inputs came from, how many model inputs, and how many samples they gave."""

    source: str = ""
    steps: int = 0
    samples: int = 0


@dataclass
class Manifest:
    """The whole ``manifest.json``."""

    model: ModelInfo
    preprocessing: Preprocessing
    variants: dict[str, VariantEntry]
    files: dict[str, FileEntry] = field(default_factory=dict)  # role (a FILE_ROLES key) -> its file
    calibration: CalibrationInfo = field(default_factory=CalibrationInfo)
    input_range: list[float] | None = None  # calibrated model-input range (after preprocessing)
    schema_version: int = SCHEMA_VERSION
    edgernn_version: str = ""
    created: str = ""
    model_sha256: str = ""  # hash of the reference model: identifies "the same model" for state files
    columns: Columns = None  # features, targets, steps; a univariate file's made from its ``preprocessing``

    def __post_init__(self):
        if self.columns is None:
            self.columns = Columns.from_preprocessing(self.preprocessing)

    @property
    def features(self) -> int:
        return len(self.columns.inputs)

    @property
    def takes_rows(self) -> bool:
        """Rows in or several values out (F > 1 or K*H > 1); a one-column model, seasonal or not, takes and gives
        plain numbers everywhere (stream, bridge, intervals)."""
        return not self.columns.univariate

    @property
    def outputs(self) -> int:
        return len(self.columns.outputs)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["files"] = {role: entry.to_dict() for role, entry in self.files.items()}
        for entry in data["variants"].values():
            if entry.get("intervals") and entry["intervals"]["scale"] is None:
                del entry["intervals"]["scale"]  # fixed intervals are written as older edgernn wrote them
        if not self.columns.named:
            data.pop("columns")  # a univariate manifest stays byte-for-byte what older edgernn wrote
        else:
            data["columns"] = self.columns.to_dict()
        return data
