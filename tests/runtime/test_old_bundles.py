"""Bundles written by earlier edgernn releases still load and give the predictions they gave then.

``tests/data/old-bundles/NAME`` is such a bundle, and ``NAME.expected.npz`` what the numpy backend predicted from it
(float32 cell equations: the same everywhere) when it was added here. A change to the manifest, the bundle reader
or the predictor that alters an old bundle's numbers fails here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgernn.runtime import StreamingPredictor

OLD = Path(__file__).resolve().parents[1] / "data" / "old-bundles"
VALUES = np.concatenate([np.linspace(-1.5, 1.5, 150), np.sin(np.arange(150) / 6.4)])


def expected_predictions(bundle: Path) -> np.ndarray:
    with np.load(OLD / f"{bundle.name}.expected.npz") as stored:
        np.testing.assert_array_equal(stored["values"], VALUES)
        return stored["predictions"]


@pytest.mark.parametrize("bundle", sorted(p for p in OLD.iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_an_old_bundle_gives_the_predictions_it_gave_then(bundle):
    out = StreamingPredictor.load(bundle, "tflite-float32", backend="numpy").run(VALUES)
    expected = expected_predictions(bundle)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5 * np.ptp(expected))


if __name__ == "__main__":  # records what the numpy backend predicts from each old bundle today
    for path in sorted(p for p in OLD.iterdir() if p.is_dir()):
        predictions = StreamingPredictor.load(path, "tflite-float32", backend="numpy").run(VALUES)
        np.savez(OLD / f"{path.name}.expected.npz", values=VALUES, predictions=predictions)
