"""Build the classic model family and save/load it with edgernn's metadata inside the ``.keras`` file.

The model works in preprocessed units; the pipeline that maps raw values in and out is stored as a JSON member
(``edgernn.json``) of the ``.keras`` zip, which Keras ignores on load (``safe_mode=True`` still applies) and
``edgernn export`` picks up. A ``.keras`` file without it is a user's own model: identity preprocessing.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

from edgernn.errors import ModelError
from edgernn.runtime.atomic import remove_stale, temp_file_beside
from edgernn.runtime.preprocessing import Preprocessing

CELLS = ("simple_rnn", "gru", "lstm")
METADATA_MEMBER = "edgernn.json"
METADATA_FORMAT = 1


def recurrent_layer_class(cell: str):
    """The Keras layer class for a cell name from ``CELLS``."""
    from edgernn.tf_import import import_keras

    keras = import_keras()

    classes = {"simple_rnn": keras.layers.SimpleRNN, "gru": keras.layers.GRU, "lstm": keras.layers.LSTM}
    if cell not in classes:
        raise ModelError(f"unknown cell {cell!r}; expected one of {', '.join(CELLS)}")
    return classes[cell]


def build_model(cell: str, units: int, layers: int, window: int | None):
    """Stacked recurrent layers and a ``Dense(1)`` head, compiled later by the trainer.

    ``window=None`` builds the streaming model (``[batch, time, 1]`` in, one prediction per step out);
    an integer builds the classic window model (``[batch, window, 1]`` in, one prediction out).
    """
    from edgernn.tf_import import import_keras

    keras = import_keras()

    layer_class = recurrent_layer_class(cell)
    inputs = keras.Input((window, 1), name="x")
    z = inputs
    for index in range(layers):
        last = index == layers - 1
        return_sequences = window is None or not last
        z = layer_class(units, return_sequences=return_sequences, name=f"{cell}_{index}")(z)
    outputs = keras.layers.Dense(1, name="head")(z)
    return keras.Model(inputs, outputs, name=f"edgernn_{cell}")


def check_model_target(path: str | os.PathLike, force: bool) -> Path:
    """Where a trained model may be saved: a ``.keras`` path in a writable directory, new unless ``force``.

    Checked before training, so a long run never ends in an error about its output path.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ModelError(f"model path must end in .keras, got {path.name}")
    if path.is_dir():
        raise ModelError(f"{path} is a directory; give a .keras file name")
    if path.exists() and not force:
        raise ModelError(f"{path} already exists; use --force to replace it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ModelError(f"output directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ModelError(f"cannot write to {parent}: permission denied")
    return path


def save_model(model, path: str | os.PathLike, metadata: dict) -> Path:
    """Save atomically (temp file in the same directory, fsync, rename) with ``metadata`` inside the zip."""
    path = check_model_target(path, force=True)
    remove_stale(path)
    tmp = str(temp_file_beside(path, suffix=".keras"))  # Keras insists on the .keras suffix
    try:
        model.save(tmp)
        payload = {"format": METADATA_FORMAT, **metadata}
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(METADATA_MEMBER, json.dumps(payload))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_metadata(path: str | os.PathLike) -> dict | None:
    """edgernn's metadata from a ``.keras`` file, or None when the model was not trained by edgernn."""
    try:
        with zipfile.ZipFile(path) as archive:
            if METADATA_MEMBER not in archive.namelist():
                return None
            return json.loads(archive.read(METADATA_MEMBER))
    except (zipfile.BadZipFile, json.JSONDecodeError, OSError) as exc:
        raise ModelError(f"{Path(path).name} is not a readable .keras model file ({exc})") from None


def model_preprocessing(metadata: dict | None, path: str | os.PathLike | None = None) -> Preprocessing:
    """The preprocessing stored with a model (identity for a model edgernn did not train).

    Raises:
        ModelError: the stored pipeline is malformed (e.g. a divisor of Infinity), naming the model file.
    """
    try:
        if metadata is not None and not isinstance(metadata, dict):
            raise ValueError(f"its metadata is a {type(metadata).__name__}, not an object")
        return Preprocessing.from_dict((metadata or {}).get("preprocessing", {}))
    except ValueError as exc:
        where = Path(path).name if path is not None else "the model"
        raise ModelError(f"{where} carries an unusable preprocessing pipeline ({exc}); train it again") from None


def load_model(path: str | os.PathLike):
    """Load a ``.keras`` model with ``safe_mode=True``; returns ``(model, metadata_or_None)``."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    metadata = read_metadata(path)
    from edgernn.tf_import import import_keras

    keras = import_keras()

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a bad file; all mean "not a model we can load"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load {path.name} as a Keras model: {first[:200]}") from None
    return model, metadata
