"""Anomaly levels that spikes cannot inflate (issue 30): spikes in the validation split, which export calibrates
the intervals on, are left out of the quantile, so the default anomaly level still flags spikes on the device."""

from __future__ import annotations

import numpy as np
import pytest

from edgernn.data.series import chronological_split, sine_series
from edgernn.runtime import StreamingPredictor
from edgernn.runtime.manifest_reader import read_manifest
from edgernn.stream.lines import ANOMALY_LEVEL

SPIKE = 1.0  # about 15x the small model's residual spread on the sine (0.4 of its range)


def _spiked(values: np.ndarray, first: int, stop: int, count: int, rng) -> np.ndarray:
    """``count`` spike positions in [first, stop), at least 20 steps apart, alternating up and down."""
    positions = np.linspace(first + 10, stop - 10, count).astype(int)
    values[positions] += SPIKE * np.where(np.arange(count) % 2, -1.0, 1.0) * rng.uniform(0.8, 1.2, count)
    return positions


@pytest.fixture(scope="module")
def spiked_bundle(tmp_path_factory):
    """A small sine model whose validation split holds 6 spikes (each makes about two large residuals; four would
    set the 0.99 quantile of its 449), and the series with 8 more spikes in the test split."""
    import edgernn

    root = tmp_path_factory.mktemp("spiked")
    rng = np.random.default_rng(3)
    values = sine_series()
    split = chronological_split(values.size)
    _spiked(values, split.train_end, split.val_end, 6, rng)
    test_spikes = _spiked(values, split.val_end, split.length, 8, rng)
    np.save(root / "spiked.npy", values)
    model = edgernn.train(str(root / "spiked.npy"), root / "spiked.keras", units=16, epochs=20, lr=0.005, seed=0,
                          quiet=True)
    bundle = edgernn.export(model.model_path, root / "bundle", variants="tflite-float32,tflite-int8", quiet=True,
                            verify=False).bundle
    return bundle, values, split, test_spikes


@pytest.mark.parametrize("variant", ["tflite-float32", "tflite-int8"])
def test_the_default_level_flags_test_spikes_despite_validation_spikes(spiked_bundle, variant):
    bundle, values, split, test_spikes = spiked_bundle
    flags = StreamingPredictor.load(bundle, variant).monitor(ANOMALY_LEVEL).run(values)["anomaly"]
    assert flags[test_spikes].all(), np.flatnonzero(~flags[test_spikes])
    touched = np.zeros(values.size, dtype=bool)
    for spike in test_spikes:
        touched[spike: spike + 3] = True  # a spike and the two predictions made after seeing it
    clean = ~touched
    clean[: split.val_end] = False
    assert flags[clean].mean() <= 0.03, flags[clean].mean()
    # as edgernn stream --anomalies runs it: flagged readings fed clipped, so no spike echoes into a false flag
    cleaned = StreamingPredictor.load(bundle, variant).monitor(ANOMALY_LEVEL, clean=True).run(values)["anomaly"]
    assert cleaned[test_spikes].all() and cleaned[clean].sum() <= flags[clean].sum()
    # what made the difference: the validation spikes (and the predictions made after them) were left out
    assert "robust sigma left out" in read_manifest(bundle).variants[variant].intervals.source
