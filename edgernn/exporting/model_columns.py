"""What a multivariate model's columns are at export: from edgernn's metadata, or said by the user for their own
model (``--columns`` feeding it, ``--targets`` it predicts), or a one-line refusal naming what is missing; and
each column's calibrated range, recorded for the runtime's out-of-range counts."""

from __future__ import annotations

import dataclasses

import numpy as np

from edgernn.runtime.preprocessing import Preprocessing
from edgernn.runtime.columns import Columns, InputColumn, OutputColumn
from edgernn.errors import ExportError


def split_names(names) -> list[str] | None:
    """``"a,b"`` or ``["a", "b"]`` -> ``["a", "b"]``; None stays None."""
    if names is None:
        return None
    items = names.split(",") if isinstance(names, str) else list(names)
    items = [str(n).strip() for n in items]
    if not items or not all(items):
        raise ExportError(f"column names must be a comma-separated list of names, got {names!r}")
    return items


def own_model_columns(features: int, outputs: int, names, targets) -> Columns:
    """Columns for a model that edgernn did not train (no preprocessing: it reads raw values); the plain
    univariate model's for the one-value case nobody described (one value in, its next value out, as always).

    ``names``: the F columns feeding the model, in order; ``targets``: what its K outputs predict, target by
    target (K / len(targets) steps ahead each); default: the first column, when K is 1.
    """
    names, targets = split_names(names), split_names(targets)
    if features == 1 and outputs == 1 and names is None and targets is None:
        return Columns.from_preprocessing(Preprocessing())
    if names is None:
        raise ExportError(f"this model takes {features} features per step: give --columns naming the {features} "
                          "columns of --calibration-data that feed it, in order")
    if len(names) != features:
        raise ExportError(f"--columns names {len(names)} column(s), but the model takes {features} features per step")
    if len(set(names)) != len(names):
        raise ExportError(f"--columns repeats a name: {','.join(names)}")
    if targets is None:
        if outputs != 1:
            raise ExportError(f"this model has {outputs} outputs: give --targets naming what they predict (each "
                              f"target's steps ahead in turn; {outputs} outputs = targets x steps)")
        targets = [names[0]]
    if outputs % len(targets):
        raise ExportError(f"the model's {outputs} outputs do not divide among {len(targets)} target(s)")
    steps = outputs // len(targets)
    return Columns(tuple(InputColumn(name) for name in names),
                   tuple(OutputColumn(target, step, names.index(target) if target in names else None)
                         for target in targets for step in range(1, steps + 1)))


def with_ranges(columns: Columns, z: np.ndarray) -> Columns:
    """``columns`` with each input's calibrated model-input range (from the calibration inputs ``z [n, F]``)."""
    low, high = z.min(axis=0), z.max(axis=0)
    return dataclasses.replace(columns, inputs=tuple(
        dataclasses.replace(c, range=(float(a), float(b))) for c, a, b in zip(columns.inputs, low, high)))
