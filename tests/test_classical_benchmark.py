"""benchmarks/classical.py's forecasters predict one step ahead over the test split, the state updated by each
observation: a test value changed by hand changes the next prediction (the state saw it) but neither its own nor
any before it (no peeking, parameters fitted on train + validation only)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("statsmodels")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import classical  # noqa: E402


@pytest.fixture(scope="module")
def parts():
    rng = np.random.default_rng(0)
    t = np.arange(400, dtype=np.float64)
    wander = np.cumsum(rng.normal(0, 0.3, t.size))  # a level that moves: every peer must follow observations
    values = 10 + 3 * np.sin(2 * np.pi * t / 12) + 0.01 * t + wander + rng.normal(0, 0.3, t.size)
    return values[:280], values[280:340], values[340:]


@pytest.mark.parametrize("make", [lambda: classical.arima((2, 0, 0)),
                                  lambda: classical.arima((1, 0, 0), (0, 1, 1, 12)),
                                  lambda: classical.holt_winters(12, trend=True),
                                  lambda: classical.holt_winters(12, trend=False)],
                         ids=["arima", "sarima", "holt-winters trend", "holt-winters"])
def test_peers_predict_one_step_ahead_from_what_they_saw(parts, make):
    forecast = make()
    train, validation, test = parts
    predictions = forecast(train, validation, test)
    assert predictions.shape == test.shape and np.isfinite(predictions).all()
    changed = test.copy()
    changed[10] += 5.0
    again = forecast(train, validation, changed)
    np.testing.assert_allclose(again[:11], predictions[:11], rtol=1e-9)  # up to and at index 10: unchanged
    assert abs(again[11] - predictions[11]) > 0.01  # the next one saw the changed value
    # on a noisy seasonal series a fitted peer beats persistence
    assert classical.rmse(predictions, test) < classical.rmse(classical.persistence(*parts), test)


def test_naive_forecasters_carry_the_right_value(parts):
    train, validation, test = parts
    whole = np.concatenate(parts)
    np.testing.assert_array_equal(classical.persistence(*parts), whole[339:399])
    np.testing.assert_array_equal(classical.seasonal_naive(12)(*parts), whole[328:388])
    rows = np.stack([whole, -whole], axis=1)  # a table: the target is column 0
    np.testing.assert_array_equal(classical.persistence(rows[:280], rows[280:340], rows[340:]), whole[339:399])
