"""Untrusted ``.keras`` files and the bundle's reference model, on the host (TensorFlow installed).

The ``edgernn.json`` metadata member of a real model is mutated (JSON tree, raw text, zip bytes) and read by
``model_metadata.read``, by ``edgernn.predict`` (Keras) and by ``edgernn verify``; every malformed one is a
one-line ``ModelError`` (exit 2). A bundle's reference model is read through the hash-checked reader: swapped or
symlinked, it is refused; swapped with its hash updated (a valid model that is not the exported one), verify's
gate fails it. Export refuses ONNX external data and a bundle that does not read back.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import zipfile

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import strategies as st  # noqa: E402

import edgernn  # noqa: E402
from bundle_edit import copy_bundle, manifest_of, replace_file, run_cli, write_manifest  # noqa: E402
from edgernn.training import model_metadata  # noqa: E402
from edgernn.errors import ExportError, ModelError  # noqa: E402
from edgernn.training.model_metadata import ModelMetadata  # noqa: E402
from json_fuzz import budgets, ends_cleanly, fuzz, mutate_text, mutate_tree  # noqa: E402



def with_member(keras_bytes: bytes, member: bytes | None) -> bytes:
    """The same ``.keras`` zip with ``edgernn.json`` replaced by ``member`` (removed for None)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(keras_bytes)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            if info.filename != model_metadata.MEMBER:
                target.writestr(info, source.read(info))
        if member is not None:
            target.writestr(model_metadata.MEMBER, member)
    return out.getvalue()


@pytest.fixture(scope="module")
def model_bytes(sine_model):
    return sine_model.model_path.read_bytes()


def _member(model_bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(model_bytes)) as archive:
        return json.loads(archive.read(model_metadata.MEMBER))


def _mutated_model(data, model_bytes: bytes) -> bytes:
    how = data.draw(st.sampled_from(["tree", "tree", "text", "member bytes", "zip bytes", "zip cut"]))
    original = _member(model_bytes)
    if how == "tree":
        return with_member(model_bytes, json.dumps(mutate_tree(data, original)).encode())
    if how == "text":
        text = mutate_text(data, json.dumps(original))
        return with_member(model_bytes, text.encode("utf-8", "surrogatepass"))
    if how == "member bytes":
        return with_member(model_bytes, data.draw(st.binary(max_size=200)))
    if how == "zip cut":
        return model_bytes[: data.draw(st.integers(0, len(model_bytes) - 1))]
    damaged = bytearray(model_bytes)
    for _ in range(data.draw(st.sampled_from([1, 4, 32]))):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    return bytes(damaged)


def _metadata_case(model_bytes, data):
    content = _mutated_model(data, model_bytes)
    return ends_cleanly(lambda: model_metadata.read(content, "m.keras"))


@pytest.mark.parametrize("examples", budgets(300, 3000))
def test_metadata_mutations_end_cleanly(model_bytes, examples):
    fuzz(examples, lambda data: _metadata_case(model_bytes, data))


def _predict_case(model_bytes, tmp_path_factory, data):
    path = tmp_path_factory.getbasetemp() / "mutated.keras"
    path.write_bytes(_mutated_model(data, model_bytes))
    return ends_cleanly(lambda: edgernn.predict(path, np.sin(np.arange(12) / 4.0)))


@pytest.mark.parametrize("examples", budgets(50, 400))
def test_metadata_mutations_through_keras(model_bytes, tmp_path_factory, examples):
    fuzz(examples, lambda data: _predict_case(model_bytes, tmp_path_factory, data))


@pytest.fixture(scope="module")
def scratch_bundle(sine_bundle, tmp_path_factory):
    return copy_bundle(sine_bundle, tmp_path_factory.mktemp("untrusted") / "bundle")


def _verify_case(scratch_bundle, sine_bundle, model_bytes, data):
    (scratch_bundle / "manifest.json").write_bytes((sine_bundle / "manifest.json").read_bytes())
    replace_file(scratch_bundle, "reference", _mutated_model(data, model_bytes))
    result = run_cli(["verify", str(scratch_bundle), "--reference", "keras", "--steps", "20", "--variants",
                      "tflite-float32"])
    return f"exit {result.exit_code}"


