"""train --budget: other network sizes and learning rates fitted while the time allows, the one with the lowest
validation RMSE kept (its size in the metadata), every candidate's figure in the metrics; 0 fits the default
only; without a budget, a short series is searched when the size is the default one."""

from __future__ import annotations

import math

import numpy as np
import pytest

import edgernn
from edgernn.training.search import AUTO_ROWS, AUTO_SECONDS, CANDIDATES

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


def test_no_budget_on_a_long_series_fits_the_default_only():
    plain = edgernn.train("sine", **TINY)  # 2,100 training rows: more than AUTO_ROWS
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


@pytest.fixture(scope="module")
def short_series(tmp_path_factory):
    """A short noisy seasonal series: 300 values, 210 training rows."""
    path = tmp_path_factory.mktemp("short") / "short.npy"
    t = np.arange(300)
    np.save(path, np.sin(t / 4.0) + 0.1 * np.random.default_rng(0).normal(size=t.size))
    return str(path)


def test_a_short_series_is_searched_without_asking(short_series, capsys):
    assert 210 <= AUTO_ROWS
    result = edgernn.train(short_series, **{**TINY, "quiet": False})
    err = capsys.readouterr().err
    assert f"a short series (210 training rows): other sizes too, within {AUTO_SECONDS:g} s" in err
    tried = {key: value for key, value in result.metrics.items() if key.startswith("candidate_val_rmse[")}
    assert len(tried) >= 2 and result.metrics["val_rmse"] == min(tried.values())


@pytest.mark.parametrize("options", [{"units": 16}, {"lr": 0.01}, {"budget": 0}, {"window": 5}])
def test_a_chosen_size_or_budget_0_is_kept_on_a_short_series(short_series, options):
    result = edgernn.train(short_series, **{**TINY, **options})
    assert not any(key.startswith("candidate_val_rmse[") for key in result.metrics)
    assert result.metadata["units"] == options.get("units", 50)
