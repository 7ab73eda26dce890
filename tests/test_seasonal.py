"""A season as the baseline under the network: seasonal differencing chosen on validation, through training,
export, verify, the predictor (its past season in the state), the line service and the C array's refusal."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from built_once import build_once, exported_once, trained_once
from edgernn.data import chronological_split
from edgernn.runtime.columns import Columns, InputColumn, OutputColumn
from edgernn.season_baseline import choose_season, naive_rmse

PERIOD = 24


def seasonal_series(n: int = 1440, seed: int = 3) -> np.ndarray:
    """A daily profile no sine describes (random, repeated) on a slowly wandering level: "same hour yesterday"
    beats "the last hour" by far, and what is left (the wandering) is for the network."""
    rng = np.random.default_rng(seed)
    profile = rng.normal(0, 2, PERIOD)
    wander = np.zeros(n)
    for i in range(1, n):
        wander[i] = 0.9 * wander[i - 1] + rng.normal(0, 0.3)
    return 20 + np.tile(profile, n // PERIOD + 1)[:n] + wander


@pytest.fixture(scope="session")
def seasonal_file(built):
    def build(directory):
        np.save(directory / "seasonal.npy", seasonal_series())

    return build_once(built, "seasonal-data", build) / "seasonal.npy"


@pytest.fixture(scope="session")
def seasonal_model(built, seasonal_file):
    return trained_once(built, data=str(seasonal_file), season=[PERIOD, 7], units=16, epochs=15, lr=0.005)


@pytest.fixture(scope="session")
def seasonal_bundle(built, seasonal_model):
    return exported_once(built, seasonal_model.model_path, variants="tflite-float32,tflite-int8,onnx-float32",
                         verify=False)


def _columns(period: int = 4) -> Columns:
    return Columns((InputColumn("a", True, 0.5, 2.0, period=period), InputColumn("b", True, 0.0, 1.0),
                    InputColumn("c")),
                   (OutputColumn("a", 1, 0, True, 0.1, 3.0, period=period),
                    OutputColumn("a", 2, 0, True, 0.1, 3.0, period=period)))


def test_stream_arithmetic_equals_the_table_arithmetic():
    columns, rows = _columns(), np.random.default_rng(0).normal(size=(30, 3))
    z, outputs = columns.transform(rows), np.random.default_rng(1).normal(size=(26, 2))
    table = columns.decode_table(outputs, rows)
    past = np.full((1, 4, 3), np.nan)
    for t in range(4, 30):
        past[0] = rows[t - 4:t]
        np.testing.assert_allclose(columns.encode_past(rows[t][None], past)[0], z[t - 4])
        np.testing.assert_allclose(columns.decode(outputs[t - 4][None], rows[t][None], past)[0], table[t - 4])
    # step 1 adds the value one season before the predicted step (t + 1 - 4), step 2 the one before t + 2
    np.testing.assert_allclose(table[0], outputs[0] * 3.0 + 0.1 + rows[[1, 2], 0])


def test_files_without_seasons_are_unchanged_and_bad_seasons_refused():
    plain = Columns((InputColumn("a", True, 0.0, 1.0),), (OutputColumn("a", 1, 0, True),))
    assert "period" not in json.dumps(plain.to_dict())  # older edgernn wrote exactly this
    assert Columns.from_dict(_columns().to_dict()) == _columns()
    data = _columns().to_dict()
    for change, message in (({"difference": False}, "needs difference"), ({"period": 0}, "period must be"),
                            ({"period": True}, "period must be")):
        bad = json.loads(json.dumps(data))
        bad["inputs"][0].update(change)
        with pytest.raises(ValueError, match=message):
            Columns.from_dict(bad)
    huge = json.loads(json.dumps(data))
    huge["inputs"] = [{**huge["inputs"][0], "name": f"c{i}"} for i in range(20)]
    huge["inputs"][0]["period"] = 100_000  # 100,000 rows of 20 values per stream: refused before allocating
    with pytest.raises(ValueError, match="may remember"):
        Columns.from_dict(huge)
    beyond = json.loads(json.dumps(data))
    beyond["outputs"][0]["period"] = beyond["outputs"][1]["period"] = 9  # a baseline 8 rows back, 4 remembered
    with pytest.raises(ValueError, match="rows back"):
        Columns.from_dict(beyond)


def test_the_season_is_chosen_on_validation():
    values = seasonal_series()
    split = chronological_split(values.size)
    period, why = choose_season(values, split, [7, PERIOD], horizon=1)
    assert period == PERIOD and "beats persistence" in why
    assert naive_rmse(values, split, PERIOD) < naive_rmse(values, split, 1) / 2
    walk = np.cumsum(np.random.default_rng(0).normal(size=2000))  # no season: persistence is the best naive
    assert choose_season(walk, chronological_split(walk.size), [PERIOD], 1)[0] == 1
    assert choose_season(values, split, [600], 1) == (1, "")  # not two seasons in the training split


def test_seasonal_model_beats_its_baselines(seasonal_model, seasonal_file):
    columns = seasonal_model.columns
    assert columns.lag == PERIOD and columns.inputs[0].period == PERIOD and columns.outputs[0].period == PERIOD
    values = np.load(seasonal_file)
    split = chronological_split(values.size)
    truth = values[split.val_end:]
    seasonal_naive = math.sqrt(np.mean((truth - values[split.val_end - PERIOD:-PERIOD]) ** 2))
    metrics = seasonal_model.metrics
    assert metrics["test_rmse"] < 0.9 * seasonal_naive < metrics["persistence_rmse"]
    assert "season 24" in seasonal_model.metadata["difference_reason"]


def test_season_options_refused_before_training():
    import edgernn
    from edgernn.errors import DataError, ModelError

    with pytest.raises(ModelError, match="streaming model"):
        edgernn.train("sine", season=[24], window=10, quiet=True)
    with pytest.raises(DataError, match="periods of at least 2"):
        edgernn.train("sine", season=[1], quiet=True)
    with pytest.raises(ModelError, match="integer from 2 to"):
        edgernn.train("sine", season=[10**9], quiet=True)


def test_predictor_carries_the_season_in_its_state(seasonal_bundle, seasonal_model, seasonal_file, tmp_path):
    from edgernn.runtime import StreamingPredictor
    from edgernn.training import predict

    values = np.load(seasonal_file)[:400]
    reference = predict(seasonal_model.model_path, values)[:, 0]
    predictor = StreamingPredictor.load(seasonal_bundle, "tflite-float32")
    out = predictor.run(values)
    assert np.isnan(out[:PERIOD]).all() and np.isfinite(out[PERIOD:]).all()  # NaN until a season is seen
    np.testing.assert_allclose(out[PERIOD:], reference[PERIOD:], atol=1e-4 * np.ptp(values))
    predictor.reset()
    predictor.run(values[:200])
    predictor.save_state(tmp_path / "state.npz")
    again = StreamingPredictor.load(seasonal_bundle, "tflite-float32")
    again.load_state(tmp_path / "state.npz")
    np.testing.assert_array_equal(again.run(values[200:]), out[200:])
    int8 = StreamingPredictor.load(seasonal_bundle, "tflite-int8").run(values)
    assert np.sqrt(np.nanmean((int8 - out) ** 2)) < 0.05 * np.ptp(values)
    both = StreamingPredictor.load(seasonal_bundle, "tflite-int8", streams=2)  # the general (numpy) path
    np.testing.assert_array_equal(both.run(np.stack([values, values], axis=1))[:, 1], int8)


def test_the_fast_path_holds_skips_and_counts_as_the_general_one(seasonal_bundle, seasonal_file):
    from edgernn.runtime import StreamingPredictor

    values = np.load(seasonal_file)[:300].copy()
    values[[30, 31, 100]] = np.nan
    values[200] = 1e4  # far outside the calibrated range: counted, clipped by int8
    for on_nan in ("skip", "hold"):
        one = StreamingPredictor.load(seasonal_bundle, "tflite-int8", on_nan=on_nan)
        two = StreamingPredictor.load(seasonal_bundle, "tflite-int8", streams=2, on_nan=on_nan)
        np.testing.assert_array_equal(one.run(values), two.run(np.stack([values, values], axis=1))[:, 0])
        counted = one.stats["out_of_range"]
        assert counted[0, 0] >= 2 and counted.tolist() == two.stats["out_of_range"][:1].tolist()  # the spike in and
        assert one.stats["clipped"].tolist() == two.stats["clipped"][:1].tolist() and counted[0, 0] >= 2  # a season on
        np.testing.assert_array_equal(one.state["past"][0], two.state["past"][0])


def _edgernn(*args, stdin: str | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgernn", *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def test_stream_resumes_a_season_from_its_state_file(seasonal_bundle, seasonal_file, tmp_path):
    lines = [f"{v:.6f}" for v in np.load(seasonal_file)[:120]]
    whole = _edgernn("stream", str(seasonal_bundle), "--variant", "tflite-float32", stdin="\n".join(lines) + "\n")
    assert whole.returncode == 0, whole.stderr
    state = str(tmp_path / "stream.state")
    first = _edgernn("stream", str(seasonal_bundle), "--variant", "tflite-float32", "--state-file", state,
                     stdin="\n".join(lines[:50]) + "\n")
    second = _edgernn("stream", str(seasonal_bundle), "--variant", "tflite-float32", "--state-file", state,
                      stdin="\n".join(lines[50:]) + "\n")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert (first.stdout + second.stdout).split() == whole.stdout.split()
    assert whole.stdout.split()[:PERIOD] == ["nan"] * PERIOD


def test_verify_passes_and_c_array_refuses_with_the_reason(seasonal_bundle, runner, tmp_path):
    from edgernn.cli import cli as main

    verified = runner.invoke(main, ["verify", str(seasonal_bundle), "--steps", "1000", "--json"])
    assert verified.exit_code == 0, verified.output
    assert all(row["passed"] for row in json.loads(verified.stdout)["variants"])
    refused = runner.invoke(main, ["c-array", str(seasonal_bundle), "--out", str(tmp_path / "c")])
    assert refused.exit_code == 2 and "season of 24 rows" in refused.output
    assert not (tmp_path / "c").exists()


@pytest.fixture(scope="session")
def walk_file(built):
    """A random walk beside a column of noise: nothing beats "the last value" here."""
    def build(directory):
        rng = np.random.default_rng(5)
        rows = np.stack([np.cumsum(rng.normal(size=800)), rng.normal(size=800)], axis=1)
        np.savetxt(directory / "walk.csv", rows, delimiter=",", header="level,noise", comments="", fmt="%.6f")

    return build_once(built, "walk-data", build) / "walk.csv"


def test_a_network_that_adds_noise_is_turned_down_to_its_baseline(built, walk_file):
    trained = trained_once(built, data=str(walk_file), columns="all", targets=["level"], difference="off",
                           units=8, epochs=3, lr=0.01)
    off = trained.columns.outputs[0]
    assert not off.relative  # --difference off: a level model, as asked
    result = trained_once(built, data=str(walk_file), columns="all", targets=["level"], units=8, epochs=3, lr=0.01)
    output, metrics = result.columns.outputs[0], result.metrics
    assert output.relative and result.columns.inputs[0].difference is False  # levels in, a change out
    assert metrics["val_rmse"] <= metrics["val_persistence_rmse"] * 1.001
    assert metrics["test_rmse"] <= metrics["persistence_rmse"] * 1.02
    assert metrics["test_rmse"] < 0.5 * trained.metrics["test_rmse"]  # the level model misses the walk's level


def test_a_share_of_zero_ships_the_baseline_alone():
    zero = {"inputs": [{"name": "a"}], "outputs": [{"target": "a", "source": 0, "relative": True, "divisor": 0}]}
    columns = Columns.from_dict(zero)
    np.testing.assert_array_equal(columns.decode_table(np.array([[5.0], [-3.0]]), np.array([[1.0], [2.0]])),
                                  [[1.0], [2.0]])
    zero["outputs"][0]["relative"] = False
    with pytest.raises(ValueError, match="divisor must be positive"):
        Columns.from_dict(zero)