@pytest.mark.parametrize("examples", budgets(25, 200))
def test_metadata_mutations_through_verify(scratch_bundle, sine_bundle, model_bytes, examples):
    fuzz(examples, lambda data: _verify_case(scratch_bundle, sine_bundle, model_bytes, data))


def _data_field(key, value):
    def change(member):
        member["data"][key] = value
        return json.dumps(member)
    return change


def _raw(old, new):
    return lambda member: json.dumps(member).replace(old, new, 1)


# case: (edit of the edgernn.json object -> its text, message); rows of the README's bad-input table
METADATA_CASES = {
    "test_values not a list": (_data_field("test_values", "0.1, 0.2"), "data.test_values must be an array, got a string"),
    "test_values strings": (_data_field("test_values", ["0.1", "0.2"]), "data.test_values must hold numbers only"),
    "test_values nested": (_data_field("test_values", [[0.1], [0.2]]), "found an array"),
    "test_values NaN": (_raw('"test_values": [', '"test_values": [NaN, '), "NaN is not a JSON value"),
    "test_values true": (_data_field("test_values", [True, 1.0]), "found true or false"),
    "train_values too long": (_data_field("train_values", [0.0] * 5001), "holds 5001 values (at most 5000)"),
    "100,000 deep": (lambda member: "[" * 100_000 + "]" * 100_000, "nested 100000 levels deep (at most 32)"),
    "5,000-digit integer": (_raw('"format": 1', '"format": ' + "9" * 5000), "a number with 5000 characters"),
    "another format": (lambda member: json.dumps({**member, "format": 2}), "has format 2"),
    "bad preprocessing": (lambda member: json.dumps({**member, "preprocessing": {"scale": "log"}}),
                          "preprocessing.scale must be one of standard, minmax, none"),
    "window of another model": (lambda member: json.dumps({**member, "mode": "window", "window": 7}),
                                "describes a window of 7, but the model takes sequences of any length"),
}


@pytest.mark.parametrize("case", list(METADATA_CASES), ids=list(METADATA_CASES))
def test_bad_metadata_is_one_line_exit_2(sine_bundle, model_bytes, tmp_path, monkeypatch, case):
    monkeypatch.setattr(model_metadata, "MAX_VALUES", 5000)  # the real limit (10 million) takes seconds to reach
    edit, message = METADATA_CASES[case]
    content = with_member(model_bytes, edit(_member(model_bytes)).encode())
    model = tmp_path / "m.keras"
    model.write_bytes(content)
    result = run_cli(["export", str(model), "--out", str(tmp_path / "out"), "--no-verify"])
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()
    bundle = copy_bundle(sine_bundle, tmp_path / "bundle")
    replace_file(bundle, "reference", content)
    result = run_cli(["verify", str(bundle), "--reference", "keras", "--steps", "20", "--variants", "tflite-float32"])
    assert result.exit_code == 2 and "model.keras: edgernn.json" in result.stderr and message in result.stderr


def test_metadata_written_is_the_metadata_read(sine_model):
    """Training's record round-trips through the one reader; a non-finite metric is written as null."""
    written = ModelMetadata.from_dict(sine_model.metadata)
    read = model_metadata.read(sine_model.model_path.read_bytes(), "sine.keras")
    assert read == written and read.data.test_values and read.preprocessing == sine_model.preprocessing
    odd = ModelMetadata(metrics={"test_rmse": float("nan"), "test_points": 3})
    assert odd.to_dict()["metrics"] == {"test_rmse": None, "test_points": 3}
    assert ModelMetadata.from_dict(json.loads(json.dumps(odd.to_dict()))).metrics["test_rmse"] is None


def test_model_without_metadata_is_a_users_model(model_bytes, tmp_path):
    path = tmp_path / "plain.keras"
    path.write_bytes(with_member(model_bytes, None))
    assert model_metadata.read(path.read_bytes(), "plain.keras") is None
    assert edgernn.predict(path, np.sin(np.arange(10) / 4.0)).shape == (10,)


# -- the bundle's reference model -----------------------------------------------------------------------------

def _other_model(sine_model, tmp_path) -> bytes:
    """A valid model with the same metadata that is not the exported one: the weights scaled by 1.5."""
    from edgernn.training.modeling import load_model, save_model

    model, metadata = load_model(sine_model.model_path)
    model.set_weights([w * 1.5 for w in model.get_weights()])
    return save_model(model, tmp_path / "other.keras", metadata).read_bytes()


