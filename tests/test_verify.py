"""The verify gate on a real bundle: exit codes, JSON, and a damaged bundle."""

import json
import shutil

import pytest

from edgernn.cli import cli
from edgernn.runtime.manifest import sha256_file


def test_verify_passes_and_json_parses(runner, sine_bundle):
    result = runner.invoke(cli, ["verify", str(sine_bundle), "--steps", "2000", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["passed"] and len(data["variants"]) == 7
    int8 = next(v for v in data["variants"] if v["variant"] == "tflite-int8")
    assert 0 < int8["vs_float"]["nrmse_pct"] <= 2 and int8["drift"] <= 2


def test_tight_threshold_fails_with_exit_1(runner, sine_bundle):
    result = runner.invoke(cli, ["verify", str(sine_bundle), "--steps", "500", "--variants", "tflite-int8",
                                 "--max-nrmse", "tflite-int8=0.0001"])
    assert result.exit_code == 1
    assert "tflite-int8" in result.stdout and "FAIL: NRMSE" in result.stdout


def test_swapped_model_file_with_matching_hash_fails_the_gate(runner, sine_bundle, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(sine_bundle, damaged)
    manifest = json.loads((damaged / "manifest.json").read_text())
    # another model's int8 file, manifest hash updated to match
    other = damaged / "tflite-int8.tflite"
    (damaged / "tflite-float32.tflite").unlink()
    shutil.copy(other, damaged / "tflite-float32.tflite")
    entry = manifest["variants"]["tflite-float32"]
    entry.update(sha256=sha256_file(damaged / "tflite-float32.tflite"),
                 size_bytes=(damaged / "tflite-float32.tflite").stat().st_size)
    (damaged / "manifest.json").write_text(json.dumps(manifest))
    result = runner.invoke(cli, ["verify", str(damaged), "--steps", "500", "--variants", "tflite-float32"])
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.stdout and "in the model but float32" in result.stdout


def test_hash_mismatch_is_a_failure_not_a_crash(runner, sine_bundle, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(sine_bundle, damaged)
    (damaged / "tflite-int8.tflite").write_bytes(b"\0" * 100)
    result = runner.invoke(cli, ["verify", str(damaged), "--steps", "500", "--variants", "tflite-int8,tflite-float32"])
    assert result.exit_code == 1
    assert "sha256 check failed" in result.stdout


@pytest.mark.parametrize("args", [["--steps", "5"], ["--max-nrmse", "bogus"]])
def test_usage_errors_exit_2(runner, sine_bundle, args):
    result = runner.invoke(cli, ["verify", str(sine_bundle), *args])
    assert result.exit_code == 2 and result.stderr.startswith("error: ")


def test_report_files_and_cross_backend(runner, sine_bundle, tmp_path):
    report = tmp_path / "report"
    result = runner.invoke(cli, ["verify", str(sine_bundle), "--steps", "1000", "--variants",
                                 "tflite-float32,tflite-int8", "--report", str(report)])
    assert result.exit_code == 0, result.output
    for name in ("report.json", "report.md", "predictions.png", "drift.png", "histograms.png"):
        assert (report / name).stat().st_size > 0, name
    assert (report / "predictions.png").read_bytes()[:4] == b"\x89PNG"
    data = json.loads((report / "report.json").read_text())
    float32 = next(v for v in data["variants"] if v["variant"] == "tflite-float32")
    assert "numpy" in float32["cross_backend"] and float32["cross_backend"]["numpy"] <= 1e-5
    assert "max difference from litert" in result.stdout


def test_failing_int8_is_diagnosed_tensor_by_tensor(runner, sine_bundle):
    result = runner.invoke(cli, ["verify", str(sine_bundle), "--steps", "300", "--variants", "tflite-int8",
                                 "--max-nrmse", "tflite-int8=0.00001", "--json"])
    assert result.exit_code == 1
    row = json.loads(result.stdout)["variants"][0]
    assert row["diagnosis"] and row["diagnosis"][0]["rmse_steps"] >= row["diagnosis"][-1]["rmse_steps"] > 0
