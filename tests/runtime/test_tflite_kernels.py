"""Which TFLite kernels run a model, and the fallback to reference kernels.

tflite-runtime 2.14's aarch64 build crashes running int8 FULLY_CONNECTED with per-channel weights for some
layer shapes and any batch above 1 (the 2-layer LSTM step model; 8 streams): its backend then runs TFLite's
reference kernels and says so. Bundles exported with ``--int8-weights per-tensor`` avoid the crash. These
tests hold on every machine; the aarch64 CI stage is where the fallback is exercised.
"""

from __future__ import annotations

import platform

import numpy as np
import pytest

from edgernn.runtime import StreamingPredictor
from edgernn.runtime.backends import backend_class, installed
from edgernn.runtime.backends.io_order import tensor_order
from edgernn.runtime.bundle import Bundle

TFLITE = ["litert", "tflite-runtime"]  # the device interpreters of .tflite files
TFLITE_BACKENDS = [b for b in TFLITE if b in installed()]
needs_tflite = pytest.mark.skipif(not TFLITE_BACKENDS, reason="no TFLite interpreter installed")
AARCH64_TFLITE_RUNTIME_FALLBACK = "running its reference kernels"


def nrmse(a, b):
    return float(np.sqrt(np.nanmean((a - b) ** 2)) / np.nanmax(np.ptp(b, axis=0)))


def _needs(backend: str) -> None:
    if backend not in installed():
        pytest.skip(f"{backend} is not installed here")


@pytest.mark.parametrize("backend", TFLITE)
@pytest.mark.parametrize("streams", [1, 8])
@pytest.mark.parametrize("name", ["sine", "gru", "lstm"])
def test_int8_runs_on_every_tflite_interpreter(bundles, sine_values, name, streams, backend):
    """Every int8 step model runs, one stream or eight, on every installed TFLite interpreter, tracking float."""
    _needs(backend)
    values = np.stack([sine_values[:400] * (1 + 0.05 * i) for i in range(streams)], axis=1).squeeze()
    reference = StreamingPredictor.load(bundles[name], "tflite-float32", backend="numpy", streams=streams).run(values)
    predictor = StreamingPredictor.load(bundles[name], "tflite-int8", backend=backend, streams=streams)
    assert nrmse(predictor.run(values), reference) < 0.03
    if backend == "tflite-runtime" and platform.machine() == "aarch64":
        if name == "lstm":  # the crash this fallback exists for
            assert AARCH64_TFLITE_RUNTIME_FALLBACK in predictor.backend_note
    else:
        assert predictor.backend_note is None


@pytest.mark.parametrize("backend", TFLITE)
@pytest.mark.parametrize("streams", [1, 8])
def test_per_tensor_int8_runs_on_the_optimized_kernels_everywhere(bundles, sine_values, streams, backend):
    """The LSTM exported with --int8-weights per-tensor needs no fallback, on any interpreter or machine."""
    _needs(backend)
    values = np.stack([sine_values[:400] * (1 + 0.05 * i) for i in range(streams)], axis=1).squeeze()
    bundle = bundles["lstm-per-tensor"]
    reference = StreamingPredictor.load(bundle, "tflite-float32", backend="numpy", streams=streams).run(values)
    predictor = StreamingPredictor.load(bundle, "tflite-int8", backend=backend, streams=streams)
    assert nrmse(predictor.run(values), reference) < 0.03
    assert predictor.backend_note is None


def _backend(bundle, variant, backend, kernels):
    opened = Bundle.open(bundle)
    entry = opened.variant(variant)
    return backend_class(backend)(opened.read(variant), entry, 1, kernels=kernels), entry


@needs_tflite
@pytest.mark.parametrize("name", ["sine", "lstm"])
def test_reference_kernels_compute_what_the_optimized_ones_do(bundles, name):
    """Single steps on the same random int8 inputs: reference and builtin kernels round a few elements
    differently (measured: 0.3-0.6 % of elements, by at most 3 steps), nothing more."""
    backend = TFLITE_BACKENDS[0]  # litert where installed: its optimized kernels run these models everywhere
    if backend == "tflite-runtime" and platform.machine() == "aarch64":
        pytest.skip("tflite-runtime's optimized int8 kernels crash here; nothing to compare with")
    reference, entry = _backend(bundles[name], "tflite-int8", backend, "reference")
    builtin, _ = _backend(bundles[name], "tflite-int8", backend, "builtin")
    assert (reference.kernels, builtin.kernels) == ("reference", "builtin")
    rng = np.random.default_rng(0)
    names, _ = tensor_order(entry)
    differences = []
    for _ in range(200):
        inputs = [rng.integers(-128, 128, entry.input(n).shape).astype(np.int8) for n in names]
        differences += [np.abs(a.astype(int) - b.astype(int)).ravel()
                        for a, b in zip(reference.run(inputs), builtin.run(inputs))]
    differences = np.concatenate(differences)
    assert differences.max() <= 4 and np.mean(differences > 0) < 0.02


@needs_tflite
def test_explicit_kernels_are_used_without_a_note(bundles):
    backend, _ = _backend(bundles["sine"], "tflite-int8", TFLITE_BACKENDS[-1], "reference")
    assert backend.kernels == "reference" and backend.note is None


@pytest.mark.skipif(platform.machine() != "aarch64" or "tflite-runtime" not in installed(),
                    reason="the fallback happens with tflite-runtime 2.14 on aarch64")
def test_the_fallback_is_reported_by_verify_and_stream(runner, bundles):
    from edgernn.cli.commands import cli

    lstm = str(bundles["lstm"])
    result = runner.invoke(cli, ["verify", lstm, "--variants", "tflite-int8", "--backend", "tflite-runtime"])
    assert result.exit_code == 0 and AARCH64_TFLITE_RUNTIME_FALLBACK in result.stdout, result.output
    result = runner.invoke(cli, ["stream", lstm, "--variant", "tflite-int8", "--backend", "tflite-runtime"],
                           input="0.1\n0.2\n0.3\n")
    assert result.exit_code == 0 and len(result.stdout.split()) == 3
    assert result.stderr.startswith("note: ") and AARCH64_TFLITE_RUNTIME_FALLBACK in result.stderr