def test_swapped_reference_model_is_refused(sine_bundle, sine_model, tmp_path):
    bundle = copy_bundle(sine_bundle, tmp_path / "bundle")
    (bundle / "model.keras").write_bytes(_other_model(sine_model, tmp_path))
    result = run_cli(["verify", str(bundle), "--steps", "50", "--variants", "tflite-float32"])
    assert result.exit_code == 2 and "sha256 check failed for model.keras" in result.stderr


def test_symlinked_reference_model_is_refused(sine_bundle, tmp_path):
    bundle = copy_bundle(sine_bundle, tmp_path / "bundle")
    outside = tmp_path / "outside.keras"
    shutil.move(bundle / "model.keras", outside)
    os.symlink(outside, bundle / "model.keras")  # the same bytes, so the hash would match
    result = run_cli(["verify", str(bundle), "--steps", "50", "--variants", "tflite-float32"])
    assert result.exit_code == 2 and "'model.keras' is a symlink" in result.stderr


def test_swapped_reference_model_with_its_hash_fails_the_gate(sine_bundle, sine_model, tmp_path):
    """The attacker who rewrites the manifest too: a valid model that is not the exported one is judged by the
    gate (every variant differs from it), never passed."""
    bundle = copy_bundle(sine_bundle, tmp_path / "bundle")
    replace_file(bundle, "reference", _other_model(sine_model, tmp_path))
    manifest = manifest_of(bundle)
    manifest["model_sha256"] = manifest["files"]["reference"]["sha256"]
    write_manifest(bundle, manifest)
    result = run_cli(["verify", str(bundle), "--steps", "500", "--variants", "tflite-float32,tflite-int8"])
    assert result.exit_code == 1 and "all variants pass" not in result.stdout
    failed = {line.split()[0] for line in result.stdout.splitlines() if "FAIL: NRMSE" in line}
    assert failed == {"tflite-float32", "tflite-int8"}, result.stdout


# -- export ---------------------------------------------------------------------------------------------------

def test_export_refuses_onnx_external_data(sine_bundle):
    import onnx
    from onnx import numpy_helper

    from edgernn.exporting.onnx_export import check_self_contained

    content = (sine_bundle / "onnx-float32.onnx").read_bytes()
    check_self_contained(content, "onnx-float32")  # what export writes passes
    proto = onnx.load_from_string(content)
    tensor = proto.graph.initializer[0]
    tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor), tensor.name))
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "victim/secret.bin"
    with pytest.raises(ExportError, match=f"tensor '{tensor.name}' is stored as external data"):
        check_self_contained(proto.SerializeToString(), "onnx-float32")


def test_export_never_leaves_a_bundle_the_runtime_refuses(sine_model, tmp_path, monkeypatch):
    """A staged bundle that does not read back (here: weights.npz damaged after its hash was recorded) is an
    ExportError, and nothing is left under the target name."""
    from edgernn.exporting import bundle_writer as export_bundle

    real_write = export_bundle.write_manifest

    def write_then_damage(manifest, staging):
        path = real_write(manifest, staging)
        with open(staging / "weights.npz", "ab") as handle:
            handle.write(b"\0")
        return path

    monkeypatch.setattr(export_bundle, "write_manifest", write_then_damage)
    out = tmp_path / "bundle"
    with pytest.raises(ExportError, match="does not read back: sha256 check failed for weights.npz"):
        edgernn.export(sine_model.model_path, out, variants="tflite-float32", quiet=True, verify=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_exported_manifest_is_what_the_parser_reads(sine_bundle):
    """Export writes through the parser's own types: preprocessing, calibration and files round-trip."""
    from edgernn.runtime.manifest import FILE_ROLES
    from edgernn.runtime.manifest_reader import read_manifest

    manifest = read_manifest(sine_bundle)
    raw = manifest_of(sine_bundle)
    assert manifest.to_dict()["files"] == raw["files"] and manifest.to_dict()["calibration"] == raw["calibration"]
    assert {role: entry.file for role, entry in manifest.files.items()} == FILE_ROLES
    assert manifest.files["reference"].sha256 == hashlib.sha256((sine_bundle / "model.keras").read_bytes()).hexdigest()
    with pytest.raises(ModelError):
        model_metadata.read(b"not a zip", "x.keras")
