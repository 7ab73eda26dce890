"""What verify replays, and the float model's answers on it: the held-out test split (or ``--data``) through the
float Keras model on a host, or the inputs and outputs stored in the bundle at export on a device."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgernn.training.reference import float_reference, reference_model, replay
from edgernn.errors import DataError, EdgernnError


@dataclass
class Replay:
    """What verify runs every variant over, and the float model's answers on it."""

    values: np.ndarray  # the inputs, raw units
    reference: np.ndarray  # the float model's prediction after each
    name: str  # where they came from and how they were repeated
    test: slice | None = None  # the first pass's predictions whose targets are the held-out test split
    train_test_rmse: float | None = None  # what train reported on that split (its state warmed on the whole series)
    training_metrics: dict | None = None  # train's metrics (peers included: edgernn.training.peers), from the model's metadata


def _series(metadata, data, picked: "Picked", steps: int, columns) -> tuple[np.ndarray, str, slice | None]:
    """``steps`` values to verify on: ``data`` (a series name or file), else the reference model's held-out split;
    with the slice of first-pass predictions that target the held-out test split (None for ``data``). Rows
    ``[steps, F]`` of the model's own columns, or of ``picked.columns`` (the file's names for them, in the model's
    order); a plain univariate model's (``Columns.named`` False) as the series ``[steps]`` its files hold."""
    from edgernn.data.series import load_series

    test = None
    column, time_column = picked.column, picked.time_column
    if data is None and (column or picked.columns or time_column):
        raise EdgernnError("--column, --columns and --time-column read a --data file; give --data too")
    if picked.columns == "all" or (picked.columns and len(set(picked.columns)) != len(picked.columns)):
        raise EdgernnError("--columns names the --data file's columns feeding the model's inputs, in order, each once")
    if picked.columns and columns.univariate:
        raise EdgernnError("--columns is for a model reading rows; this one reads one value (use --column)")
    if data is None:
        values = metadata.test_values if metadata else None
        if values is None:
            raise DataError("this bundle records no held-out test data (not trained by edgernn train): give --data")
        name = "held-out test split"
        context = metadata.data.test_context  # values before the split: they warm the state up
        end = min(values.shape[0], steps) - 1  # prediction k targets value k + 1
        test = slice(max(0, context - 1), end) if end > context else None
    elif columns.univariate:  # one column: read as a series is
        series = load_series(str(data), column=column, time_column=time_column)
        values, name = (series.values[:, None] if columns.named else series.values), series.name
    else:
        if column is not None:
            raise EdgernnError("--column picks one column; this model reads the columns "
                               f"{','.join(columns.features)} (drop --column)")
        from edgernn.data.series import load_table

        names = picked.columns or list(columns.features)
        if len(names) != len(columns.features):
            raise EdgernnError(f"--columns names {len(names)} column(s); the model reads {len(columns.features)} "
                               f"({','.join(columns.features)}), in that order")
        table = load_table(str(data), columns=names, time_column=time_column)
        values, name = table.values, getattr(table, "name", str(data))
    if values.shape[0] < 3:
        raise DataError(f"{name} has {values.shape[0]} values; verify needs at least 3")
    replayed, how = replay(values, steps, [c.difference for c in columns.inputs], columns.lag)
    return replayed, f"{name}, {how}" if how else name, test


@dataclass(frozen=True)
class Picked:
    """Which cells of a --data file verify reads: ``column`` (one value), ``columns`` (the file's names for a
    multivariate model's inputs, in order) and the ``time_column`` rows are sorted by; all None: the defaults."""

    column: str | None = None
    columns: list[str] | None = None
    time_column: str | None = None


def replay_for(bundle, data, picked: Picked, steps: int, stored: bool) -> Replay:
    """The inputs and the float model's prediction after each.

    ``stored``: the bundle's stored reference (no TensorFlow needed; ``data`` must be None); otherwise the float
    Keras model run on ``data`` or on the held-out split recorded at training, repeated forwards as a device
    could see it (``edgernn.training.reference.replay``).
    """
    if stored:
        if data is not None or picked != Picked():
            raise EdgernnError("--data needs TensorFlow to run the float model; without it verify uses the "
                               "bundle's stored reference (drop --data)")
        values, outputs = bundle.reference_data()
        entry = bundle.manifest.files["reference_data"]
        test = None
        if entry.test is not None and min(entry.test[1], steps - 1) > entry.test[0]:
            test = slice(entry.test[0], min(entry.test[1], steps - 1))
        return Replay(values[:steps], outputs[:steps],
                      f"stored reference ({values.shape[0]} steps recorded at export from {entry.source or '?'})", test)
    model, metadata = reference_model(bundle)
    manifest = bundle.manifest
    if manifest.columns.named:
        _check_columns(bundle, model, metadata)
    values, name, test = _series(metadata, data, picked, steps, manifest.columns)
    train_rmse = metadata.metrics.get("test_rmse") if metadata and test is not None else None
    reference = float_reference(model, values, manifest.columns, manifest.model.raw_window)
    return Replay(values, reference, name, test, train_rmse, metadata.metrics if metadata else None)


CHECKED_STEPS = 200  # stored reference steps a user's own model is held to


def _check_columns(bundle, model, metadata) -> None:
    """The manifest's columns decode the float model on the host, so they must be the model's own: those in its
    hash-checked metadata (edgernn's models), or those that reproduce the outputs stored at export (a user's
    own model, whose only description is the manifest). Raises BundleError (one line) for an altered manifest."""
    from edgernn.errors import BundleError

    columns = bundle.manifest.columns
    if metadata is not None:
        if _without_ranges(metadata.columns) != _without_ranges(columns):
            raise BundleError("manifest.json's columns differ from the model's own (model.keras): the bundle "
                              "was altered after export; export it again")
        return
    values, stored = bundle.reference_data()
    again = float_reference(model, values[:CHECKED_STEPS], columns, bundle.manifest.model.raw_window)
    span = np.nanmax(stored, axis=0) - np.nanmin(stored, axis=0)
    error = np.abs(again - stored[:CHECKED_STEPS]) / np.where(span > 0, span, 1.0)
    if not np.array_equal(np.isnan(again), np.isnan(stored[:CHECKED_STEPS])) or np.nanmax(error, initial=0) > 1e-4:
        raise BundleError("manifest.json's columns do not reproduce the float model's outputs stored at export "
                          "(reference.npz): the bundle was altered after export; export it again")


def _without_ranges(columns) -> dict:
    data = columns.to_dict()
    for item in data["inputs"]:
        item.pop("range", None)
    return data
