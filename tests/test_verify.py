"""The verify gate on a real bundle: exit codes, JSON, and a damaged bundle."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from edgernn.cli.commands import cli
from edgernn.runtime.file_digest import sha256_file


def test_verify_passes_and_json_parses(runner, sine_bundle):
    result = runner.invoke(cli, ["verify", str(sine_bundle), "--steps", "2000", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["passed"] and len({v["variant"] for v in data["variants"]}) == 7
    from edgernn.runtime.backends import installed

    if "tflm" in installed():  # full-integer variants again on TFLite Micro, with their arena
        on_tflm = [v for v in data["variants"] if v["backend"] == "tflm"]
        assert {"tflite-int8", "tflite-int16x8"} <= {v["variant"] for v in on_tflm}
        assert all(v["passed"] and v["arena_bytes"] > 0 for v in on_tflm if v["variant"] == "tflite-int8")
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
    assert re.search(r"\| \d+\.\d % of \d+, [\d.]+ \|", (report / "report.md").read_text())  # 0.9 coverage, width


REPORT_FILES = ["drift.png", "histograms.png", "predictions.png", "report.json", "report.md"]


def verify_with_report(bundle, report):
    return subprocess.Popen([sys.executable, "-m", "edgernn", "verify", str(bundle), "--steps", "200", "--variants",
                             "tflite-float32", "--reference", "stored", "--backend", "numpy", "--report", str(report)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_a_killed_report_leaves_no_partial_directory(sine_bundle, tmp_path):
    """kill -9 while the report is being written (its staging sibling exists): the report directory is absent,
    never partial; the next report into it clears the leftover and appears whole. Into an existing directory,
    the other files stay."""
    report = tmp_path / "report"
    process = verify_with_report(sine_bundle, report)
    deadline = time.monotonic() + 300
    while not any(p.name.startswith(".report.tmp-") for p in tmp_path.iterdir()):
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert not report.exists() or sorted(p.name for p in report.iterdir()) == REPORT_FILES
    assert any(p.name.startswith(".report.tmp-") for p in tmp_path.iterdir())  # killed mid-way: the leftover
    process = verify_with_report(sine_bundle, report)
    assert process.wait(timeout=300) == 0, process.stderr.read()
    assert sorted(p.name for p in report.iterdir()) == REPORT_FILES
    assert [p.name for p in tmp_path.iterdir()] == ["report"]
    (report / "notes.txt").write_text("mine")
    (report / "report.md").write_text("old")
    process = verify_with_report(sine_bundle, report)
    assert process.wait(timeout=300) == 0, process.stderr.read()
    assert sorted(p.name for p in report.iterdir()) == sorted([*REPORT_FILES, "notes.txt"])
    assert (report / "report.md").read_text() != "old" and (report / "notes.txt").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_failing_int8_is_diagnosed_tensor_by_tensor(runner, sine_bundle):
    result = runner.invoke(cli, ["verify", str(sine_bundle), "--steps", "300", "--variants", "tflite-int8",
                                 "--max-nrmse", "tflite-int8=0.00001", "--json"])
    assert result.exit_code == 1
    row = json.loads(result.stdout)["variants"][0]
    assert row["diagnosis"] and row["diagnosis"][0]["rmse_steps"] >= row["diagnosis"][-1]["rmse_steps"] > 0


def test_verify_reports_the_float_test_rmse_train_reported(runner, sine_model, sine_bundle):
    """Verify and train report the float model's RMSE on the same held-out split (the state warmed differently:
    both figures are shown, and they agree closely)."""
    data = json.loads(runner.invoke(cli, ["verify", str(sine_bundle), "--steps", "2000", "--json"]).stdout)
    assert data["train_test_rmse"] == pytest.approx(sine_model.metrics["test_rmse"])
    assert data["float_test_rmse"] == pytest.approx(data["train_test_rmse"], rel=0.05)
    assert "repeated forwards" in data["data"] and "backwards" not in data["data"]


def test_replay_never_reverses():
    """Forwards only: a model on differences sees the series' own differences with their sign (a ramp stays a
    ramp); a model on levels sees forward copies joined by short lines, never the series backwards."""
    import numpy as np

    from edgernn.training.reference import replay

    ramp = np.arange(100.0)
    continued, how = replay(ramp, 1000, difference=True)
    assert np.all(np.diff(continued) == 1.0) and "continuing" in how
    wave = np.sin(np.arange(100) / 5.0)
    levels, how = replay(wave, 1000, difference=False)
    np.testing.assert_array_equal(levels[:100], wave)
    bridge = 5  # 100 // 20
    np.testing.assert_array_equal(levels[100 + bridge:200 + bridge], wave)
    assert np.all(np.diff(levels[99:101 + bridge]) < 0) == (wave[-1] > wave[0]) and f"{bridge}-step lines" in how


def test_clipping_advice_fits_the_model():
    """A model already on differences is not told to difference."""
    from edgernn.runtime.variants import variant
    from edgernn.verification.gate import reasons
    from edgernn.verification.results import VariantResult

    row = VariantResult("tflite-int8", "litert", 1, vs_float={"nrmse_pct": 0.1, "max_abs": 0.0, "range": 1.0},
                        drift=1.0, clipped_pct=50.0)
    on_differences = " ".join(reasons(row, variant("tflite-int8"), 2.0, 1.0, difference=True))
    on_levels = " ".join(reasons(row, variant("tflite-int8"), 2.0, 1.0, difference=False))
    assert "clipped" in on_differences and "--difference on" not in on_differences
    assert "--calibration-data" in on_differences and "--difference on" in on_levels


def test_interval_coverage_is_measured_per_variant_and_gated(runner, sine_bundle, tmp_path):
    """Export set each variant's intervals on the validation split; verify measures them on the test split, and a
    variant whose intervals no longer cover 0.9 +- 3 points fails (here: half-widths halved by hand)."""
    result = runner.invoke(cli, ["verify", str(sine_bundle), "--steps", "2000", "--json"])
    rows = json.loads(result.stdout)["variants"]
    for row in rows:
        assert row["coverage_points"] >= 400 and set(row["coverage"]) == {"0.5", "0.8", "0.9", "0.95", "0.98", "0.99"}
        assert abs(row["coverage"]["0.9"] - 0.9) <= 0.03, row
        assert row["interval_width"]["0.9"] > 0
    narrowed = tmp_path / "narrowed"
    shutil.copytree(sine_bundle, narrowed)
    manifest = json.loads((narrowed / "manifest.json").read_text())
    widths = manifest["variants"]["tflite-int8"]["intervals"]["half_widths"]
    manifest["variants"]["tflite-int8"]["intervals"]["half_widths"] = [w / 2 for w in widths]
    (narrowed / "manifest.json").write_text(json.dumps(manifest))
    result = runner.invoke(cli, ["verify", str(narrowed), "--steps", "2000", "--variants", "tflite-int8"])
    assert result.exit_code == 1 and "0.9 interval covers" in result.stdout, result.output


def test_verify_reads_a_csv_by_its_time_column_and_gates_on_each_named_backend(runner, sine_bundle, tmp_path):
    """--data with --column and --time-column: the rows sorted by time (shuffled here) give the figures of the
    same values in order; --backend litert,numpy gates the float32 variant on both, an int8 one on litert only."""
    from edgernn.data.series import load_series

    values = load_series("sine").values[:400]
    order = np.random.default_rng(0).permutation(values.size)
    (tmp_path / "in-order.csv").write_text("when,temp\n" + "".join(f"{i},{float(values[i])!r}\n" for i in range(400)))
    (tmp_path / "shuffled.csv").write_text("temp,other,when\n" + "".join(f"{float(values[i])!r},x,{i}\n" for i in order))
    args = ["verify", str(sine_bundle), "--steps", "400", "--variants", "tflite-float32,tflite-int8", "--json",
            "--backend", "litert,numpy"]
    plain = runner.invoke(cli, [*args, "--data", str(tmp_path / "in-order.csv"), "--column", "temp"])
    shuffled = runner.invoke(cli, [*args, "--data", str(tmp_path / "shuffled.csv"), "--column", "temp",
                                   "--time-column", "when"])
    assert plain.exit_code == 0 and shuffled.exit_code == 0, plain.output + shuffled.output
    rows, again = json.loads(plain.stdout)["variants"], json.loads(shuffled.stdout)["variants"]
    assert [(r["variant"], r["backend"]) for r in rows] == [("tflite-float32", "litert"), ("tflite-int8", "litert"),
                                                            ("tflite-float32", "numpy")]
    assert [r["vs_float"] for r in rows] == [r["vs_float"] for r in again]
    assert all(r["passed"] for r in rows)
    unsorted = runner.invoke(cli, [*args, "--data", str(tmp_path / "shuffled.csv"), "--column", "temp"])
    assert json.loads(unsorted.stdout)["variants"][0]["vs_float"] != rows[0]["vs_float"]  # the time column matters
    for bad, message in ((["--column", "temp"], "give --data too"),
                         (["--data", str(tmp_path / "in-order.csv"), "--columns", "temp"], "--columns is for a model")):
        result = runner.invoke(cli, ["verify", str(sine_bundle), *bad])
        assert result.exit_code == 2 and message in result.stderr, result.output
