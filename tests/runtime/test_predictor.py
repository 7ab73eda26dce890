"""StreamingPredictor on real exported bundles, driven by the real interpreters installed here."""

from __future__ import annotations

import platform

import numpy as np
import pytest

from edgernn.runtime import BackendError, BundleError, EdgernnError, StateError, StreamingPredictor
from edgernn.runtime.backends import BACKENDS, backend_class, computes_from_weights, formats_of, installed, runs
from edgernn.runtime.cell_table import CELLS
from edgernn.runtime.manifest import Mode
from edgernn.runtime.manifest_reader import read_manifest
from edgernn.runtime.variants import VARIANTS
from runtime_env import FLOAT32, INT8, bundle_of_cell, needs_interpreter

INTERPRETERS = [b for b in BACKENDS if not computes_from_weights(b) and b in installed()]
# parametrized over all: a skip names what is missing (numpy and c compute from the weights: not interpreters)
ALL_INTERPRETERS = [b for b in BACKENDS if not computes_from_weights(b)]
FLOAT32_VARIANTS = [name for name, spec in VARIANTS.items() if spec.float32]
# full-integer TFLite variants, each held to its own gate (NRMSE vs float, as a share of range)
INTEGER_TFLITE = [(name, spec.max_nrmse / 100) for name, spec in VARIANTS.items()
                  if spec.calibrated and spec.format == "tflite"]


def nrmse(a, b):
    return float(np.sqrt(np.mean((a - b) ** 2)) / np.ptp(b))


def _needs(backend: str):
    if backend not in installed():
        pytest.skip(f"{backend} is not installed here")
    return backend_class(backend)


def _float32_variant(cls) -> str:
    """The float32 variant a backend class runs (tflite-float32 or onnx-float32)."""
    return next(name for name in FLOAT32_VARIANTS if runs(cls, VARIANTS[name]))


@pytest.mark.parametrize("backend", ALL_INTERPRETERS)
@pytest.mark.parametrize("cell", list(CELLS))
def test_float32_backends_agree_with_numpy_cells(bundles, sine_values, cell, backend):
    """Every interpreter's float32 stepping equals the numpy cell equations within 1e-5 of range, every cell."""
    variant = _float32_variant(_needs(backend))
    bundle = bundle_of_cell(bundles, cell)
    reference = StreamingPredictor.load(bundle, variant, backend="numpy").run(sine_values)
    out = StreamingPredictor.load(bundle, variant, backend=backend).run(sine_values)
    assert np.max(np.abs(out - reference)) <= 1e-5 * np.ptp(reference)


@pytest.mark.parametrize("backend", [b for b in ALL_INTERPRETERS if "tflite" in formats_of(b)])
@pytest.mark.parametrize("variant, limit", INTEGER_TFLITE)
def test_integer_variants_track_float_on_every_tflite_interpreter(bundles, sine_values, variant, limit, backend):
    """Integer variants are compared with the float model, not bit for bit across interpreters."""
    _needs(backend)
    reference = StreamingPredictor.load(bundles["sine"], "tflite-float32", backend="numpy").run(sine_values)
    out = StreamingPredictor.load(bundles["sine"], variant, backend=backend).run(sine_values)
    assert nrmse(out, reference) <= limit


@pytest.mark.parametrize("variant", ["tflite-float32", "tflite-int8", "onnx-float32"])
def test_eight_streams_equal_eight_lone_predictors(bundles, sine_values, variant):
    backend = "onnxruntime" if variant.startswith("onnx") else "auto"
    if backend == "onnxruntime" and "onnxruntime" not in INTERPRETERS:
        pytest.skip("onnxruntime not installed")
    if backend == "auto" and not any(b in INTERPRETERS for b in ("litert", "tflite-runtime")):
        pytest.skip("no TFLite interpreter installed")
    values = np.stack([sine_values[:300] * (1 + 0.1 * i) + 0.05 * i for i in range(8)], axis=1)  # [steps, 8]
    many = StreamingPredictor.load(bundles["sine"], variant, backend=backend, streams=8)
    together = many.run(values)
    for i in range(8):
        lone = StreamingPredictor.load(bundles["sine"], variant, backend=backend)
        alone = lone.run(values[:, i])
        if lone.backend_note != many.backend_note:
            # tflite-runtime on aarch64 runs the batch of 8 on its reference kernels (its optimized ones crash)
            # and one stream on its optimized ones: they round a few elements differently, nothing more
            assert "reference kernels" in many.backend_note
            assert nrmse(together[:, i], alone) < 0.01
        elif "int8" in variant or platform.machine() == "x86_64":
            np.testing.assert_array_equal(together[:, i], alone)
        else:
            # aarch64 XNNPACK blocks a batch of 8 differently from a batch of 1 in float32 kernels: the sums
            # round differently by about one float32 ulp (integer kernels stay exact)
            np.testing.assert_allclose(together[:, i], alone, rtol=1e-6, atol=1e-6)


