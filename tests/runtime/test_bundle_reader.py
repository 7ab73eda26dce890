"""Crafted bundles, one case each: the README's bad-bundle rows run through the real CLI and interpreters.

Every case ends in exit 2 and one ``error:`` line naming the file and the problem, never a traceback; a verify
that could verify nothing is an error too, never "all variants pass". No TensorFlow: ``--reference stored``.
"""

from __future__ import annotations

import os
import shutil
import threading

import numpy as np
import pytest

from bundle_edit import copy_bundle, entry_of, manifest_of, npz_arrays, npz_bytes, replace_file, run_cli, write_manifest
from edgernn.runtime import BackendError, BundleError, StreamingPredictor
from edgernn.runtime.backends import installed
from edgernn.runtime.bundle import MAX_FILE_BYTES, Bundle
from edgernn.runtime.manifest_reader import read_manifest

pytestmark = pytest.mark.portable  # untrusted input's error paths: Python alone decides them


def _manifest(change):
    def edit(bundle):
        manifest = manifest_of(bundle)
        change(manifest)
        write_manifest(bundle, manifest)
    return edit


def _text(change):
    def edit(bundle):
        path = bundle / "manifest.json"
        path.write_text(change(path.read_text()))
    return edit


def _weights(change):
    def edit(bundle):
        arrays = npz_arrays(bundle, "weights")
        change(arrays)
        replace_file(bundle, "weights", npz_bytes(**arrays))
    return edit


def _file(name, content):
    return lambda bundle: replace_file(bundle, name, content)


def _symlink(name, target_outside: bool):
    def edit(bundle):
        path = bundle / entry_of(manifest_of(bundle), name)["file"]
        real = (bundle.parent / f"outside-{path.name}") if target_outside else path.with_name(f"real-{path.name}")
        shutil.copy(path, real)
        path.unlink()
        os.symlink(real, path)
    return edit


def _set_layer(key, value):
    return _manifest(lambda m: m["model"]["layers"][0].__setitem__(key, value))


def _zip_bomb(bundle):
    import zipfile

    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("inputs.npy", b"\0" * (MAX_FILE_BYTES + 1))  # 256 MB of zeros deflate to ~256 KB
    replace_file(bundle, "reference_data", buffer.getvalue())


STREAM_NUMPY = ["stream", "{b}", "--variant", "tflite-float32", "--backend", "numpy"]
VERIFY_STORED = ["verify", "{b}", "--reference", "stored", "--steps", "50"]
# case: (edit, command, message); each is a row of the README's bad-input table
CASES = {
    "files is a list": (_manifest(lambda m: m.__setitem__("files", [])), VERIFY_STORED,
                        "manifest.json: manifest.files must be an object, got an array"),
    "manifest 100,000 deep": (_text(lambda t: "[" * 100_000 + "]" * 100_000), VERIFY_STORED,
                              "manifest.json: nested 100000 levels deep (at most 32)"),
    "manifest 5,000-digit integer": (_text(lambda t: t.replace('"schema_version": 1', '"schema_version": ' + "7" * 5000)),
                                     VERIFY_STORED, "manifest.json: a number with 5000 characters"),
    "manifest NaN": (_text(lambda t: t.replace('"input_range": [', '"input_range": [NaN, ')), VERIFY_STORED,
                     "manifest.json: NaN is not a JSON value"),
    "no variants": (_manifest(lambda m: m.__setitem__("variants", {})), VERIFY_STORED,
                    "manifest.json: variants is empty"),
    "unknown file role": (_manifest(lambda m: m["files"].__setitem__("extra", m["files"]["weights"])),
                          VERIFY_STORED, "unknown file role 'extra'"),
    "bad file hash syntax": (_manifest(lambda m: m["files"]["weights"].__setitem__("sha256", "abc")), VERIFY_STORED,
                             "files['weights'].sha256 is not a sha256 hex digest"),
    "unknown activation": (_set_layer("activation", "swish"), STREAM_NUMPY,
                           "model.layers[0].activation 'swish' is not one of tanh, sigmoid, relu"),
    "bad preprocessing": (_manifest(lambda m: m["preprocessing"].__setitem__("divisor", -1)), STREAM_NUMPY,
                          "manifest.json: preprocessing.divisor must be positive"),
    "bad converter record": (_manifest(lambda m: m["variants"]["tflite-int8"]["converter"].__setitem__(
        "int8_weights", "per-row")), VERIFY_STORED, "int8_weights 'per-row' is not one of per-channel, per-tensor"),
    "zero-byte reference.npz": (_file("reference_data", b""), VERIFY_STORED,
                                "reference.npz is not a readable .npz file"),
    "reference.npz without outputs": (lambda b: replace_file(b, "reference_data", npz_bytes(
        inputs=np.zeros(50, np.float32))), VERIFY_STORED, "reference.npz lacks 'outputs'"),
    "reference.npz of strings": (lambda b: replace_file(b, "reference_data", npz_bytes(
        inputs=np.array(["a"] * 50), outputs=np.zeros(50))), VERIFY_STORED,
        "reference.npz: 'inputs' holds <U1 values; expected floating point"),
    "reference.npz zip bomb": (_zip_bomb, VERIFY_STORED, "unpacks to"),
    "zero-byte weights.npz": (_file("weights", b""), STREAM_NUMPY, "weights.npz is not a readable .npz file"),
    "weights.npz missing a key": (_weights(lambda w: w.pop("layer0/recurrent_kernel")), STREAM_NUMPY,
                                  "weights.npz lacks 'layer0/recurrent_kernel'"),
    "weights.npz wrong shape": (_weights(lambda w: w.__setitem__("layer0/kernel", np.zeros((3, 3), np.float32))),
                                STREAM_NUMPY, "weights.npz: 'layer0/kernel' has shape (3, 3); the manifest's layers "
                                              "need (1, 16)"),
    "weights.npz extra key": (_weights(lambda w: w.__setitem__("layer9/kernel", np.zeros(1, np.float32))),
                              STREAM_NUMPY, "weights.npz holds 'layer9/kernel'"),
    "weights.npz integers": (_weights(lambda w: w.__setitem__("head/bias", np.zeros(1, np.int32))), STREAM_NUMPY,
                             "'head/bias' holds int32 values"),
    "weights.npz NaN": (_weights(lambda w: w["head/kernel"].__setitem__(0, np.nan)), STREAM_NUMPY,
                        "'head/kernel' holds non-finite values"),
    "weights.npz pickled objects": (_file("weights", npz_bytes(**{"head/bias": np.array([None], dtype=object)})),
                                    STREAM_NUMPY, "weights.npz is not a readable .npz file"),
    "symlink inside the bundle": (_symlink("tflite-float32", target_outside=False),
                                  ["stream", "{b}", "--variant", "tflite-float32", "--backend", "numpy"], "is a symlink"),
    "reference.npz symlinked out": (_symlink("reference_data", target_outside=True), VERIFY_STORED, "is a symlink"),
    "manifest.json symlinked": (lambda b: _symlink_manifest(b), VERIFY_STORED, "'manifest.json' is a symlink"),
}


