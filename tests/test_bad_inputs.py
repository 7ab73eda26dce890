"""The README's bad-input table, row by row: one clear line on stderr, the right exit code, no traceback.

Each case runs the real CLI (click's runner, the same code path as the console script).
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from edgernn.cli import cli


def _csv(tmp_path, text):
    path = tmp_path / "d.csv"
    path.write_text(text)
    return str(path)


TRAIN_CASES = {
    "missing file": (lambda t: ["--data", str(t / "nope.csv")], "data file not found"),
    "empty file": (lambda t: ["--data", _csv(t, "")], "is empty"),
    "header only": (lambda t: ["--data", _csv(t, "when,value\n")], "header but no data rows"),
    "non-numeric cell": (lambda t: ["--data", _csv(t, "v\n1\n2\nabc\n4\n")], "line 4, column 'v': 'abc' is not a number"),
    "unknown column": (lambda t: ["--data", _csv(t, "a\n1\n"), "--column", "b"], "column 'b' not in d.csv; columns: a"),
    "all-NaN column": (lambda t: ["--data", _csv(t, "v\nNA\nnan\n\n")], "no numeric values"),
    "constant series": (lambda t: ["--data", _csv(t, "v\n" + "3\n" * 200)], "constant"),
    "too short": (lambda t: ["--data", "counting", "--window", "80"], "too few for window 80"),
    "window 0": (lambda t: ["--data", "counting", "--window", "0"], "window must be at least 1"),
    "window negative": (lambda t: ["--data", "counting", "--window", "-3"], "window must be at least 1"),
    "units 0": (lambda t: ["--data", "counting", "--units", "0"], "units must be at least 1"),
    "wrong suffix": (lambda t: ["--data", "sine", "--out", str(t / "m.h5")], "must end in .keras"),
}


@pytest.mark.parametrize("case", list(TRAIN_CASES), ids=list(TRAIN_CASES))
def test_train_bad_input(runner, tmp_path, case):
    make_args, message = TRAIN_CASES[case]
    args = make_args(tmp_path)
    if "--out" not in args:
        args += ["--out", str(tmp_path / "m.keras")]
    result = runner.invoke(cli, ["train", "--epochs", "1", *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert message in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "m.keras").exists()


def test_export_bad_inputs(runner, sine_model, tmp_path):
    model = str(sine_model.model_path)
    np.save(tmp_path / "wide.npy", np.zeros((4, 4)))
    (tmp_path / "text.keras").write_text("not a zip")
    (tmp_path / "exists").mkdir()
    cases = {
        "not a Keras file": ([str(tmp_path / "text.keras"), "--out", str(tmp_path / "b1")], "not a readable .keras"),
        "missing model": ([str(tmp_path / "none.keras"), "--out", str(tmp_path / "b2")], "model file not found"),
        "out exists": ([model, "--out", str(tmp_path / "exists")], "already exists; use --force"),
        "unwritable": ([model, "--out", "/proc/edgernn-bundle"], "cannot write to /proc"),
        "calibration shape": ([model, "--out", str(tmp_path / "b3"), "--calibration-data", str(tmp_path / "wide.npy")],
                              "expected a 1-D series"),
        "unknown variant": ([model, "--out", str(tmp_path / "b4"), "--variants", "tflite-int4"], "unknown variant tflite-int4"),
    }
    for name, (args, message) in cases.items():
        result = runner.invoke(cli, ["export", *args, "--no-verify"])
        assert result.exit_code == 2, (name, result.output)
        assert message in result.stderr, (name, result.stderr)
        assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists", "text.keras", "wide.npy"]


def _mutate(bundle, tmp_path, change):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    change(copy, manifest)
    if manifest is not None and (copy / "manifest.json").exists():
        (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def _set(path, value):
    def change(copy, manifest):
        node = manifest
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


BUNDLE_CASES = {
    "missing directory": (lambda b, t: t / "nope", "bundle not found"),
    "missing manifest": (lambda b, t: _mutate(b, t, lambda c, m: (c / "manifest.json").unlink()), "has no manifest.json"),
    "truncated manifest": (lambda b, t: _truncated(b, t), "not valid JSON"),
    "unknown schema": (lambda b, t: _mutate(b, t, _set(["schema_version"], 99)), "schema version 99"),
    "model file missing": (lambda b, t: _mutate(b, t, lambda c, m: (c / "tflite-float32.tflite").unlink()),
                           "bundle file missing: tflite-float32.tflite"),
    "hash differs": (lambda b, t: _mutate(b, t, lambda c, m: (c / "tflite-float32.tflite").write_bytes(b"x" * 64)),
                     "sha256 check failed"),
    "path outside": (lambda b, t: _mutate(b, t, _set(["variants", "tflite-float32", "file"], "../../etc/passwd")),
                     "points outside the bundle"),
    "absolute path": (lambda b, t: _mutate(b, t, _set(["variants", "tflite-float32", "file"], "/etc/passwd")),
                      "points outside the bundle"),
    "symlink out": (lambda b, t: _symlinked(b, t), "is a symlink"),
    "wrong shapes": (lambda b, t: _mutate(b, t, _set(["variants", "tflite-float32", "inputs", 0, "shape"], [1, 7])),
                     "but the model implies"),
}


VARIANT_LEVEL = {"model file missing", "hash differs", "path outside", "absolute path", "symlink out"}


def _truncated(bundle, tmp_path):
    copy = _mutate(bundle, tmp_path, lambda c, m: None)
    text = (copy / "manifest.json").read_text()
    (copy / "manifest.json").write_text(text[: len(text) // 3])
    return copy


def _symlinked(bundle, tmp_path):
    outside = tmp_path / "outside.tflite"
    shutil.copy(bundle / "tflite-float32.tflite", outside)

    def change(copy, manifest):
        (copy / "tflite-float32.tflite").unlink()
        os.symlink(outside, copy / "tflite-float32.tflite")

    return _mutate(bundle, tmp_path, change)


@pytest.mark.parametrize("command", ["stream", "verify", "bench"])
@pytest.mark.parametrize("case", list(BUNDLE_CASES), ids=list(BUNDLE_CASES))
def test_bad_bundles(runner, sine_bundle, tmp_path, case, command):
    make, message = BUNDLE_CASES[case]
    bundle = make(sine_bundle, tmp_path)
    args = {"stream": ["stream", str(bundle), "--variant", "tflite-float32"],
            "verify": ["verify", str(bundle), "--variants", "tflite-float32", "--steps", "50"],
            "bench": ["bench", str(bundle), "--variants", "tflite-float32", "--steps", "10"]}[command]
    result = runner.invoke(cli, args, input="0.1\n")
    # verify reports a variant it cannot load as a gate failure (exit 1); an unreadable bundle is exit 2
    expected = 1 if command == "verify" and case in VARIANT_LEVEL else 2
    assert result.exit_code == expected, result.output
    assert message in result.output, result.output
    assert "Traceback" not in result.output


def test_debug_flag_shows_the_traceback(runner, tmp_path):
    quiet = runner.invoke(cli, ["stream", str(tmp_path / "nope")])
    assert quiet.exit_code == 2 and quiet.exception is not None and isinstance(quiet.exception, SystemExit)
    loud = runner.invoke(cli, ["--debug", "stream", str(tmp_path / "nope")])
    assert loud.exit_code == 1 and type(loud.exception).__name__ == "BundleError"
