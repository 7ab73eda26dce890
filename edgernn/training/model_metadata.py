"""edgernn's metadata inside a ``.keras`` file: the ``edgernn.json`` zip member, written and read here only.

Training writes it (the preprocessing pipeline, the mode and window, the data it saw, held-out test values for
verify, training values for export's calibration, the metrics); export, verify and ``edgernn.predict`` read it.
A ``.keras`` file is untrusted input like a bundle (verify reads the one inside a bundle), so the member is read
with bounded size and strict bounded JSON (``safe_json``), and every field is checked into a ``ModelMetadata``.
A ``.keras`` file without the member is a user's own model (``read`` returns None: identity preprocessing).
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import asdict, dataclass, field

import numpy as np

from edgernn.runtime import safe_json
from edgernn.runtime.columns import Columns
from edgernn.errors import ModelError
from edgernn.runtime.manifest import MODES, Mode
from edgernn.runtime.preprocessing import Preprocessing

MEMBER = "edgernn.json"
FORMAT = 1
MAX_MEMBER_BYTES = 256 * 1024 * 1024
MAX_VALUES = 10_000_000  # per stored series (test_values, train_values)
MAX_WINDOW = 1 << 20
# what zipfile raises on a damaged archive or member (encrypted members: RuntimeError; unknown compression:
# NotImplementedError), besides its own BadZipFile
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, RuntimeError,
               NotImplementedError, KeyError, zlib.error)


@dataclass
class DataRecord:
    """The series a model was trained on: its name and size, the split, and stored stretches of it.

    A multivariate model's stretches are rows of ``features`` values, stored flat (row after row)."""

    name: str = ""
    points: int = 0
    filled: int = 0  # cells filled by linear interpolation
    split: dict[str, int] = field(default_factory=dict)  # train_end, val_end
    test_start: int = 0
    test_context: int = 0
    test_values: list[float] = field(default_factory=list)  # held-out test split + context: verify's default data
    train_values: list[float] = field(default_factory=list)  # the training split (capped): export's calibration
    val_context: int = 0
    val_values: list[float] = field(default_factory=list)  # validation split + context: export's intervals
    features: int = 1  # values per row in the stored stretches
    filled_columns: dict[str, int] = field(default_factory=dict)  # cells filled per column (multivariate)