def _symlink_manifest(bundle):
    real = bundle.parent / "outside-manifest.json"
    shutil.copy(bundle / "manifest.json", real)
    (bundle / "manifest.json").unlink()
    os.symlink(real, bundle / "manifest.json")


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_bundle_is_one_line_exit_2(bundles, tmp_path, case):
    edit, command, message = CASES[case]
    bundle = copy_bundle(bundles["sine"], tmp_path / "bundle")
    edit(bundle)
    result = run_cli([arg.format(b=bundle) for arg in command])
    assert result.exit_code == 2, result.output
    assert message in result.stderr, result.stderr


def test_fifo_is_refused_without_waiting(bundles, tmp_path):
    bundle = copy_bundle(bundles["sine"], tmp_path / "bundle")
    (bundle / "weights.npz").unlink()
    os.mkfifo(bundle / "weights.npz")
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(_error_of(lambda: Bundle.open(bundle).weights())))
    worker.start()
    worker.join(10)
    if worker.is_alive():  # unblock the reader before failing
        with open(bundle / "weights.npz", "wb"):
            pass
        pytest.fail("reading a FIFO in the bundle blocked")
    assert outcome == ["BundleError: bundle file weights.npz is not a regular file"]


def _error_of(call) -> str:
    try:
        call()
    except BundleError as exc:
        return f"BundleError: {exc}"
    return "no error"


def test_verify_that_verified_nothing_is_an_error(bundles):
    """A tflite-only bundle verified with a backend that runs no tflite: every variant skipped -> exit 2."""
    result = run_cli(["verify", str(bundles["trend"]), "--reference", "stored", "--backend", "onnxruntime"])
    assert result.exit_code == 2 and "nothing was verified" in result.stderr
    assert "pass" not in result.output


def test_every_file_is_read_through_the_hash_check(bundles, tmp_path):
    """Each role and variant: the bytes returned are the ones hashed; one changed byte is refused."""
    bundle = copy_bundle(bundles["sine"], tmp_path / "bundle")
    opened = Bundle.open(bundle)
    names = [*opened.manifest.variants, *opened.manifest.files]
    assert set(opened.manifest.files) == {"reference", "weights", "calibration", "reference_data"}
    for name in names:
        content = opened.read(name)
        path = bundle / entry_of(manifest_of(bundle), name)["file"]
        assert content == path.read_bytes()
        path.write_bytes(content[:-1] + bytes([content[-1] ^ 1]))
        with pytest.raises(BundleError, match="sha256 check failed"):
            opened.read(name)
        path.write_bytes(content)
    assert opened.weights().keys() == npz_arrays(bundle, "weights").keys()
    assert opened.reference_data()[0].ndim == 1 and opened.calibration_inputs().ndim == 1