@needs_interpreter
def test_save_and_load_state_resume_exactly(bundles, sine_values, tmp_path):
    whole = StreamingPredictor.load(bundles["sine"], INT8).run(sine_values[:400])
    first = StreamingPredictor.load(bundles["sine"], INT8)
    head = first.run(sine_values[:250])
    first.save_state(tmp_path / "s.state")
    second = StreamingPredictor.load(bundles["sine"], INT8)
    second.load_state(tmp_path / "s.state")
    assert second.steps == 250
    if INT8 == "tflite-int8":
        assert second.state["h0"].dtype == np.int8  # the state in the model's own dtype
    tail = second.run(sine_values[250:400])
    np.testing.assert_array_equal(np.concatenate([head, tail]), whole)
    assert not list(tmp_path.glob(".*tmp"))  # no temp files left


@pytest.mark.portable
@needs_interpreter
def test_state_from_another_model_or_truncated_is_refused(bundles, tmp_path):
    sine = StreamingPredictor.load(bundles["sine"], FLOAT32)
    sine.step(0.3)
    sine.save_state(tmp_path / "s.state")
    with pytest.raises(StateError, match="belongs to another model"):
        StreamingPredictor.load(bundles["gru"], FLOAT32).load_state(tmp_path / "s.state")
    with pytest.raises(StateError, match="belongs to another variant"):
        StreamingPredictor.load(bundles["sine"], INT8).load_state(tmp_path / "s.state")
    data = (tmp_path / "s.state").read_bytes()
    (tmp_path / "t.state").write_bytes(data[: len(data) // 2])
    with pytest.raises(StateError, match="truncated"):
        sine.load_state(tmp_path / "t.state")


@needs_interpreter
def test_nan_policies(bundles):
    values = [0.1, 0.2, float("nan"), 0.3]
    skip = StreamingPredictor.load(bundles["sine"], FLOAT32, on_nan="skip")
    out = skip.run(values)
    assert np.isnan(out[2]) and np.isfinite(out[[0, 1, 3]]).all()
    clean = StreamingPredictor.load(bundles["sine"], FLOAT32).run([0.1, 0.2, 0.3])
    assert out[3] == clean[2]  # skip leaves the state untouched
    hold = StreamingPredictor.load(bundles["sine"], FLOAT32, on_nan="hold").run(values)
    held = StreamingPredictor.load(bundles["sine"], FLOAT32).run([0.1, 0.2, 0.2, 0.3])
    np.testing.assert_array_equal(hold, held)
    with pytest.raises(EdgernnError, match="non-finite input"):
        StreamingPredictor.load(bundles["sine"], FLOAT32, on_nan="raise").step(float("inf"))


def test_window_model_waits_for_a_full_buffer(bundles):
    predictor = StreamingPredictor.load(bundles["window"], FLOAT32)
    values = np.sin(np.arange(60) / 6.0)
    out = predictor.run(values)
    assert np.isnan(out[:9]).all() and np.isfinite(out[9:]).all()
    # the same windows through the numpy cell equations (an independent implementation) agree
    reference = StreamingPredictor.load(bundles["window"], FLOAT32, backend="numpy").run(values)
    np.testing.assert_allclose(out[9:], reference[9:], rtol=0, atol=1e-5 * np.ptp(reference[9:]))


@pytest.mark.portable
@needs_interpreter
def test_bad_bundles_give_one_line_errors(bundles, tmp_path):
    import json
    import shutil

    with pytest.raises(BundleError, match="bundle not found"):
        StreamingPredictor.load(tmp_path / "nope")
    with pytest.raises(BundleError, match="unknown variant 'tflite-int4'"):
        StreamingPredictor.load(bundles["sine"], "tflite-int4")
    copy = tmp_path / "copy"
    shutil.copytree(bundles["sine"], copy)
    float_file = json.loads((copy / "manifest.json").read_text())["variants"][FLOAT32]["file"]
    (copy / float_file).write_bytes(b"not the model")
    with pytest.raises(BundleError, match=f"sha256 check failed for {float_file}"):
        StreamingPredictor.load(copy, FLOAT32)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["variants"][INT8]["file"] = "../../etc/passwd"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="points outside the bundle"):
        StreamingPredictor.load(copy, INT8)
    (copy / "manifest.json").write_text(json.dumps(manifest)[:100])
    with pytest.raises(BundleError, match="not valid JSON"):
        StreamingPredictor.load(copy, INT8)


@pytest.mark.portable
def test_numpy_backend_refuses_integer_variants(bundles):
    with pytest.raises(BackendError, match="float32 variants only"):
        StreamingPredictor.load(bundles["sine"], "tflite-int8", backend="numpy")


@pytest.mark.parametrize("backend", [*ALL_INTERPRETERS, "numpy", "c"])
def test_float32_equals_the_exporting_machine(bundles, backend):
    """Every float32 backend here reproduces the exporting machine's predictions within 1e-5 of range."""
    cls = _needs(backend)
    reference_file = bundles.x86_reference()
    if reference_file is None:
        pytest.skip("no predictions from the exporting machine (EDGERNN_TEST_BUNDLES not set)")
    with np.load(reference_file) as stored:
        reference = {key: stored[key] for key in stored.files}
    values = reference.pop("values")
    compared = 0
    for key, expected in reference.items():
        name, variant = key.split("/")
        manifest = read_manifest(bundles[name]) if name in bundles else None
        if (manifest is None or not runs(cls, VARIANTS[variant]) or manifest.variants[variant].refused_by(backend)
                or (getattr(cls, "streaming_only", False) and manifest.model.mode is not Mode.STREAMING)):
            continue  # e.g. TFLM and the window model (recorded at export, with the reason)
        span = np.ptp(expected[np.isfinite(expected)])
        out = StreamingPredictor.load(bundles[name], variant, backend=backend).run(values)
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5 * span, err_msg=key)
        compared += 1
    assert compared >= 1