@dataclass
class ModelMetadata:
    """What ``edgernn train`` records about a model; every field is checked on read."""

    mode: Mode = Mode.STREAMING
    window: int | None = None  # raw values per window (window models)
    cell: str | None = None
    units: int | None = None
    layers: int | None = None
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    difference_reason: str = ""
    seed: int | None = None
    data: DataRecord | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    columns: Columns = None  # the model's columns; a univariate file's are made from its ``preprocessing``

    def __post_init__(self):
        if self.columns is None:
            self.columns = Columns.from_preprocessing(self.preprocessing)

    def _stretch(self, key: str) -> np.ndarray | None:
        """A stored stretch: ``[n]`` values, or ``[n, features]`` rows for a multivariate model."""
        values = getattr(self.data, key) if self.data else None
        if not values:
            return None
        array = np.asarray(values, dtype=np.float64)
        return array.reshape(-1, self.data.features) if self.columns.named else array

    @property
    def test_values(self) -> np.ndarray | None:
        return self._stretch("test_values")

    @property
    def train_values(self) -> np.ndarray | None:
        return self._stretch("train_values")

    @property
    def val_values(self) -> np.ndarray | None:
        return self._stretch("val_values")

    @property
    def fitting_values(self) -> np.ndarray | None:
        """The training and validation splits joined: export's default calibration, so the integer input range
        covers what validation reached beyond training (a higher cycle, a hotter summer), never the test split.
        The training split alone where the two do not join (a training split capped when stored)."""
        train, validation = self.train_values, self.val_values
        if train is None or validation is None or self.data is None:
            return train
        context = self.data.val_context
        if train.shape[0] != self.data.split.get("train_end") or not 0 <= context <= validation.shape[0]:
            return train
        return np.concatenate([train, validation[context:]])

    def to_dict(self) -> dict:
        """The JSON object stored in the member (``format`` first); non-finite metrics become null."""
        data = asdict(self)
        if self.data is None:
            data.pop("data")
        if not self.columns.named:
            data.pop("columns")  # a univariate model's member stays what older edgernn wrote
            if self.data is not None:
                data["data"].pop("features")
                data["data"].pop("filled_columns")
        else:
            data["columns"] = self.columns.to_dict()
        data["metrics"] = {k: (v if safe_json.finite_number(v) else None) for k, v in self.metrics.items()}
        return {"format": FORMAT, **data}

    @classmethod
    def from_dict(cls, data, where: str = MEMBER) -> "ModelMetadata":
        """Check a parsed ``edgernn.json`` object; raises ModelError naming ``where`` and the field."""
        check = _Checker(where)
        if not isinstance(data, dict):
            raise ModelError(f"{where} must hold a JSON object")
        version = check.get(data, "format", int, None, required=True)
        if version != FORMAT:
            raise ModelError(f"{where} has format {version}; this edgernn reads format {FORMAT} (a model from "
                             "another edgernn version?)")
        mode = check.get(data, "mode", str, Mode.STREAMING.value)
        if mode not in MODES:
            raise ModelError(f"{where}: mode {mode!r} is not one of {', '.join(MODES)}")
        mode = Mode(mode)
        window = check.count(data, "window", None, low=1, high=MAX_WINDOW)
        if mode is Mode.WINDOW and window is None:
            raise ModelError(f"{where}: a window model needs a window")
        try:
            preprocessing = Preprocessing.from_dict(check.get(data, "preprocessing", dict, {}))
        except ValueError as exc:
            raise ModelError(f"{where}: {exc}") from None
        record = check.get(data, "data", dict, None)
        columns = check.get(data, "columns", dict, None)
        try:
            columns = None if columns is None else Columns.from_dict(columns)
        except ValueError as exc:
            raise ModelError(f"{where}: {exc}") from None
        record = None if record is None else _data_record(record, check)
        if record is not None:
            features = len(columns.inputs) if columns else 1
            if record.features != features:
                raise ModelError(f"{where}: data.features is {record.features}, but "
                                 f"{'its columns name' if columns else 'a model without columns takes'} {features}")
            for key in ("test_values", "train_values", "val_values"):
                if len(getattr(record, key)) % features:
                    raise ModelError(f"{where}: data.{key} holds {len(getattr(record, key))} values, not whole rows "
                                     f"of {features}")
        return cls(mode, window if mode is Mode.WINDOW else None, check.get(data, "cell", str, None),
                   check.count(data, "units", None, low=1), check.count(data, "layers", None, low=1), preprocessing,
                   check.get(data, "difference_reason", str, ""), check.count(data, "seed", None, low=-(1 << 63)),
                   record, _metrics(check.get(data, "metrics", dict, {}), check), columns)


def _data_record(data: dict, check: "_Checker") -> DataRecord:
    split = check.get(data, "split", dict, {}, "data.")
    return DataRecord(check.get(data, "name", str, "", "data."), check.count(data, "points", 0, "data."),
                      check.count(data, "filled", 0, "data."),
                      {key: check.count(split, key, 0, "data.split.") for key in split},
                      check.count(data, "test_start", 0, "data."), check.count(data, "test_context", 0, "data."),
                      check.values(data, "test_values"), check.values(data, "train_values"),
                      check.count(data, "val_context", 0, "data."), check.values(data, "val_values"),
                      check.count(data, "features", 1, "data.", low=1, high=1024),
                      {str(k): check.count(filled, k, 0, "data.filled_columns.")
                       for filled in [check.get(data, "filled_columns", dict, {}, "data.")] for k in filled})


def _metrics(data: dict, check: "_Checker") -> dict[str, float | None]:
    metrics = {}
    for key, value in data.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ModelError(f"{check.where}: metrics[{key!r}] must be a number or null, got "
                             f"{safe_json.JSON_TYPES.get(type(value), 'a value')}")
        metrics[key] = value
    return metrics


