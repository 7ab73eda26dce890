import numpy as np
import pytest

from edgernn.verification.metrics import drift_ratio, error_metrics
from edgernn.verification import parse_thresholds
from edgernn.errors import EdgernnError


def test_error_metrics_known_answers():
    reference = np.array([0.0, 1.0, 2.0, 3.0, 4.0])  # range 4
    predicted = reference + np.array([0.0, 0.0, 0.0, 0.0, 2.0])
    m = error_metrics(predicted, reference)
    assert m["mae"] == pytest.approx(0.4)
    assert m["rmse"] == pytest.approx(np.sqrt(4 / 5))
    assert m["nrmse_pct"] == pytest.approx(100 * np.sqrt(4 / 5) / 4)
    assert m["max_abs"] == 2.0 and m["range"] == 4.0 and m["points"] == 5


def test_error_metrics_ignore_nan_warmup():
    m = error_metrics(np.array([np.nan, 1.0, 2.0]), np.array([0.0, 1.0, 3.0]))
    assert m["points"] == 2 and m["max_abs"] == 1.0


def test_drift_ratio_known_answers():
    reference = np.linspace(0, 1, 100)
    growing = reference + np.concatenate([np.full(10, 0.01), np.zeros(80), np.full(10, 0.03)])
    assert drift_ratio(growing, reference) == pytest.approx(3.0, rel=1e-3)
    assert drift_ratio(reference.copy(), reference) == pytest.approx(1.0)


def test_parse_thresholds():
    assert parse_thresholds(["tflite-int8=1.5"]) == {"tflite-int8": 1.5}
    with pytest.raises(EdgernnError, match="VARIANT=PERCENT"):
        parse_thresholds(["tflite-int8"])
