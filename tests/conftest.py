"""Shared fixtures: small real models trained once per session, and a click runner."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent / "runtime"))  # helpers shared with the runtime tests
# the c backend's compiled libraries (verify cross-checks on it) go to this run's directory, not the user's cache
os.environ.setdefault("EDGERNN_CACHE", tempfile.mkdtemp(prefix="edgernn-test-cache-"))
# TensorFlow in the workers and in every CLI subprocess on one thread: the suite's models are tiny, the workers
# already fill the cores, and a thread pool per process only spins (8 % of a train's CPU, measured)
for _threads in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")

from built_once import exported_once, run_root, trained_once  # noqa: E402


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: device venvs without xdist ignore it
def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker more than cores, since many tests wait on a broker, a subprocess or a compiler."""
    return (os.cpu_count() or 1) + 1


def pytest_configure(config):
    """``-n``: workers steal queued tests from each other at the end instead of each finishing its own share (the
    suite's long tests otherwise leave a core idle for its last minute; measured 4:46 against 5:07)."""
    if getattr(config.option, "dist", None) == "load":
        config.option.dist = "worksteal"


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """Where this run's workers share what they train and export (``built_once``)."""
    return run_root(tmp_path_factory)


@pytest.fixture(scope="session")
def sine_model(built):
    """A small streaming SimpleRNN on the built-in sine, saved with its metadata."""
    return trained_once(built, data="sine", units=16, epochs=20, lr=0.005)


@pytest.fixture(scope="session")
def sine_bundle(sine_model, built):
    """All seven variants of the small sine model."""
    return exported_once(built, sine_model.model_path, verify=False)


@pytest.fixture(scope="session", params=["gru", "lstm"])
def cell_model(request, built):
    """Tiny streaming GRU and LSTM models (two layers for LSTM, to exercise stacked states)."""
    stacked = {"layers": 2} if request.param == "lstm" else {}  # GRU: the runtime tests' "gru" bundle's model
    return trained_once(built, data="sine", cell=request.param, units=8, epochs=3, lr=0.005, baseline="none",
                        **stacked)


@pytest.fixture(scope="session")
def window_bundle(built):
    """A tiny unrolled window model (counting, window 10) exported to float32 and int8 TFLite."""
    trained = trained_once(built, data="counting", window=10, units=8, epochs=3, baseline="none")
    return exported_once(built, trained.model_path, variants="tflite-float32,tflite-int8", verify=False)

