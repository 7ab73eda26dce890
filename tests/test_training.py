"""Real (small) training runs: the classic exercise, a streaming sine, CSVs with gaps, determinism."""

import re

import numpy as np
import pytest

import edgernn
from edgernn.errors import DataError, ModelError
from edgernn.training.modeling import load_model


def test_classic_counting_exercise_predicts_100(tmp_path):
    result = edgernn.train("counting", tmp_path / "c.keras", window=10, epochs=200, seed=0, quiet=True)
    assert result.preprocessing.difference  # the trend test picks differencing for a ramp
    prediction = edgernn.predict(tmp_path / "c.keras", np.arange(90, 100))
    assert prediction.shape == (1,)
    assert abs(prediction[-1] - 100) <= 1


def test_streaming_sine_beats_persistence(sine_model):
    metrics = sine_model.metrics
    assert not sine_model.preprocessing.difference  # a level series is not differenced
    assert metrics["test_rmse"] < 0.8 * metrics["persistence_rmse"]


def test_saved_model_round_trips_with_metadata(sine_model):
    model, metadata = load_model(sine_model.model_path)  # safe_mode=True
    assert metadata.mode == "streaming" and metadata.preprocessing == sine_model.preprocessing
    values = metadata.test_values
    from_path = edgernn.predict(sine_model.model_path, values)
    from_memory = edgernn.predict(sine_model, values)
    assert from_path.shape == values.shape
    np.testing.assert_allclose(from_path, from_memory, rtol=1e-5, atol=1e-6)


def test_same_seed_same_weights(tmp_path):
    a = edgernn.train("sine", None, units=4, epochs=2, seed=3, quiet=True)
    b = edgernn.train("sine", None, units=4, epochs=2, seed=3, quiet=True)
    for wa, wb in zip(a.model.get_weights(), b.model.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_csv_with_gaps_trains(tmp_path):
    t = np.arange(400)
    values = np.sin(t / 6.0).round(4).astype(str)
    values[[5, 50, 51, 300]] = ["", "NA", "NaN", ""]
    path = tmp_path / "gaps.csv"
    path.write_text("t,level\n" + "\n".join(f"{i},{v}" for i, v in zip(t, values)) + "\n")
    result = edgernn.train(str(path), tmp_path / "g.keras", time_column="t", units=4, epochs=2, quiet=True)
    assert result.metadata["data"]["filled"] == 4
    assert np.isfinite(result.metrics["test_rmse"])
    assert (tmp_path / "g.keras").exists()


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"data": "counting", "window": 0}, ModelError, "window must be at least 1"),
        ({"data": "counting", "units": 0}, ModelError, "units must be at least 1"),
        ({"data": "counting", "window": 90}, DataError, "too few for window 90"),
    ],
    ids=["window-0", "units-0", "too-short"],
)
def test_bad_options(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        edgernn.train(out=tmp_path / "x.keras", quiet=True, **kwargs)
    assert not (tmp_path / "x.keras").exists()


def test_constant_series_is_refused(tmp_path):
    path = tmp_path / "flat.csv"
    path.write_text("v\n" + "5\n" * 100)
    with pytest.raises(DataError, match="constant"):
        edgernn.train(str(path), tmp_path / "x.keras", quiet=True)


def test_a_model_that_loses_to_persistence_is_blended_into_it(tmp_path):
    """A fat-tailed random walk, where a briefly trained network only adds noise to the latest value: the model
    is trained again as a one-column table whose output is persistence plus the network's share, fitted on
    validation, and kept; it is then persistence at worst, on validation by construction and on test within
    1 %, and a device streams it with plain numbers."""
    from edgernn.runtime import StreamingPredictor

    walk = np.cumsum(np.random.default_rng(1).standard_t(3, size=1500)) * 0.01 + 5
    data = tmp_path / "walk.npy"
    np.save(data, walk)
    result = edgernn.train(str(data), tmp_path / "walk.keras", epochs=3, quiet=True)
    metrics = result.metrics
    assert result.columns.named and result.columns.univariate  # the blend was kept
    assert metrics["val_rmse"] <= metrics["val_persistence_rmse"] * (1 + 1e-9)
    assert metrics["test_rmse"] <= metrics["persistence_rmse"] * 1.01
    bundle = edgernn.export(result.model_path, tmp_path / "bundle", variants="tflite-float32", quiet=True,
                            verify=False).bundle
    predictor = StreamingPredictor.load(bundle, variant="tflite-float32", backend="numpy")
    predictions = [predictor.step(float(value)) for value in walk[-50:]]
    assert np.isnan(predictions[0]) and np.all(np.isfinite(predictions[1:]))
    one = predictor.manifest.columns.one_value()  # F = K = H = 1: firmware reads its numbers from the header
    from click.testing import CliRunner

    from edgernn.cli.commands import cli

    written = CliRunner().invoke(cli, ["c-array", str(bundle), "--variant", "tflite-float32", "--out",
                                       str(tmp_path / "c")])
    assert written.exit_code == 0, written.output
    header = (tmp_path / "c" / "edgernn_model.h").read_text()
    macros = dict(re.findall(r"#define EDGERNN_MODEL_(\w+) (\S+)", header))
    assert [float(macros[k]) for k in ("OFFSET", "DIVISOR", "OUTPUT_OFFSET", "OUTPUT_DIVISOR")] == list(one.numbers)
    assert (macros["DIFFERENCE"], macros["RELATIVE"]) == (str(int(one.difference)), str(int(one.relative)))
