"""Multivariate training on real (small) models: several columns in, several targets x horizon steps out."""

import numpy as np
import pytest

import edgernn
from edgernn.data.series import LAGGED_STEPS, load_series, load_table
from edgernn.errors import DataError, ModelError
from edgernn.training.model_metadata import ModelMetadata
from edgernn.training.modeling import load_model
from edgernn.runtime.cells import simple_rnn_step
from edgernn.training.trainer import predict_with

LAGGED_BUDGET = {"units": 16, "epochs": 30, "lr": 0.005, "seed": 0, "quiet": True}


def write_csv(path, rows=600):
    """A rising ``temp`` (differenced by auto), a level ``hum`` (not), a text column and a few gaps."""
    t = np.arange(rows)
    rng = np.random.default_rng(1)
    temp = (0.01 * t + np.sin(t / 7.0) + rng.normal(0, 0.05, rows)).round(4).astype(str)
    hum = (np.cos(t / 5.0) + rng.normal(0, 0.05, rows)).round(4).astype(str)
    temp[[10, 11, 400]] = ["", "NA", "nan"]
    hum[[20]] = [""]
    lines = [f"{i},{a},{b},x{i}" for i, a, b in zip(t[::-1], temp[::-1], hum[::-1])]  # newest first
    path.write_text("t,temp,hum,note\n" + "\n".join(lines) + "\n")
    return str(path)


@pytest.fixture(scope="session")
def lagged_models():
    """The follower of the lagged series, modelled from its own past and from both columns, on the same budget."""
    alone = edgernn.train("lagged", column="follower", **LAGGED_BUDGET)
    both = edgernn.train("lagged", columns="all", targets=["follower"], **LAGGED_BUDGET)
    return alone, both


@pytest.fixture(scope="session")
def horizon_model(model_dir):
    """Five steps ahead on the built-in sine (one column in, five outputs), saved."""
    return edgernn.train("sine", model_dir / "sine-h5.keras", horizon=5, **LAGGED_BUDGET)


@pytest.fixture(scope="session")
def trend_csv(tmp_path_factory):
    return write_csv(tmp_path_factory.mktemp("mv") / "log.csv")


@pytest.fixture(scope="session")
def trend_model(trend_csv, model_dir):
    """Two targets x two steps from a CSV where one column is differenced and one is not (tiny, saved); no
    season (temp's sine repeats every 44 rows, which would be found and differenced over: test_seasonal)."""
    return edgernn.train(trend_csv, model_dir / "trend.keras", columns=["temp", "hum"], targets=["temp", "hum"],
                         horizon=2, time_column="t", units=4, epochs=2, seed=0, quiet=True, season="none")


def test_load_table_fills_and_counts_gaps_per_column(trend_csv):
    table = load_table(trend_csv, time_column="t")
    assert table.names == ("temp", "hum")  # every numeric column; the time column and the text left out
    assert table.filled == (3, 1)
    assert table.values.shape == (600, 2) and np.isfinite(table.values).all()
    assert table.values[0, 1] == pytest.approx(1.0, abs=0.2)  # sorted by time: cos(0) first
    gap = load_table(trend_csv, ["temp"], time_column="t").values[10:12, 0]
    neighbours = table.values[[9, 12], 0]
    assert neighbours.min() <= gap.min() and gap.max() <= neighbours.max()  # interpolated between its neighbours


def test_load_table_columns_by_name_or_index(trend_csv):
    by_index = load_table(trend_csv, ["2", 1], time_column="t")
    assert by_index.names == ("hum", "temp")
    np.testing.assert_array_equal(by_index.values[:, ::-1], load_table(trend_csv, "all", time_column="t").values)


@pytest.mark.parametrize(
    "columns, message",
    [(["temp", "pressure"], r"column 'pressure' not in log.csv; columns: t, temp, hum, note"),
     (["7"], r"column index 7 is out of range for log.csv \(0 to 3\); columns: t, temp, hum, note"),
     (["temp", "1"], r"column 'temp' is chosen 2 times"),
     (["t"], r"'t' is the time column"),
     (["note"], r"line \d+, column 'note': 'x599' is not a number")],
    ids=["unknown", "index", "twice", "time", "text"],
)
def test_load_table_refuses_bad_columns(trend_csv, columns, message):
    with pytest.raises(DataError, match=message):
        load_table(trend_csv, columns, time_column="t")


