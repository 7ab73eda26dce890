"""What export and train may write over: only their own kind of file, one writer at a time, nothing destroyed.

Real exports through the real CLI; each row of issue 15's "export --force deletes a directory", "two exports
to one --out", "a wrong state is accepted" and "train --out" findings. The CLI runs in this process (click's
runner: the same exit codes and messages, without importing TensorFlow again per call), except where only
separate processes show the behaviour (two exports racing for one target).
"""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from edgernn.runtime import locking
from edgernn.cli.commands import cli

CLI = [sys.executable, "-m", "edgernn"]


def _cli(*args, stdin=None, cwd=None, umask=None):
    """``edgernn ARGS`` in this process, in ``cwd`` and under ``umask`` when given: (returncode, stdout, stderr)."""
    here = os.getcwd()
    previous_umask = os.umask(umask) if umask is not None else None
    try:
        os.chdir(cwd or here)
        result = CliRunner().invoke(cli, list(args), input=stdin)
    finally:
        os.chdir(here)
        if previous_umask is not None:
            os.umask(previous_umask)
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)


def _one_line_error(result, code=2):
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.strip().splitlines()[-1].startswith("error: ")


def test_force_never_replaces_a_directory_that_is_not_a_bundle(sine_model, tmp_path):
    userdata = tmp_path / "userdata"
    userdata.mkdir()
    (userdata / "notes.txt").write_text("precious")
    result = _cli("export", str(sine_model.model_path), "--out", str(userdata), "--force", "--no-verify")
    _one_line_error(result)
    assert "is not an edgernn bundle" in result.stderr
    assert (userdata / "notes.txt").read_text() == "precious" and sorted(os.listdir(userdata)) == ["notes.txt"]


@pytest.mark.parametrize("out", [".", "/", ".."])
def test_out_that_is_no_place_for_a_bundle_is_refused_before_exporting(sine_model, tmp_path, out):
    (tmp_path / "keep.txt").write_text("x")
    result = _cli("export", str(sine_model.model_path), "--out", out, "--force", "--no-verify", cwd=tmp_path / ".")
    _one_line_error(result)
    assert "not a place for a new bundle" in result.stderr and "exporting" not in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["keep.txt"]


def test_an_export_in_progress_locks_its_target(sine_model, tmp_path):
    out = tmp_path / "bundle"
    fd = locking.acquire(out, "bundle")  # another export holds the target
    try:
        result = _cli("export", str(sine_model.model_path), "--out", str(out), "--no-verify")
    finally:
        locking.release(out, fd)
    _one_line_error(result)
    assert "is in use by another edgernn process" in result.stderr and not out.exists()


def test_two_exports_to_one_target_at_once_never_replace_silently(sine_model, tmp_path):
    out = tmp_path / "bundle"
    args = [*CLI, "export", str(sine_model.model_path), "--out", str(out), "--variants", "tflite-float32",
            "--no-verify"]
    both = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in both]
    for p in both:
        p.stdout.close()
        p.stderr.close()
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results  # one wins; the other is refused, in use or already there
    loser = next(text for code, text in results if code == 2)
    assert "in use by another edgernn process" in loser or "already exists" in loser
    assert sorted(os.listdir(tmp_path)) == ["bundle"]


def test_state_of_another_export_of_the_same_model_is_refused(sine_model, tmp_path):
    """Same .keras, other calibration: other int8 scales and zero points, so the saved int8 state means
    something else; the state's identity is computed from the loaded file, not read from the manifest."""
    bundle, state = tmp_path / "bundle", tmp_path / "state.npz"
    export = ["export", str(sine_model.model_path), "--out", str(bundle), "--variants", "tflite-int8", "--no-verify"]
    assert _cli(*export).returncode == 0
    stream = ["stream", str(bundle), "--state-file", str(state)]
    assert _cli(*stream, stdin="0.1\n0.2\n").returncode == 0
    again = _cli(*export, "--force", "--calibration-data", "sine", "--calibration-steps", "150")
    assert again.returncode == 0, again.stderr
    result = _cli(*stream, stdin="0.3\n")
    _one_line_error(result)
    assert "belongs to another model or export" in result.stderr and "--reset-state" in result.stderr


def test_train_refuses_an_existing_file_before_training(tmp_path):
    out = tmp_path / "m.keras"
    out.write_bytes(b"an older model")
    result = _cli("train", "--data", "sine", "--units", "4", "--epochs", "1", "--out", str(out))
    _one_line_error(result)
    assert "already exists; use --force" in result.stderr and "epoch" not in result.stderr
    assert out.read_bytes() == b"an older model"
    missing = _cli("train", "--data", "sine", "--epochs", "1", "--out", str(tmp_path / "nowhere" / "m.keras"))
    _one_line_error(missing)
    assert "does not exist" in missing.stderr and "epoch" not in missing.stderr
    replaced = _cli("train", "--data", "sine", "--units", "4", "--epochs", "1", "--out", str(out), "--force")
    assert replaced.returncode == 0 and f"replaced {out}" in replaced.stderr
    assert out.read_bytes() != b"an older model"


def test_written_files_respect_the_umask(sine_model, tmp_path):
    out = tmp_path / "bundle"
    result = _cli("export", str(sine_model.model_path), "--out", str(out), "--variants", "tflite-float32",
                  "--no-verify", umask=0o022)
    assert result.returncode == 0, result.stderr
    assert oct(out.stat().st_mode & 0o777) == oct(0o755)
    assert {oct(p.stat().st_mode & 0o777) for p in out.iterdir()} == {oct(0o644)}
    model = tmp_path / "m.keras"
    assert _cli("train", "--data", "sine", "--units", "4", "--epochs", "1", "--out", str(model),
                umask=0o022).returncode == 0
    assert oct(model.stat().st_mode & 0o777) == oct(0o644)
