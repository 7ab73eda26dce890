"""A user's own multivariate Keras models through export, the runtime and verify (real models, real interpreters)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgernn.cli.commands import cli
from edgernn.errors import EdgernnError, ExportError
from edgernn.runtime import StreamingPredictor
from edgernn.errors import BundleError
from edgernn.runtime.manifest_reader import parse_manifest

WINDOW = 10


def lagged_rows(n: int = 1500, seed: int = 0) -> np.ndarray:
    """Three channels; the third follows the first with a lag of 3."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    a = np.sin(t / 15) + 0.1 * rng.normal(size=n)
    b = np.cos(t / 40) + 0.05 * rng.normal(size=n)
    c = 0.8 * np.roll(a, 3) + 0.05 * rng.normal(size=n)
    return np.stack([a, b, c], axis=1)


@pytest.fixture(scope="session")
def window_model(tmp_path_factory):
    """The issue's plain Keras model: SimpleRNN(50) over (10, 3) windows + Dense(1), no edgernn metadata."""
    import keras

    keras.utils.set_random_seed(1)
    rows = lagged_rows()
    x = np.stack([rows[i:i + WINDOW] for i in range(rows.shape[0] - WINDOW)]).astype("float32")
    y = rows[WINDOW:, 2:3].astype("float32")
    model = keras.Sequential([keras.Input((WINDOW, 3)), keras.layers.SimpleRNN(50), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    model.fit(x, y, epochs=2, verbose=0)
    path = tmp_path_factory.mktemp("own") / "own.keras"
    model.save(path)
    return path, model, rows


@pytest.fixture(scope="session")
def own_window_bundle(window_model, tmp_path_factory):
    import edgernn

    path, _, rows = window_model
    out = tmp_path_factory.mktemp("own-b") / "bundle"
    result = edgernn.export(path, out, calibration_data=rows, columns="a,b,c", targets="c", quiet=True)
    assert result.verify is None and "no held-out" in result.verify_skipped
    return out


@pytest.fixture(scope="session")
def streaming_bundle(tmp_path_factory):
    """A streaming GRU over 2 features with 4 outputs: targets a and b, 2 steps ahead each."""
    import edgernn
    import keras

    keras.utils.set_random_seed(2)
    rows = lagged_rows(800)[:, :2]
    x = rows[None, :-2].astype("float32")
    y = np.stack([rows[1:-1, 0], rows[2:, 0], rows[1:-1, 1], rows[2:, 1]], axis=1)[None].astype("float32")
    model = keras.Sequential([keras.Input((None, 2)), keras.layers.GRU(8, return_sequences=True),
                              keras.layers.Dense(4)])
    model.compile("adam", "mse")
    model.fit(x, y, epochs=3, verbose=0)
    directory = tmp_path_factory.mktemp("own-s")
    model.save(directory / "own.keras")
    csv = directory / "rows.csv"  # through the command line: --target repeated, as on train
    csv.write_text("a,b\n" + "".join(f"{a!r},{b!r}\n" for a, b in rows.tolist()))
    result = CliRunner().invoke(cli, ["export", str(directory / "own.keras"), "--out", str(directory / "bundle"),
                                      "--calibration-data", str(csv), "--columns", "a,b", "--target", "a",
                                      "--target", "b", "--variants", "tflite-float32,tflite-int8,onnx-float32",
                                      "--json"])
    assert result.exit_code == 0, result.output
    return directory / "bundle", model, rows


def test_plain_keras_window_model_float_variants_match_keras(window_model, own_window_bundle):
    """Acceptance: SimpleRNN(50, input_shape=(10, 3)) + Dense(1) exports; float32 variants within 1e-4 of range."""
    _, model, rows = window_model
    rows = rows[:300]
    windows = np.stack([rows[i:i + WINDOW] for i in range(rows.shape[0] - WINDOW + 1)]).astype("float32")
    expected = model.predict(windows, verbose=0)[:, 0]
    for name in ("tflite-float32", "onnx-float32"):
        predictor = StreamingPredictor.load(own_window_bundle, name)
        got = predictor.run(rows)
        assert np.isnan(got[:WINDOW - 1]).all()
        assert np.max(np.abs(got[WINDOW - 1:] - expected)) <= 1e-4 * np.ptp(expected), name


def test_manifest_records_columns_and_ranges(own_window_bundle):
    manifest = json.loads((own_window_bundle / "manifest.json").read_text())
    columns = manifest["columns"]
    assert [c["name"] for c in columns["inputs"]] == ["a", "b", "c"]
    assert columns["outputs"] == [{"target": "c", "step": 1, "source": 2, "relative": False, "offset": 0.0,
                                   "divisor": 1.0}]
    low, high = zip(*(c["range"] for c in columns["inputs"]))
    assert low[1] < -0.5 and high[1] > 0.5  # b's own range, not a's
    assert manifest["variants"]["tflite-int8"]["inputs"][0]["shape"] == [1, WINDOW, 3]


def test_verify_passes_every_variant_on_the_stored_reference(own_window_bundle):
    from edgernn.verification import verify

    result = verify(own_window_bundle, reference="stored")
    assert result.passed, [(r.variant, r.reasons) for r in result.variants]
    rows = {r.variant: r for r in result.variants}
    assert rows["tflite-int8"].vs_float["nrmse_pct"] <= 2.0
    assert set(result.outputs) == {"c"}
    # the model beats carrying c's last value forward
    assert result.outputs["c"]["float_rmse"] < result.outputs["c"]["persistence_rmse"]


def test_streaming_targets_by_horizon(streaming_bundle):
    bundle, model, rows = streaming_bundle
    predictor = StreamingPredictor.load(bundle, "tflite-float32")
    assert predictor.output_shape == (2, 2)
    first = predictor.step(rows[0])
    assert first.shape == (2, 2)
    got = np.stack([first] + [predictor.step(r) for r in rows[1:200]])  # [200, 2, 2]
    expected = np.asarray(model.predict(rows[None, :200].astype("float32"), verbose=0))[0]  # [200, 4]
    assert np.max(np.abs(got.reshape(200, 4) - expected)) <= 1e-4 * np.ptp(expected)


def test_many_streams_equal_lone_predictors(streaming_bundle):
    bundle, _, rows = streaming_bundle
    for name in ("tflite-int8", "onnx-float32"):
        many = StreamingPredictor.load(bundle, name, streams=3)
        lone = [StreamingPredictor.load(bundle, name) for _ in range(3)]
        for t in range(60):
            batch = np.stack([rows[t], rows[t + 100], rows[t + 200]])
            out = many.step(batch)
            assert out.shape == (3, 2, 2)
            for s in range(3):
                np.testing.assert_allclose(out[s], lone[s].step(batch[s]), rtol=0, atol=1e-6)
        assert many.stats["out_of_range"].shape == (3, 2)


def test_rows_with_a_gap_and_wrong_shapes(streaming_bundle, tmp_path):
    bundle, _, rows = streaming_bundle
    predictor = StreamingPredictor.load(bundle, "tflite-float32")
    predictor.run(rows[:20])
    state = predictor.state
    assert np.isnan(predictor.step([np.nan, 1.0])).all()  # a row with a value missing is skipped
    for key, value in predictor.state.items():
        np.testing.assert_array_equal(value, state[key])
    with pytest.raises(EdgernnError, match="2 number"):
        predictor.step([1.0, 2.0, 3.0])
    predictor.save_state(tmp_path / "s.npz")
    again = StreamingPredictor.load(bundle, "tflite-float32")
    again.load_state(tmp_path / "s.npz")
    np.testing.assert_array_equal(again.step(rows[20]), predictor.step(rows[20]))


def test_own_model_needs_its_columns_named(window_model, tmp_path):
    import edgernn

    path, _, rows = window_model
    with pytest.raises(ExportError, match="takes 3 features per step: give --columns"):
        edgernn.export(path, tmp_path / "b", calibration_data=rows, verify=False, quiet=True)
    with pytest.raises(ExportError, match="names 2 column"):
        edgernn.export(path, tmp_path / "b", calibration_data=rows, columns="a,b", verify=False, quiet=True)
    with pytest.raises(ExportError, match="rows of 3 values"):
        edgernn.export(path, tmp_path / "b", calibration_data=rows[:, :2], columns="a,b,c", verify=False,
                       quiet=True)
    assert not (tmp_path / "b").exists()


def test_crafted_columns_are_refused(own_window_bundle):
    manifest = json.loads((own_window_bundle / "manifest.json").read_text())
    for change in (
        lambda m: m["columns"]["outputs"][0].update(source=7),
        lambda m: m["columns"]["outputs"][0].update(step=2),  # a horizon with step 1 missing
        lambda m: m["columns"]["inputs"].pop(),  # 2 columns for a 3-feature tensor
        lambda m: m["columns"]["inputs"][0].update(divisor=0),
        lambda m: m["columns"]["inputs"][1].update(name="a"),
        lambda m: m["columns"]["outputs"][0].update(relative=True, source=None),
    ):
        crafted = json.loads(json.dumps(manifest))
        change(crafted)
        with pytest.raises(BundleError):
            parse_manifest(crafted)


def test_univariate_manifest_has_no_columns(sine_bundle):
    assert "columns" not in json.loads((sine_bundle / "manifest.json").read_text())


def _csv(path, rows, header="a,b"):
    lines = ([header] if header else []) + [",".join(f"{v:.6f}" for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_stream_reads_rows_and_writes_a_row_per_line(streaming_bundle, runner, tmp_path):
    from edgernn.cli.commands import cli

    bundle, _, rows = streaming_bundle
    rows = np.round(rows[:30], 6)
    source = _csv(tmp_path / "in.csv", rows)
    result = runner.invoke(cli, ["stream", str(bundle), str(source), "--variant", "tflite-float32"])
    assert result.exit_code == 0, result.output
    got = np.array([[float(v) for v in line.split(",")] for line in result.stdout.splitlines()])
    expected = StreamingPredictor.load(bundle, "tflite-float32").run(rows).reshape(30, 4)
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-7)
    result = runner.invoke(cli, ["stream", str(bundle), str(source), "--variant", "tflite-float32", "--json-lines"])
    first = json.loads(result.stdout.splitlines()[0])
    assert list(first) == ["a+1", "a+2", "b+1", "b+2"]


def test_stream_reads_a_header_in_another_order_by_name(streaming_bundle, runner, tmp_path):
    from edgernn.cli.commands import cli

    bundle, _, rows = streaming_bundle
    rows = np.round(rows[:5], 6)
    source = _csv(tmp_path / "in.csv", rows[:, ::-1], header="b,a")
    result = runner.invoke(cli, ["stream", str(bundle), str(source), "--variant", "tflite-float32"])
    assert result.exit_code == 0, result.output
    got = np.array([[float(v) for v in line.split(",")] for line in result.stdout.splitlines()])
    expected = StreamingPredictor.load(bundle, "tflite-float32").run(rows).reshape(5, 4)
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-7)


def test_export_cli_names_what_is_missing(window_model, runner, tmp_path):
    from edgernn.cli.commands import cli

    path, _, rows = window_model
    np.save(tmp_path / "rows.npy", rows)
    result = runner.invoke(cli, ["export", str(path), "--out", str(tmp_path / "b"), "--calibration-data",
                                 str(tmp_path / "rows.npy")])
    assert result.exit_code == 2 and "give --columns" in result.output
    assert not (tmp_path / "b").exists()


def test_altered_columns_are_caught_by_the_host_verify(streaming_bundle, tmp_path):
    """On a host the float model is decoded with the manifest's columns, so the manifest must reproduce the
    outputs stored at export (a user's own model: the manifest is its only description)."""
    import shutil

    from edgernn.verification import verify

    bundle, _, rows = streaming_bundle
    altered = tmp_path / "altered"
    shutil.copytree(bundle, altered)
    manifest = json.loads((altered / "manifest.json").read_text())
    manifest["columns"]["outputs"][0]["offset"] = 0.5
    (altered / "manifest.json").write_text(json.dumps(manifest))
    np.savetxt(tmp_path / "rows.csv", rows, delimiter=",", header="a,b", comments="")
    with pytest.raises(BundleError, match="do not reproduce the float model's outputs stored at export"):
        verify(altered, data=tmp_path / "rows.csv", steps=200)
    assert verify(bundle, data=tmp_path / "rows.csv", steps=200).variants  # the bundle as exported is measured