@needs_interpreter
@pytest.mark.parametrize("name", ["sine", "trend"])
@pytest.mark.parametrize("variant", [FLOAT32, INT8])
def test_streams_that_step_in_range_or_not_equal_lone_predictors(bundles, sine_values, name, variant):
    """Many streams take a shorter path while every input is finite and in range (issue 31): steps where some
    stream reads NaN or an out-of-range value go the long way; predictions and counts match lone predictors'.
    trend: differenced, so a stream's first value and the one after a NaN have no model input."""
    values = np.stack([sine_values[:120] * (1 + 0.1 * i) + 0.01 * np.arange(120) for i in range(4)], axis=1)
    values[30, 1] = np.nan
    values[50:53, 2] = np.nan
    values[70, 3] = 40.0  # far outside the calibrated range: counted, clipped
    values[90, :] = np.nan
    if variant not in read_manifest(bundles[name]).variants:
        pytest.skip(f"the {name} bundle has no {variant}")
    together = StreamingPredictor.load(bundles[name], variant, streams=4)
    out = together.run(values)
    for i in range(4):
        lone = StreamingPredictor.load(bundles[name], variant)
        alone = lone.run(values[:, i])
        if lone.backend_note != together.backend_note or variant == "onnx-int8":
            # tflite-runtime on aarch64 runs a batch on its reference kernels, one stream on its optimized ones;
            # onnx-int8 quantizes its activations per call, from the batch's range: close, not equal
            assert nrmse(out[:, i][np.isfinite(alone)], alone[np.isfinite(alone)]) < 0.02, i
        elif platform.machine() == "x86_64" or variant == "tflite-int8":
            np.testing.assert_array_equal(out[:, i], alone)
        else:  # aarch64 XNNPACK sums a batch in another order than one stream (about one float32 ulp)
            np.testing.assert_allclose(out[:, i], alone, rtol=1e-6, atol=1e-6, equal_nan=True)
        for key in ("out_of_range", "clipped"):
            assert together.stats[key][i] == lone.stats[key][0], (key, i)
    assert together.stats["out_of_range"][3] >= 1 and together.steps == 120


@pytest.mark.parametrize("streams", [1, 3])
def test_an_absurd_reading_is_held_off_not_a_crash_nor_a_nan_state(bundles, sine_values, streams):
    """1e308 is finite: it must not crash the quantizer (float -> int) nor become inf in float32 and a NaN state
    for good; it counts as out of range, and the stream carries on."""
    for variant in read_manifest(bundles["sine"]).variants:
        try:
            predictor = StreamingPredictor.load(bundles["sine"], variant, streams=streams)
        except BackendError:
            continue  # no interpreter for it here
        values = np.array([0.1, 1e308, -1e308, *sine_values[:20]])
        out = predictor.run(values if streams == 1 else np.repeat(values[:, None], streams, axis=1))
        assert np.isfinite(np.asarray(out)[-10:]).all(), variant  # the state did not turn NaN
        assert (predictor.stats["out_of_range"] >= 2).all(), variant
