"""What verify replays, and the float model's answers on it: the held-out test split (or ``--data``) through the
float Keras model on a host, or the inputs and outputs stored in the bundle at export on a device."""

from __future__ import annotations

import math

import numpy as np

from edgernn.errors import DataError, EdgernnError
from edgernn.reference import float_reference, reference_model, repeat_to


def _series(metadata, data, column, steps: int) -> tuple[np.ndarray, str]:
    """``steps`` values to verify on: ``data`` (a series name or file), else the reference model's held-out split."""
    from edgernn.data import load_series

    if data is None:
        values = metadata.test_values if metadata else None
        if values is None:
            raise DataError("this bundle records no held-out test data (not trained by edgernn train): give --data")
        name = "held-out test split"
    else:
        series = load_series(str(data), column=column)
        values, name = series.values, series.name
    if values.size < 3:
        raise DataError(f"{name} has {values.size} values; verify needs at least 3")
    repeats = math.ceil(steps / values.size)
    if repeats > 1:
        name += f", repeated x{repeats} forwards and backwards"
    return repeat_to(values, steps), name


def replay(bundle, data, column, steps: int, stored: bool) -> tuple[np.ndarray, np.ndarray, str]:
    """(inputs, the float model's prediction after each, a description of where they came from).

    ``stored``: the bundle's stored reference (no TensorFlow needed; ``data`` must be None); otherwise the float
    Keras model run on ``data`` or on the held-out split recorded at training.
    """
    if stored:
        if data is not None:
            raise EdgernnError("--data needs TensorFlow to run the float model; without it verify uses the "
                               "bundle's stored reference (drop --data)")
        values, outputs = bundle.reference_data()
        source = bundle.manifest.files["reference_data"].source or "?"
        return values[:steps], outputs[:steps], f"stored reference ({values.size} steps recorded at export from {source})"
    model, metadata = reference_model(bundle)
    values, name = _series(metadata, data, column, steps)
    return values, float_reference(model, metadata, values), name
