"""Real conversions, run by the real interpreters: the step models must reproduce Keras' full sequence."""

import json

import numpy as np
import pytest

import edgernn
from built_once import exported_once, trained_once
from edgernn.data.series import load_series
from edgernn.cli.commands import cli
from edgernn.errors import ExportError, ModelError
from edgernn.training.modeling import load_model
from edgernn.runtime.file_digest import sha256_file
from edgernn.runtime.manifest_reader import read_manifest
from edgernn.runtime.variants import ALL_VARIANTS

STEPS = 1200


def keras_sequence(model_path, z):
    model, _ = load_model(model_path)
    return model.predict(z[None, :, None].astype(np.float32), verbose=0)[0, :, 0]


def run_tflite(path, manifest, z):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner("serving_default")
    states = {name: np.zeros((1, units), np.float32) for name, units in manifest.model.state_inputs()}
    ys = []
    for value in z:
        out = runner(x=np.array([[value]], np.float32), **states)
        ys.append(float(out["y"][0, 0]))
        states = {name: out[f"{name}_out"] for name in states}
    return np.array(ys)


def run_onnx(path, manifest, z):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    states = {name: np.zeros((1, units), np.float32) for name, units in manifest.model.state_inputs()}
    ys = []
    for value in z:
        out = dict(zip(names, session.run(None, {"x": np.array([[value]], np.float32), **states})))
        ys.append(float(out["y"][0, 0]))
        states = {name: out[f"{name}_out"] for name in states}
    return np.array(ys)


def series_inputs(manifest, steps=STEPS):
    return manifest.preprocessing.transform(load_series("sine").values)[:steps]


def assert_golden(bundle, variants=("tflite-float32", "onnx-float32")):
    """Step model, state carried over 1,200 steps == Keras over the whole sequence, within 1e-5 of range."""
    manifest = read_manifest(bundle)
    z = series_inputs(manifest)
    reference = keras_sequence(bundle / "model.keras", z)
    span = np.ptp(reference)
    for name in variants:
        path = bundle / manifest.variants[name].file
        stepped = (run_tflite if name.startswith("tflite") else run_onnx)(path, manifest, z)
        assert np.max(np.abs(stepped - reference)) <= 1e-5 * span, name


def test_all_seven_variants_hashed_and_sized(sine_bundle):
    manifest = read_manifest(sine_bundle)
    assert sorted(manifest.variants) == sorted(ALL_VARIANTS)
    for name, entry in manifest.variants.items():
        path = sine_bundle / entry.file
        assert sha256_file(path) == entry.sha256 and path.stat().st_size == entry.size_bytes, name
    assert manifest.variants["tflite-int8"].input("x").dtype == "int8"
    assert manifest.variants["tflite-int8"].output("h0_out").scale == pytest.approx(1 / 128)
    # both state calibrations were built and measured; the note says which was kept and why
    assert "NRMSE vs float over 2000 steps" in manifest.variants["tflite-int8"].notes
    assert manifest.variants["onnx-float32"].converter["opset"] == 17
    assert manifest.model.mode == "streaming" and manifest.model.state_inputs() == [("h0", 16)]
    assert manifest.variants["tflite-float32"].state_pairs == [["h0", "h0_out"]]
    data = json.loads((sine_bundle / "manifest.json").read_text())
    assert data["schema_version"] == 1 and data["files"]["reference"]["file"] == "model.keras"


def test_int8_is_well_under_half_of_float32_for_50_units(built):
    result = trained_once(built, data="sine", units=50, epochs=1)
    manifest = read_manifest(exported_once(built, result.model_path, variants="tflite-float32,tflite-int8",
                                           verify=False))
    float32, int8 = (manifest.variants[v].size_bytes for v in ("tflite-float32", "tflite-int8"))
    weights = 4 * (50 * 1 + 50 * 50 + 50 + 50 * 1 + 1)  # float32 bytes of the SimpleRNN(50) + Dense(1) weights
    assert weights < float32 < 1.5 * weights  # the weights, and a bounded graph around them
    assert int8 < 0.6 * float32


def test_simple_rnn_golden_step_vs_sequence(sine_bundle):
    assert_golden(sine_bundle)


def test_gru_and_lstm_golden_step_vs_sequence(cell_model, model_dir):
    bundle = model_dir / f"{cell_model.metadata['cell']}-bundle"
    edgernn.export(cell_model.model_path, bundle, variants="tflite-float32,onnx-float32", quiet=True, verify=False)
    assert_golden(bundle)


def test_window_model_exports_unrolled(tmp_path):
    result = edgernn.train("counting", tmp_path / "c.keras", window=10, epochs=3, quiet=True)
    manifest = edgernn.export(result.model_path, tmp_path / "b", variants="tflite-float32,tflite-int8",
                              quiet=True, verify=False).manifest
    assert manifest.model.mode == "window" and manifest.model.window == 9 and manifest.model.raw_window == 10
    assert manifest.variants["tflite-float32"].input("x").shape == [1, 9, 1]