class _Checker:
    """Field checks whose errors name the member and the field in one line."""

    def __init__(self, where: str):
        self.where = where

    def get(self, data: dict, key: str, kind, default, prefix: str = "", required: bool = False):
        if key not in data or (data[key] is None and not required):
            if required:
                raise ModelError(f"{self.where} lacks {prefix}{key!r}")
            return default
        value = data[key]
        if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
            raise ModelError(f"{self.where}: {prefix}{key} must be {safe_json.JSON_TYPES[kind]}, got "
                             f"{safe_json.JSON_TYPES.get(type(value), 'a value')}")
        return value

    def count(self, data: dict, key: str, default, prefix: str = "", low: int = 0, high: int = 1 << 62):
        value = self.get(data, key, int, default, prefix)
        if value is not None and not low <= value <= high:
            raise ModelError(f"{self.where}: {prefix}{key} must be an integer from {low} to {high}, got {value}")
        return value

    def values(self, data: dict, key: str) -> list[float]:
        """A list of at most ``MAX_VALUES`` finite numbers (no strings, booleans, nesting or null)."""
        value = self.get(data, key, list, [], "data.")
        if len(value) > MAX_VALUES:
            raise ModelError(f"{self.where}: data.{key} holds {len(value)} values (at most {MAX_VALUES})")
        if not all(type(v) in (int, float) for v in value):
            bad = next(v for v in value if type(v) not in (int, float))
            raise ModelError(f"{self.where}: data.{key} must hold numbers only, found "
                             f"{safe_json.JSON_TYPES.get(type(bad), 'a value')} {str(bad)[:40]!r}")
        # json parses only finite floats here (safe_json), but a caller's dict may hold anything
        if not all(safe_json.finite_number(v) for v in value):
            raise ModelError(f"{self.where}: data.{key} holds non-finite values")
        return [float(v) for v in value]


def read(content: bytes, name: str) -> ModelMetadata | None:
    """The metadata in a ``.keras`` file's bytes, or None when it has none (not trained by edgernn).

    Raises:
        ModelError: ``name`` is not a readable zip, or its member is too large, not strict JSON, nested too deep,
            holds a number too long, or any field is of the wrong type or value; one line each.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            try:
                info = archive.getinfo(MEMBER)
            except KeyError:
                return None
            if info.file_size > MAX_MEMBER_BYTES:
                raise ModelError(f"{name}: {MEMBER} is larger than {MAX_MEMBER_BYTES} bytes")
            text = archive.read(info)
    except ModelError:
        raise
    except _ZIP_ERRORS as exc:
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{name} is not a readable .keras model file ({reason})") from None
    try:
        data = safe_json.loads(text)
    except ValueError as exc:
        raise ModelError(f"{name}: {MEMBER} is unreadable: {exc}") from None
    return ModelMetadata.from_dict(data, f"{name}: {MEMBER}")


def write(path, metadata: ModelMetadata) -> None:
    """Add the member to the ``.keras`` zip at ``path`` (strict JSON: NaN and infinities are never written)."""
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(MEMBER, safe_json.dumps(metadata.to_dict()))


def check_model(metadata: ModelMetadata | None, model, name: str) -> None:
    """The metadata must describe ``model``: a window model's window (less the differencing lag) is its input
    length, a streaming model takes sequences of any length; a multivariate model takes one feature per input
    column and gives one output per target and step."""
    if metadata is None:
        return
    length = model.inputs[0].shape[1] if len(model.inputs[0].shape) == 3 else None
    lag = metadata.columns.lag
    expected = None if metadata.window is None else metadata.window - lag
    if length != expected:
        said = f"a window of {metadata.window}" if metadata.window else "a streaming model"
        takes = f"{length} values per input" if length else "sequences of any length"
        raise ModelError(f"{name}: {MEMBER} describes {said}, but the model takes {takes}")
    features, outputs = model.inputs[0].shape[-1], model.outputs[0].shape[-1]
    columns = metadata.columns
    if (features, outputs) != (len(columns.inputs), len(columns.outputs)):
        raise ModelError(f"{name}: {MEMBER} describes {len(columns.inputs)} input column(s) and "
                         f"{len(columns.outputs)} output(s), but the model takes {features} feature(s) and "
                         f"gives {outputs} output(s)")
