"""train --budget: other network sizes and learning rates fitted while the time allows, the one with the lowest
validation RMSE kept (its size in the metadata), every candidate's figure in the metrics; 0 fits the default
only."""

from __future__ import annotations

import math

import pytest

import edgernn
from edgernn.search import CANDIDATES

TINY = {"epochs": 2, "seed": 0, "quiet": True, "season": "none"}


@pytest.fixture(scope="module")
def searched():
    return edgernn.train("sine", **TINY, budget=3600)


def test_the_kept_candidate_has_the_lowest_validation_rmse(searched):
    tried = {key: value for key, value in searched.metrics.items() if key.startswith("candidate_val_rmse[")}
    assert len(tried) == 1 + len(CANDIDATES)  # a budget of an hour: every candidate fitted
    assert all(math.isfinite(value) for value in tried.values())
    assert searched.metrics["val_rmse"] == min(tried.values())
    kept = min(tried, key=tried.get)
    assert kept == f"candidate_val_rmse[{searched.metadata['units']} units, lr {kept.split('lr ')[1][:-1]}]"
    assert searched.model.get_layer("simple_rnn_0").get_weights()[0].shape[1] == searched.metadata["units"]


def test_no_budget_fits_the_default_only():
    plain = edgernn.train("sine", **TINY)
    assert not any(key.startswith("candidate_val_rmse[") for key in plain.metrics)
    assert plain.metadata["units"] == 50


def test_a_small_budget_stops_early_saying_so(capsys):
    result = edgernn.train("sine", **{**TINY, "quiet": False}, budget=0.001)
    tried = [key for key in result.metrics if key.startswith("candidate_val_rmse[")]
    assert tried == ["candidate_val_rmse[50 units, lr 0.001]"]
    assert "search: stopped before 16 units, lr 0.003" in capsys.readouterr().err


@pytest.mark.parametrize("budget", [-1, float("nan"), float("inf"), True, "10"])
def test_a_bad_budget_is_refused_before_training(budget):
    from edgernn.errors import ModelError

    with pytest.raises(ModelError, match="budget must be"):
        edgernn.train("sine", **TINY, budget=budget)
