"""No PASS without a run: a variant the manifest says no interpreter can run is NOT VERIFIED, never a pass, so
a bundle whose model file was replaced, re-hashed and marked incompatible everywhere exits 1; leaving it out by
name verifies the rest."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest
from click.testing import CliRunner

from edgernn.cli.commands import cli
from make_bundles import COMMITTED


@pytest.fixture
def disguised(tmp_path):
    """The attack: random bytes as tflite-int8, its hash updated, every interpreter claimed unable to run it."""
    bundle = tmp_path / "bundle"
    shutil.copytree(COMMITTED / "sine", bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    entry = manifest["variants"]["tflite-int8"]
    junk = os.urandom(3000)
    (bundle / entry["file"]).write_bytes(junk)
    entry["sha256"], entry["size_bytes"] = hashlib.sha256(junk).hexdigest(), len(junk)
    entry["interpreters"] = {name: {"runs": False, "reason": "op version too new"}
                             for name in ("litert", "tflite-runtime", "tflm")}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    return bundle


def test_a_variant_no_interpreter_ran_is_not_verified_and_exits_1(disguised):
    result = CliRunner().invoke(cli, ["verify", str(disguised), "--steps", "200"])
    assert result.exit_code == 1, result.output
    assert "NOT VERIFIED: tflite-int8" in result.output and "all variants pass" not in result.output
    assert result.output.strip().splitlines()[-1].startswith("not every variant was verified")
    summary = json.loads(CliRunner().invoke(cli, ["verify", str(disguised), "--steps", "200", "--json"]).stdout)
    assert summary["verdict"] == "not verified" and summary["not_verified"] == ["tflite-int8"]
    assert summary["passed"] is False


def test_leaving_it_out_by_name_verifies_the_rest(disguised):
    result = CliRunner().invoke(cli, ["verify", str(disguised), "--steps", "200", "--variants",
                                      "tflite-float32,tflite-int16x8,onnx-float32"])
    assert result.exit_code == 0, result.output
    assert "all variants pass" in result.output and "NOT VERIFIED" not in result.output


def test_an_honest_bundle_still_passes():
    result = CliRunner().invoke(cli, ["verify", str(COMMITTED / "sine"), "--steps", "200", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["verdict"] == "pass" and summary["not_verified"] == [] and summary["signature"] == "unsigned"
