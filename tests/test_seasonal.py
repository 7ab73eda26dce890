"""A season as the baseline under the network: seasonal differencing or Holt-Winters chosen on validation,
through training, export, verify, the predictor (its past season and Holt-Winters' state in the state file), the
line service and the C array's refusal."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from built_once import build_once, exported_once, trained_once
from edgernn.data.series import chronological_split
from edgernn.runtime.columns import Columns, InputColumn, OutputColumn
from edgernn.training.season_baseline import choose_season, clear_seasons, naive_rmse

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
    """Differenced over the season (the naive seasonal baseline: ``baseline="naive"``)."""
    return trained_once(built, data=str(seasonal_file), season=[PERIOD, 7], units=16, epochs=15, lr=0.005,
                        baseline="naive")


@pytest.fixture(scope="session")
def seasonal_bundle(built, seasonal_model):
    return exported_once(built, seasonal_model.model_path, variants="tflite-float32,tflite-int8,onnx-float32",
                         verify=False)


@pytest.fixture(scope="session")
def smoothed_model(built, seasonal_file):
    """Holt-Winters under the network (the default baseline, chosen on validation)."""
    return trained_once(built, data=str(seasonal_file), season=[PERIOD], units=16, epochs=15, lr=0.005)


@pytest.fixture(scope="session")
def smoothed_bundle(built, smoothed_model):
    return exported_once(built, smoothed_model.model_path, variants="tflite-float32,tflite-int8,onnx-float32",
                         verify=False)


@pytest.fixture(params=["naive", "holt-winters"])
def any_seasonal_bundle(request):
    return request.getfixturevalue("seasonal_bundle" if request.param == "naive" else "smoothed_bundle")


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


def test_holt_winters_on_a_table_equals_holt_winters_step_by_step():
    from edgernn.runtime import smoothing as holt_winters

    values = seasonal_series()[:300]
    profile = np.random.default_rng(2).normal(size=PERIOD)
    params = holt_winters.Smoothing(0.3, 0.05, 0.2, tuple(profile - profile.mean()))
    table = holt_winters.forecasts(values, PERIOD, params)
    assert np.isnan(table[:PERIOD]).all() and np.isfinite(table[PERIOD:]).all() and table.size == 301
    state = holt_winters.start(values[None, :PERIOD], np.array(params.season))
    for t in range(PERIOD, 300):
        assert holt_winters.forecast(state)[0] == table[t]
        state = holt_winters.update(state, values[t:t + 1], params.alpha, params.beta, params.gamma)
    assert holt_winters.forecast(state)[0] == table[300]


def test_a_stream_starting_at_any_time_of_day_gets_the_season_at_its_phase():
    from edgernn.runtime import smoothing as holt_winters

    profile = np.random.default_rng(4).normal(size=PERIOD)
    profile -= profile.mean()
    for phase in (0, 5, 23):
        first_day = 7.0 + np.roll(profile, -phase) + np.random.default_rng(phase).normal(0, 0.05, PERIOD)
        state = holt_winters.start(first_day[None], profile)[0]
        np.testing.assert_array_equal(state[2:], np.roll(profile, -phase))
        assert state[0] == pytest.approx(7.0, abs=0.05) and state[1] == 0.0


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


def test_holt_winters_in_a_manifest_round_trips_and_crafted_ones_are_refused():
    from edgernn.runtime.smoothing import Smoothing

    smoothing = Smoothing(0.5, 0.0, 0.1, (1.0, -1.0, 0.5, -0.5))
    good = Columns((InputColumn("a", True, 0.0, 1.0, period=4, smoothing=smoothing),),
                   (OutputColumn("a", 1, 0, True, 0.0, 1.0, period=4, smoothed=True),))
    assert Columns.from_dict(json.loads(json.dumps(good.to_dict()))) == good
    for change, message in (({"alpha": 2}, "from 0 to 1"), ({"gamma": float("nan")}, "from 0 to 1"),
                            ({"season": [1.0, "x", 0.0, 0.0]}, "finite numbers"), ({"season": [0.0]}, "longest"),
                            ({"beta": True}, "from 0 to 1"), ({"extra": 1}, "alpha, beta, gamma and season")):
        bad = good.to_dict()
        bad["inputs"][0]["smoothing"] = {**bad["inputs"][0]["smoothing"], **change}
        with pytest.raises(ValueError, match=message):
            Columns.from_dict(json.loads(json.dumps(bad)))
    unsmoothed = good.to_dict()
    del unsmoothed["inputs"][0]["smoothing"]  # an output relative to a forecast no column makes
    with pytest.raises(ValueError, match="one step ahead of a smoothed input"):
        Columns.from_dict(unsmoothed)


def test_the_season_is_chosen_on_validation():
    values = seasonal_series()
    split = chronological_split(values.size)
    period, why = choose_season(values, split, [7, PERIOD], horizon=1)
    assert period == PERIOD and "beats persistence" in why
    assert naive_rmse(values, split, PERIOD) < naive_rmse(values, split, 1) / 2
    walk = np.cumsum(np.random.default_rng(0).normal(size=2000))  # no season: persistence is the best naive
    assert choose_season(walk, chronological_split(walk.size), [PERIOD], 1)[0] == 1
    assert choose_season(values, split, [600], 1) == (1, "")  # not two seasons in the training split


def test_only_clear_seasons_are_found_for_the_model():
    from edgernn.data.series import load_series

    values = seasonal_series()
    found = clear_seasons(values, chronological_split(values.size), None)
    assert found and all(p % PERIOD == 0 for p in found)  # the day, or whole days
    sine = load_series("sine").values  # seasonal naive 1.4 % better than persistence, carried on 25 %: not clear
    assert clear_seasons(sine, chronological_split(sine.size), None) == []
    walk = np.cumsum(np.random.default_rng(0).normal(size=2000))
    assert clear_seasons(walk, chronological_split(walk.size), None) == []


def test_a_clear_season_reaches_the_model_unasked(built, seasonal_file, seasonal_model):
    found = trained_once(built, data=str(seasonal_file), units=16, epochs=15, lr=0.005)  # no season given
    assert found.columns.lag % PERIOD == 0
    assert found.metrics["val_rmse"] < 0.6 * found.metrics["val_persistence_rmse"]
    plain = trained_once(built, data=str(seasonal_file), season="none", units=16, epochs=15, lr=0.005)
    assert not plain.columns.named  # asked for none: the plain univariate model, as before
    assert found.metrics["test_rmse"] < 0.75 * plain.metrics["test_rmse"]


def test_holt_winters_under_the_network_matches_the_classical_peer(smoothed_model, seasonal_file):
    columns, metrics = smoothed_model.columns, smoothed_model.metrics
    assert columns.smoothed == [0] and columns.outputs[0].smoothed and columns.lag == PERIOD
    assert "Holt-Winters (season 24" in smoothed_model.metadata["difference_reason"]
    peer = next(key for key in metrics if key.startswith("peer_val_rmse[Holt-Winters"))
    assert metrics["val_rmse"] <= 1.02 * metrics[peer]  # the peer as statsmodels fits it, on the same split
    assert metrics["test_rmse"] <= 1.05 * metrics[peer.replace("val", "test")]
    assert metrics["test_rmse"] < 0.8 * metrics["peer_test_rmse[seasonal naive (period 24)]"]


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
    from edgernn.training.trainer import predict

    values = np.load(seasonal_file)[:400]
    reference = predict(seasonal_model.model_path, values)  # one column: a series, as a univariate model gives
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


def test_the_fast_path_holds_skips_and_counts_as_the_general_one(any_seasonal_bundle, seasonal_file):
    from edgernn.runtime import StreamingPredictor

    values = np.load(seasonal_file)[:300].copy()
    values[[30, 31, 100]] = np.nan
    values[200] = 1e4  # far outside the calibrated range: counted, clipped by int8
    for on_nan in ("skip", "hold"):
        one = StreamingPredictor.load(any_seasonal_bundle, "tflite-int8", on_nan=on_nan)
        two = StreamingPredictor.load(any_seasonal_bundle, "tflite-int8", streams=2, on_nan=on_nan)
        np.testing.assert_array_equal(one.run(values), two.run(np.stack([values, values], axis=1))[:, 0])
        counted = one.stats["out_of_range"]
        assert counted[0] >= 2 and counted.tolist() == two.stats["out_of_range"][:1].tolist()  # the spike in and
        assert one.stats["clipped"].tolist() == two.stats["clipped"][:1].tolist() and counted[0] >= 2  # a season on
        np.testing.assert_array_equal(one.state["past"][0], two.state["past"][0])
        if "smooth" in one.state:  # Holt-Winters' level, trend and season: the same floats on both paths
            np.testing.assert_array_equal(one.state["smooth"][0], two.state["smooth"][0])


def _edgernn(*args, stdin: str | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgernn", *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def test_stream_resumes_a_season_from_its_state_file(any_seasonal_bundle, seasonal_file, tmp_path):
    seasonal_bundle = any_seasonal_bundle
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


def test_kill_9_keeps_the_season_and_holt_winters_state(any_seasonal_bundle, seasonal_file, tmp_path):
    """A file of readings streamed with a state file, the stream killed (-9) at random moments and restarted:
    the output equals an uninterrupted run's, so the past season and Holt-Winters' state came back each time."""
    import signal
    import time

    source = tmp_path / "readings.txt"
    source.write_text("".join(f"{v:.6f}\n" for v in np.load(seasonal_file)[:400]))
    whole = _edgernn("stream", str(any_seasonal_bundle), str(source), "--variant", "tflite-float32")
    assert whole.returncode == 0, whole.stderr
    args = [sys.executable, "-m", "edgernn", "stream", str(any_seasonal_bundle), str(source), "--variant",
            "tflite-float32", "--state-file", str(tmp_path / "state.npz"), "--save-every", "1", "--out",
            str(tmp_path / "out.txt")]
    rng = np.random.default_rng(0)
    for _ in range(4):
        reader = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 2.0))
        reader.send_signal(signal.SIGKILL)
        reader.wait(timeout=60)
    final = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    assert (tmp_path / "out.txt").read_text().split() == whole.stdout.split()


def test_verify_passes_and_c_array_refuses_with_the_reason(any_seasonal_bundle, runner, tmp_path):
    seasonal_bundle = any_seasonal_bundle
    from edgernn.cli.commands import cli as main

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