def test_lagged_builtin_follows_its_driver():
    table = load_table("lagged")
    follower, driver = table.values.T
    assert table.names == ("follower", "driver") and table.values.shape == (3000, 2)
    residual = follower[LAGGED_STEPS:] - 0.8 * driver[:-LAGGED_STEPS]
    assert residual.std() < 0.06 < 0.3 < np.diff(follower).std()  # known from the driver, not from its own step
    with pytest.raises(DataError, match="choose one with --column from: follower, driver"):
        edgernn.train("lagged", quiet=True)


def test_multivariate_beats_univariate_on_lagged(lagged_models):
    alone, both = lagged_models
    assert both.columns.features == ["follower", "driver"] and both.columns.output_names() == ["follower"]
    assert not alone.columns.named  # one column in, the same out: the plain univariate model
    assert both.metrics["test_rmse"] <= 0.7 * alone.metrics["test_rmse"]
    assert both.metrics["test_rmse[follower]"] == both.metrics["test_rmse"]


def test_horizon_5_beats_persistence_at_every_step(horizon_model):
    metrics, columns = horizon_model.metrics, horizon_model.columns
    assert columns.output_names() == [f"sine+{h}" for h in range(1, 6)]
    for name in columns.output_names():
        assert metrics[f"test_rmse[{name}]"] < metrics[f"persistence_rmse[{name}]"], name
    persistence = [metrics[f"persistence_rmse[sine+{h}]"] for h in range(1, 6)]
    assert persistence == sorted(persistence)  # the baseline is measured at each output's own horizon
    worst = max(columns.output_names(), key=lambda n: metrics[f"test_rmse[{n}]"] / metrics[f"persistence_rmse[{n}]"])
    assert metrics["test_rmse"] == metrics[f"test_rmse[{worst}]"]


def test_columns_per_column_differencing_and_relative_outputs(trend_model):
    columns = trend_model.columns
    assert [c.difference for c in columns.inputs] == [True, False]  # auto: temp trends, hum does not
    # every target's output is a change from its latest value: temp's because it is differenced, hum's because
    # "the last value" predicts its validation split better than its training mean (its inputs stay levels)
    assert [(c.target, c.step, c.source, c.relative) for c in columns.outputs] == [
        ("temp", 1, 0, True), ("temp", 2, 0, True), ("hum", 1, 1, True), ("hum", 2, 1, True)]
    reason = trend_model.metadata["difference_reason"]
    assert "temp: difference on (auto: a linear trend" in reason and "hum: difference off" in reason
    assert all(c.divisor >= 0 for c in columns.outputs)


def test_metadata_round_trip_with_columns(trend_model, trend_csv):
    model, metadata = load_model(trend_model.model_path)
    assert metadata.columns == trend_model.columns
    assert ModelMetadata.from_dict(metadata.to_dict()) == metadata
    assert metadata.data.features == 2 and metadata.data.filled_columns == {"temp": 3, "hum": 1}
    assert metadata.data.filled == 4
    assert metadata.train_values.shape == (metadata.data.split["train_end"], 2)
    test = metadata.test_values
    assert test.shape == (600 - metadata.data.test_start, 2)
    table = load_table(trend_csv, time_column="t").values
    np.testing.assert_array_equal(test, table[metadata.data.test_start:])  # rows stored flat, row after row
    assert model.inputs[0].shape[-1] == 2 and model.outputs[0].shape[-1] == 4


def test_predict_with_matches_a_step_by_step_run(trend_model):
    """The float model's predictions equal the cell equations run one row at a time with the state carried,
    each row encoded and each output decoded as the predictor does (the golden streaming test)."""
    model, metadata = load_model(trend_model.model_path)
    columns, rows = metadata.columns, metadata.test_values[:80]
    expected = predict_with(model, metadata, rows)
    assert expected.shape == (80, 4) and np.isnan(expected[0]).all() and np.isfinite(expected[1:]).all()
    kernel, recurrent, bias = model.get_layer("simple_rnn_0").get_weights()
    head, head_bias = model.get_layer("head").get_weights()
    weights = {"kernel": kernel, "recurrent_kernel": recurrent, "bias": bias}
    state = np.zeros((1, kernel.shape[1]))
    for t in range(1, rows.shape[0]):
        z = columns.encode(rows[t], rows[t - 1])[None]  # [1, F]
        out, (state,) = simple_rnn_step(z, [state], weights)
        step = columns.decode(out @ head + head_bias, rows[t][None])[0]
        np.testing.assert_allclose(step, expected[t], rtol=1e-4, atol=1e-4 * np.ptp(rows))


