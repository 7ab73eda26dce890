"""Verify on a device: no TensorFlow, the float model's outputs stored in the bundle at export."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest

from edgernn.cli.commands import cli
from edgernn.runtime.file_digest import sha256_file
from runtime_env import EMULATED, needs_interpreter

pytestmark = needs_interpreter  # verify needs an interpreter for the variants


def _verify_stored(runner, bundle):
    result = runner.invoke(cli, ["verify", str(bundle), "--reference", "stored", "--json"])
    return result, (json.loads(result.stdout) if result.stdout.strip().startswith("{") else None)


# under emulation .ci/aarch64.sh runs `edgernn verify` on the window bundle itself (every variant must pass: the same
# check on the same CPU; the host's verdicts it is compared with here are data, the same on every machine)
WINDOW = pytest.param("window", marks=pytest.mark.skipif(
    EMULATED, reason="the aarch64 stage verifies the window bundle itself (.ci/aarch64.sh)"))


@pytest.mark.parametrize("name", ["sine", "gru", "lstm", WINDOW, "multi"])
def test_stored_reference_verify_matches_the_host_verdicts(runner, bundles, name):
    result, data = _verify_stored(runner, bundles[name])
    assert result.exit_code == 0, result.output
    assert data["reference"] == "stored" and data["passed"]
    host = bundles[name] / "verify.json"
    if host.exists():  # written by tests/make_bundles.py with the float Keras model on the same inputs
        here = {v["variant"]: v["passed"] for v in data["variants"] if not v["skipped"]}
        verdicts = {v["variant"]: v["passed"] for v in json.loads(host.read_text())["variants"]}
        assert here and all(verdicts[name] == passed for name, passed in here.items())


def test_reference_that_does_not_match_the_model_fails(runner, bundles, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(bundles["sine"], damaged)
    with np.load(damaged / "reference.npz") as archive:
        inputs, outputs = archive["inputs"], archive["outputs"]
    np.savez(damaged / "reference.npz", inputs=inputs, outputs=outputs + 0.05 * np.ptp(outputs))
    manifest = json.loads((damaged / "manifest.json").read_text())
    manifest["files"]["reference_data"]["sha256"] = sha256_file(damaged / "reference.npz")
    (damaged / "manifest.json").write_text(json.dumps(manifest))
    result, data = _verify_stored(runner, damaged)
    assert result.exit_code == 1 and not data["passed"]


@pytest.mark.portable
def test_stored_reference_hash_is_checked(runner, bundles, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(bundles["sine"], damaged)
    buffer = io.BytesIO()
    np.savez(buffer, inputs=np.zeros(20, np.float32), outputs=np.zeros(20, np.float32))
    (damaged / "reference.npz").write_bytes(buffer.getvalue())
    result = runner.invoke(cli, ["verify", str(damaged), "--reference", "stored"])
    assert result.exit_code == 2 and "sha256 check failed for reference.npz" in result.stderr


def test_a_backend_list_cross_checks_each_variant_from_its_first_backend(runner, bundles):
    """--backend litert,numpy: the ONNX variant runs on numpy alone (the float weights, not the file), so its run
    is the one cross-checked on the other interpreters; otherwise a damaged .onnx would pass unread."""
    from edgernn.runtime.backends import installed

    if not {"numpy", "onnxruntime"} <= set(installed()):
        pytest.skip("needs onnxruntime")
    result = runner.invoke(cli, ["verify", str(bundles["sine"]), "--reference", "stored", "--json", "--steps", "200",
                                 "--variants", "onnx-float32,tflite-float32", "--backend", "litert,numpy"])
    rows = {(row["variant"], row["backend"]): row for row in json.loads(result.stdout)["variants"]}
    assert "onnxruntime" in rows[("onnx-float32", "numpy")]["cross_backend"], rows