@pytest.mark.parametrize("name", ["sine", "gru", "lstm", "window", "trend"])
def test_bundles_written_before_this_reader_still_load(bundles, name):
    """Manifests in the test bundles parse (``make_bundles`` may have run with an older edgernn) and the numpy
    backend gets exactly the weights its layers need."""
    manifest = read_manifest(bundles[name])
    assert manifest.variants and manifest.files["weights"].file == "weights.npz"
    StreamingPredictor.load(bundles[name], "tflite-float32", backend="numpy").run(np.linspace(-1, 1, 30))


def _protobuf(*fields) -> bytes:
    """A protobuf message from ``(field number, value)`` pairs: int -> varint, str/bytes -> length-delimited."""
    def varint(n):
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                return bytes(out)
    out = b""
    for number, value in fields:
        if isinstance(value, int):
            out += varint(number << 3) + varint(value)
        else:
            value = value.encode() if isinstance(value, str) else value
            out += varint(number << 3 | 2) + varint(len(value)) + value
    return out


def external_data_model(location: str) -> bytes:
    """An ONNX model ``y = x + w`` (float[4]) whose initializer ``w`` is 16 bytes of external data at
    ``location``; written without the onnx package (a device has only onnxruntime). ONNX field numbers:
    ModelProto ir_version 1, graph 7, opset_import 8; GraphProto node 1, name 2, initializer 5, input 11, output 12;
    TensorProto dims 1, data_type 2, name 8, external_data 13, data_location 14 (1 = EXTERNAL)."""
    float4 = _protobuf((1, _protobuf((1, 1), (2, _protobuf((1, _protobuf((1, 4))))))))  # TypeProto float[4]
    weight = _protobuf((1, 4), (2, 1), (8, "w"), (13, _protobuf((1, "location"), (2, location))),
                       (13, _protobuf((1, "offset"), (2, "0"))), (13, _protobuf((1, "length"), (2, "16"))), (14, 1))
    graph = _protobuf((1, _protobuf((1, "x"), (1, "w"), (2, "y"), (4, "Add"))), (2, "g"), (5, weight),
                      (11, _protobuf((1, "x"), (2, float4))), (12, _protobuf((1, "y"), (2, float4))))
    return _protobuf((1, 8), (7, graph), (8, _protobuf((2, 17))))


@pytest.mark.skipif("onnxruntime" not in installed(), reason="onnxruntime not installed")
@pytest.mark.parametrize("location", ["victim/secret.bin", "secret.bin", "../secret.bin", "/tmp/secret.bin"])
def test_onnx_external_data_is_never_read(bundles, tmp_path, monkeypatch, location):
    import onnxruntime

    work = tmp_path / "work"
    (work / "victim").mkdir(parents=True)
    secret = np.array([1, 2, 3, 4], np.float32).tobytes()
    for path in (work / "victim" / "secret.bin", work / "secret.bin", tmp_path / "secret.bin"):
        path.write_bytes(secret)
    monkeypatch.chdir(work)
    model = external_data_model(location)
    if location in ("victim/secret.bin", "secret.bin"):
        # the danger, measured: onnxruntime alone reads the file from the working directory
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.log_severity_level = 4
        session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        assert session.run(None, {"x": np.zeros(4, np.float32)})[0].tolist() == [1, 2, 3, 4]
    bundle = copy_bundle(bundles["sine"], tmp_path / "bundle")
    replace_file(bundle, "onnx-float32", model)
    with pytest.raises(BackendError, match="names external data .* which edgernn refuses"):
        StreamingPredictor.load(bundle, "onnx-float32", backend="onnxruntime")
    result = run_cli(["stream", str(bundle), "--variant", "onnx-float32", "--backend", "onnxruntime"])
    assert result.exit_code == 2 and "external data" in result.stderr


def test_an_integer_beyond_int64_is_just_a_number(bundles, tmp_path):
    """Found by the fuzz tests: numpy's isfinite raised TypeError on such an int (a preprocessing offset)."""
    bundle = copy_bundle(bundles["sine"], tmp_path / "bundle")
    _manifest(lambda m: m["preprocessing"].__setitem__("offset", -(2**63) - 1))(bundle)
    assert read_manifest(bundle).preprocessing.offset == float(-(2**63) - 1)
    predictions = StreamingPredictor.load(bundle, "tflite-float32", backend="numpy").run(np.linspace(-1, 1, 10))
    assert np.isfinite(predictions).all()