def test_unsupported_model_names_the_layer(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((None, 1)), keras.layers.Bidirectional(
        keras.layers.SimpleRNN(4, return_sequences=True), name="both_ways"), keras.layers.Dense(1)])
    model.save(tmp_path / "bi.keras")
    with pytest.raises(ModelError, match="layer 'both_ways' \\(Bidirectional\\) is not supported"):
        edgernn.export(tmp_path / "bi.keras", tmp_path / "b", calibration_data="sine", quiet=True, verify=False)
    assert not (tmp_path / "b").exists()


def test_existing_output_is_refused_then_replaced_with_force(sine_model, tmp_path):
    out = tmp_path / "b"
    edgernn.export(sine_model.model_path, out, variants="tflite-float32", quiet=True, verify=False)
    (out / "keep").write_text("old")
    with pytest.raises(ExportError, match="already exists; use --force"):
        edgernn.export(sine_model.model_path, out, variants="tflite-float32", quiet=True, verify=False)
    assert (out / "keep").exists()
    edgernn.export(sine_model.model_path, out, variants="tflite-float32", force=True, quiet=True, verify=False)
    assert not (out / "keep").exists() and (out / "manifest.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["b"]  # no staging or old directories left behind


@pytest.mark.parametrize("case", ["missing", "not-keras", "exists"])
def test_cli_export_errors_exit_2(runner, sine_model, tmp_path, case):
    model = str(sine_model.model_path)
    out = tmp_path / "b"
    if case == "missing":
        model = str(tmp_path / "nope.keras")
    elif case == "not-keras":
        model = str(tmp_path / "x.keras")
        (tmp_path / "x.keras").write_text("hello")
    else:
        out.mkdir()
    result = runner.invoke(cli, ["export", model, "--out", str(out), "--variants", "tflite-float32"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_per_tensor_int8_weights_are_recorded_and_pass_the_gate(runner, sine_model, sine_bundle, tmp_path):
    """--int8-weights per-tensor: one scale per weight tensor in the file, said in the manifest, verify passes."""
    from ai_edge_litert.interpreter import Interpreter

    bundle = tmp_path / "per-tensor"
    result = runner.invoke(cli, ["export", str(sine_model.model_path), "--out", str(bundle),
                                 "--variants", "tflite-float32,tflite-int8", "--int8-weights", "per-tensor"])
    assert result.exit_code == 0, result.output
    assert "all variants pass" in result.stdout
    scales = {}
    for name, b in (("per-tensor", bundle), ("per-channel", sine_bundle)):
        entry = read_manifest(b).variants["tflite-int8"]
        assert entry.converter["int8_weights"] == name
        interpreter = Interpreter(model_path=str(b / entry.file))
        scales[name] = max(len(t["quantization_parameters"]["scales"]) for t in interpreter.get_tensor_details())
    assert scales == {"per-tensor": 1, "per-channel": 16}  # 16 units: one scale per output channel


def test_unknown_int8_weights_is_refused(runner, sine_model, tmp_path):
    result = runner.invoke(cli, ["export", str(sine_model.model_path), "--out", str(tmp_path / "b"),
                                 "--int8-weights", "per-row"])
    assert result.exit_code == 2 and "per-row" in result.output and not (tmp_path / "b").exists()
    with pytest.raises(ExportError, match="int8_weights must be one of"):
        edgernn.export(sine_model.model_path, tmp_path / "b", int8_weights="per-row", quiet=True, verify=False)


def test_calibration_covers_the_whole_series_not_its_first_steps(sine_model, tmp_path):
    """A calibration series whose highest and lowest values come after its first thousand steps: the int8
    input tensor still represents them (the samples are spread over the whole series, its extremes among them),
    so a later week that reaches them is not clipped."""
    values = np.sin(np.arange(3000) * 0.1)
    values[2500], values[2700] = 1.6, -1.4  # beyond anything in the first 2,000 steps
    data = tmp_path / "late_extremes.npy"
    np.save(data, values)
    manifest = edgernn.export(sine_model.model_path, tmp_path / "bundle", variants="tflite-int8",
                              calibration_data=str(data), calibration_steps=200, verify=False, quiet=True).manifest
    low, high = manifest.preprocessing.transform(np.array([-1.4, 1.6]))
    assert manifest.input_range == pytest.approx([low, high], rel=1e-5)
    limits = manifest.variants["tflite-int8"].input_limits
    half_step = (limits[1] - limits[0]) / 255 / 2  # the zero point is rounded to a code: within half a step
    assert limits[0] <= low + half_step and limits[1] >= high - half_step
    assert manifest.calibration.steps == 3000 and 200 <= manifest.calibration.samples <= 204


def test_default_calibration_is_the_training_and_validation_splits(sine_model, tmp_path):
    """What validation reached beyond training is inside the integer range (never the test split)."""
    manifest = edgernn.export(sine_model.model_path, tmp_path / "bundle", variants="tflite-int8", verify=False,
                              quiet=True).manifest
    split = sine_model.metadata["data"]["split"]
    assert manifest.calibration.source == "training and validation data"
    assert manifest.calibration.steps == split["val_end"] - manifest.preprocessing.lag
