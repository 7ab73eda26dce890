"""Shared fixtures: small real models trained once per session, and a click runner."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent / "runtime"))  # helpers shared with the runtime tests


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def sine_model(model_dir):
    """A small streaming SimpleRNN on the built-in sine, saved with its metadata."""
    import edgernn

    return edgernn.train("sine", model_dir / "sine.keras", units=16, epochs=20, lr=0.005, seed=0, quiet=True)


@pytest.fixture(scope="session")
def sine_bundle(sine_model, model_dir):
    """All seven variants of the small sine model."""
    import edgernn

    return edgernn.export(sine_model.model_path, model_dir / "sine-bundle", quiet=True, verify=False).bundle


@pytest.fixture(scope="session", params=["gru", "lstm"])
def cell_model(request, model_dir):
    """Tiny streaming GRU and LSTM models (two layers for LSTM, to exercise stacked states)."""
    import edgernn

    layers = 2 if request.param == "lstm" else 1
    return edgernn.train("sine", model_dir / f"{request.param}.keras", cell=request.param, units=8, layers=layers,
                         epochs=3, lr=5e-3, seed=0, quiet=True)


@pytest.fixture(scope="session")
def window_bundle(model_dir):
    """A tiny unrolled window model (counting, window 10) exported to float32 and int8 TFLite."""
    import edgernn

    trained = edgernn.train("counting", model_dir / "window.keras", window=10, units=8, epochs=3, seed=0, quiet=True)
    return edgernn.export(trained.model_path, model_dir / "window-bundle", variants="tflite-float32,tflite-int8",
                          quiet=True, verify=False).bundle