def test_predict_with_window_model_uses_rows_up_to_t():
    trained = edgernn.train("lagged", columns="all", targets="driver", horizon=2, window=6, units=4, epochs=2,
                            difference="on", seed=0, quiet=True)
    metadata = ModelMetadata.from_dict(trained.metadata)
    rows = metadata.test_values[:40]
    full = predict_with(trained.model, metadata, rows)
    assert full.shape == (40, 2) and np.isnan(full[:5]).all() and np.isfinite(full[5:]).all()
    for t in (5, 17, 39):
        alone = predict_with(trained.model, metadata, rows[t - 5 : t + 1])  # just the window ending at row t
        np.testing.assert_allclose(alone[-1], full[t], rtol=1e-5, atol=1e-6)
    assert trained.columns.outputs[0].relative and trained.columns.outputs[0].source == 1
    with pytest.raises(DataError, match=r"rows of 2 values \(follower, driver\), got an array of shape \(40,\)"):
        predict_with(trained.model, metadata, rows[:, 0])


def test_one_column_same_target_one_step_is_the_univariate_model():
    plain = edgernn.train("sine", units=4, epochs=2, seed=3, quiet=True)
    spelled = edgernn.train("sine", columns=["sine"], targets=["sine"], horizon=1, units=4, epochs=2, seed=3,
                            quiet=True)
    assert spelled.metadata.get("columns") == plain.metadata.get("columns")  # plain, or both blended alike
    for a, b in zip(plain.model.get_weights(), spelled.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert plain.metrics == spelled.metrics


@pytest.mark.parametrize(
    "kwargs, message",
    [({"columns": ["follower"], "targets": ["driver"]}, r"target 'driver' is not an input column; inputs: follower"),
     ({"columns": ["follower", "nope"]}, r"column 'nope' not in lagged; columns: follower, driver"),
     ({"column": "follower", "columns": "all"}, r"--column\) or several \(--columns\), not both"),
     ({"horizon": 0}, r"horizon must be an integer from 1")],
    ids=["target-not-input", "unknown-column", "column-and-columns", "horizon-0"],
)
def test_bad_multivariate_options(kwargs, message):
    with pytest.raises((DataError, ModelError), match=message):
        edgernn.train("lagged", quiet=True, **kwargs)


def test_cli_train_multivariate(runner, trend_csv, tmp_path):
    from edgernn.cli.commands import cli

    out = tmp_path / "m.keras"
    result = runner.invoke(cli, ["train", "--data", trend_csv, "--time-column", "t", "--columns", "temp,2",
                                 "--target", "temp", "--horizon", "2", "--units", "2", "--epochs", "1",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "inputs: temp, hum; outputs: temp+1, temp+2" in result.output
    assert "test temp+2 (" in result.output and "persistence" in result.output
    bad = runner.invoke(cli, ["train", "--data", trend_csv, "--time-column", "t", "--columns", "temp,pressure",
                              "--out", str(tmp_path / "x.keras")])
    assert bad.exit_code == 2
    assert bad.output.strip().splitlines()[-1] == "error: column 'pressure' not in log.csv; columns: t, temp, hum, note"
    assert not (tmp_path / "x.keras").exists()


def test_a_2d_npy_is_a_table(tmp_path):
    """A 2-D .npy [rows, F]: columns named by index, gaps filled per column; a model's F feature names map to
    its columns in order (a .npy has no header); a 1-D loader says a table takes --columns."""
    table = np.stack([np.sin(np.arange(300) / 7), np.cos(np.arange(300) / 5), np.arange(300) / 300], axis=1)
    table[10, 1] = table[20:22, 1] = np.nan
    np.save(tmp_path / "t.npy", table)
    loaded = load_table(str(tmp_path / "t.npy"))
    assert loaded.names == ("0", "1", "2") and loaded.filled == (0, 3, 0) and np.isfinite(loaded.values).all()
    np.testing.assert_array_equal(loaded.values[:, [0, 2]], table[:, [0, 2]])
    assert load_table(str(tmp_path / "t.npy"), ["2", 0]).names == ("2", "0")
    named = load_table(str(tmp_path / "t.npy"), ["temp", "hum", "p"])
    assert named.names == ("temp", "hum", "p")
    np.testing.assert_array_equal(named.values, loaded.values)
    with pytest.raises(DataError, match=r"column 'temp' not in t.npy; columns: 0, 1, 2"):
        load_table(str(tmp_path / "t.npy"), ["temp", "hum"])
    with pytest.raises(DataError, match=r"shape \(300, 3\); expected a 1-D series \(a 2-D table \[rows, columns\] "
                                        r"takes --columns\)"):
        load_series(str(tmp_path / "t.npy"))


def test_cli_train_and_export_from_a_2d_npy(runner, tmp_path):
    from edgernn.cli.commands import cli
    from edgernn.runtime.manifest_reader import read_manifest

    rng = np.random.default_rng(0)
    t = np.arange(600)
    np.save(tmp_path / "t.npy", np.stack([np.sin(t / 9) + rng.normal(0, 0.05, 600), np.cos(t / 4)], axis=1))
    result = runner.invoke(cli, ["train", "--data", str(tmp_path / "t.npy"), "--columns", "all", "--target", "0",
                                 "--units", "4", "--epochs", "1", "--out", str(tmp_path / "m.keras")])
    assert result.exit_code == 0, result.output
    assert "inputs: 0, 1; outputs: 0" in result.output
    exported = runner.invoke(cli, ["export", str(tmp_path / "m.keras"), "--out", str(tmp_path / "b"), "--variants",
                                   "tflite-float32", "--calibration-data", str(tmp_path / "t.npy")])
    assert exported.exit_code == 0, exported.output
    assert read_manifest(tmp_path / "b").columns.features == ["0", "1"]


@pytest.fixture(scope="session")
def trend_bundle(trend_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("trend-b") / "bundle"
    edgernn.export(trend_model.model_path, out, variants="tflite-float32,tflite-int8", quiet=True)
    return out


@pytest.mark.parametrize("variant", ["tflite-float32", "tflite-int8"])
@pytest.mark.parametrize("on_nan", ["skip", "hold"])
def test_row_path_equals_the_general_path_with_differencing(trend_model, trend_bundle, variant, on_nan):
    """The one-stream row path (compiled per model) gives what the array path gives, bit for bit, on a model with
    a differenced column and relative outputs: rows as float64 and float32 arrays, lists, tuples, gaps, rows far
    out of range, after a reset; the same states and out-of-range counts after."""
    from edgernn.runtime import StreamingPredictor

    _, metadata = load_model(trend_model.model_path)
    rows = metadata.test_values[:150].copy()
    rows[30, 0] = rows[31, 1] = np.nan
    rows[60] *= 40.0  # outside the calibrated range of both columns
    fast = StreamingPredictor.load(trend_bundle, variant, on_nan=on_nan)
    general = StreamingPredictor.load(trend_bundle, variant, on_nan=on_nan)
    general._row_fast = False  # the array path for every row
    taken = []  # rows the row path handed to the array path
    fast._step_rows = lambda x, path=fast._step_rows: taken.append(x) or path(x)
    forms = [np.asarray, lambda r: r.tolist(), lambda r: tuple(r.tolist()), lambda r: r.astype(np.float32)]
    for i, row in enumerate(rows):
        given = forms[i % len(forms)](row)
        np.testing.assert_array_equal(fast.step(given), general.step(given))
        if i == 45:
            fast.reset(), general.reset()
    for key, value in fast.state.items():
        np.testing.assert_array_equal(value, general.state[key])
    for key in ("out_of_range", "clipped"):
        np.testing.assert_array_equal(fast.stats[key], general.stats[key])
    assert fast.stats["out_of_range"].sum() >= 2  # the far row was counted, per column
    # handed over: the first row, each gap and the row after it (no previous value), the far row and the one
    # after it, the first row after the reset; every other row took the row path
    assert 4 <= len(taken) <= 10
    # rows of other types are the general path's to convert (or refuse): numpy scalars, ints, float128, objects
    others = [list(rows[120]), [int(v) for v in rows[121] * 10], np.array(rows[122], dtype=np.longdouble),
              [np.float32(v) for v in rows[123]], rows[124].astype(np.int64)]
    before = len(taken)
    for given in others:
        np.testing.assert_array_equal(fast.step(given), general.step(given))
    assert len(taken) - before == len(others)


def test_too_many_columns_or_outputs_are_refused_before_training(tmp_path):
    """What export could not take (over 1,024 inputs or outputs) is refused by train, in one line."""
    np.save(tmp_path / "wide.npy", np.random.default_rng(0).normal(size=(40, 1100)))
    with pytest.raises(DataError, match=r"wide.npy: 1100 input columns; a model takes at most 1024"):
        edgernn.train(str(tmp_path / "wide.npy"), columns="all", targets=["0"], quiet=True)
    with pytest.raises(DataError, match=r"2 target\(s\) x horizon 600 = 1200 outputs; a model has at most 1024"):
        edgernn.train("lagged", columns="all", targets=["follower", "driver"], horizon=600, quiet=True)
    with pytest.raises(DataError, match="column '²' not in lagged"):  # not an index: int('²') fails
        edgernn.train("lagged", columns=["²"], quiet=True)
