"""Build the classic model family, and save/load it with edgernn's metadata inside the ``.keras`` file.

The model works in preprocessed units; the pipeline that maps raw values in and out is stored as a JSON member
of the ``.keras`` zip (``edgernn.training.model_metadata``), which Keras ignores on load and ``edgernn export`` picks up.
Every load reads the file's bytes once: the metadata is parsed from them, and Keras loads those same bytes
(``safe_mode=True``) from a private temporary copy, so a bundle's hash-checked reference model is what runs.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from edgernn.training import model_metadata
from edgernn.training.model_metadata import ModelMetadata
from edgernn.runtime.atomic import staged_file
from edgernn.runtime.cell_table import CELLS
from edgernn.errors import ModelError

def recurrent_layer_class(cell: str):
    """The Keras layer class for a cell name from the cell table (``edgernn.runtime.cell_table.CELLS``)."""
    from edgernn.training.tf_import import import_keras

    if cell not in CELLS:
        raise ModelError(f"unknown cell {cell!r}; expected one of {', '.join(CELLS)}")
    return getattr(import_keras().layers, CELLS[cell].keras_class)


def build_model(cell: str, units: int, layers: int, window: int | None, features: int = 1, outputs: int = 1):
    """Stacked recurrent layers and a linear ``Dense(outputs)`` head, compiled later by the trainer.

    ``window=None`` builds the streaming model (``[batch, time, features]`` in, ``outputs`` predictions per step
    out); an integer builds the classic window model (``[batch, window, features]`` in, ``outputs`` out). The
    defaults are the univariate model: one value in, the next value out.
    """
    from edgernn.training.tf_import import import_keras

    keras = import_keras()

    layer_class = recurrent_layer_class(cell)
    inputs = keras.Input((window, features), name="x")
    z = inputs
    for index in range(layers):
        last = index == layers - 1
        return_sequences = window is None or not last
        z = layer_class(units, return_sequences=return_sequences, name=f"{cell}_{index}")(z)
    head = keras.layers.Dense(outputs, name="head")(z)
    return keras.Model(inputs, head, name=f"edgernn_{cell}")


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


def save_model(model, path: str | os.PathLike, metadata: ModelMetadata) -> Path:
    """Save atomically (``edgernn.runtime.atomic.staged_file``) with ``metadata`` inside the zip."""
    path = check_model_target(path, force=True)
    with staged_file(path, suffix=".keras") as tmp:  # Keras insists on the .keras suffix
        model.save(str(tmp))
        model_metadata.write(tmp, metadata)
    return path


def load_model(path: str | os.PathLike):
    """Load a ``.keras`` model with ``safe_mode=True``; returns ``(model, ModelMetadata or None)``."""
    return load_model_bytes(read_model_file(path), Path(path).name)


def read_model_file(path: str | os.PathLike) -> bytes:
    """A ``.keras`` file's bytes; raises ModelError (one line) when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {path.name}: {exc.strerror or exc}") from None


def load_model_bytes(content: bytes, name: str):
    """``load_model`` for a ``.keras`` file's bytes (e.g. a bundle's, hash-checked); ``name`` is for messages.

    Raises:
        ModelError: not a readable model, bad metadata, or metadata that does not describe the model.
    """
    metadata = model_metadata.read(content, name)
    from edgernn.training.tf_import import import_keras

    keras = import_keras()
    with tempfile.TemporaryDirectory(prefix="edgernn-model-") as private:  # mode 0700: only this user
        copy = Path(private) / "model.keras"
        copy.write_bytes(content)
        try:
            model = keras.saving.load_model(copy, compile=False, safe_mode=True)
        except Exception as exc:  # Keras raises many types for a bad file; all mean "not a model we can load"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot load {name} as a Keras model: {first[:200]}") from None
    model_metadata.check_model(metadata, model, name)
    return model, metadata
