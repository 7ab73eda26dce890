"""Shared fixtures: small real models trained once per session, and a click runner."""

from __future__ import annotations

import pytest
from click.testing import CliRunner


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
