"""Trending series: differencing chosen by default, and out-of-range inputs caught by verify when it is not."""

import json

import numpy as np
import pytest

import edgernn
from edgernn.cli.commands import cli


@pytest.fixture(scope="module")
def trend_csv(tmp_path_factory):
    """A seeded sine on a linear ramp: the test part rises above anything in the training part."""
    t = np.arange(2000)
    rng = np.random.default_rng(1)
    values = 0.01 * t + np.sin(2 * np.pi * t / 40) + rng.normal(0, 0.05, t.size)
    path = tmp_path_factory.mktemp("trend") / "trend.csv"
    path.write_text("t,level\n" + "".join(f"{i},{v:.5f}\n" for i, v in zip(t, values)))
    return path


def test_auto_differences_a_trend_and_beats_persistence(runner, trend_csv, tmp_path):
    result = runner.invoke(cli, ["train", "--data", str(trend_csv), "--time-column", "t", "--units", "16",
                                 "--epochs", "20", "--lr", "0.005", "--out", str(tmp_path / "m.keras"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["preprocessing"]["difference"] is True
    assert "linear trend explains" in summary["difference_reason"]
    assert summary["test_rmse"] < summary["persistence_rmse"]


def test_level_series_is_not_differenced():
    result = edgernn.train("sine", None, units=4, epochs=1, quiet=True)
    assert result.preprocessing.difference is False


def test_without_differencing_verify_reports_out_of_range_and_int8_fails(runner, trend_csv, tmp_path):
    model = edgernn.train(str(trend_csv), tmp_path / "m.keras", time_column="t", difference="off", units=16,
                          epochs=5, lr=0.005, quiet=True)
    bundle = tmp_path / "b"
    edgernn.export(model.model_path, bundle, variants="tflite-float32,tflite-int8", quiet=True, verify=False)
    result = runner.invoke(cli, ["verify", str(bundle), "--steps", "1000", "--json"])
    assert result.exit_code == 1
    rows = {row["variant"]: row for row in json.loads(result.stdout)["variants"]}
    assert rows["tflite-int8"]["out_of_range_pct"] > 10 and rows["tflite-int8"]["clipped_pct"] > 1
    assert any("clipped by quantization" in reason for reason in rows["tflite-int8"]["reasons"])
    assert rows["tflite-float32"]["clipped_pct"] == 0  # float inputs are never clipped


def test_predictor_counts_out_of_range_steps(sine_bundle):
    from edgernn.runtime import StreamingPredictor

    predictor = StreamingPredictor.load(sine_bundle, "tflite-int8")
    predictor.run([0.1, 0.2, 50.0, 0.3])
    stats = predictor.stats
    assert stats["out_of_range"].tolist() == [1] and stats["clipped"].tolist() == [1]
    predictor.reset()
    assert predictor.stats["out_of_range"].tolist() == [0]
