"""The README's bad-input table, row by row: one clear line on stderr, the right exit code, no traceback.

Each case runs the real CLI (click's runner, the same code path as the console script).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile

import numpy as np
import pytest

import edgernn
from edgernn.cli.commands import cli
from edgernn.errors import ModelError


def _csv(tmp_path, text):
    path = tmp_path / "d.csv"
    path.write_text(text)
    return str(path)


def _file(tmp_path, name, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


def _npy(tmp_path, array, **kwargs):
    np.save(tmp_path / "d.npy", array, **kwargs)
    return str(tmp_path / "d.npy")


def _column(values, header="v"):
    """CSV text, one value a row; floats written with repr (``1e+300``), strings as they are."""
    return header + "\n" + "".join(f"{float(v)!r}\n" if isinstance(v, float) else f"{v}\n" for v in values)


SINE = np.sin(np.arange(300) / 7.0)


def _npy_bytes():
    """A valid .npy file's bytes, to damage."""
    buffer = io.BytesIO()
    np.save(buffer, SINE)
    return buffer.getvalue()


TRAIN_CASES = {
    "missing file": (lambda t: ["--data", str(t / "nope.csv")], "data file not found"),
    "empty file": (lambda t: ["--data", _csv(t, "")], "is empty"),
    "header only": (lambda t: ["--data", _csv(t, "when,value\n")], "header but no data rows"),
    "non-numeric cell": (lambda t: ["--data", _csv(t, "v\n1\n2\nabc\n4\n")], "line 4, column 'v': 'abc' is not a number"),
    "unknown column": (lambda t: ["--data", _csv(t, "a\n1\n"), "--column", "b"], "column 'b' not in d.csv; columns: a"),
    "all-NaN column": (lambda t: ["--data", _csv(t, "v\nNA\nnan\n\n")], "no numeric values"),
    "constant series": (lambda t: ["--data", _csv(t, "v\n" + "3\n" * 200)], "constant"),
    "too short": (lambda t: ["--data", "counting", "--window", "80"], "too few for window 80"),
    "window 0": (lambda t: ["--data", "counting", "--window", "0"], "'--window': 0 is not in the range x>=1"),
    "window negative": (lambda t: ["--data", "counting", "--window", "-3"], "'--window': -3 is not in the range x>=1"),
    "units 0": (lambda t: ["--data", "counting", "--units", "0"], "'--units': 0 is not in the range x>=1"),
    "wrong suffix": (lambda t: ["--data", "sine", "--out", str(t / "m.h5")], "must end in .keras"),
    "overflowing values": (lambda t: ["--data", _csv(t, _column(list(1e300 * SINE)))],
                           "d.csv: standard scaling overflows float64 on the training values (values up to 1e+300"),
    "overflowing differences": (lambda t: ["--data", _csv(t, _column([1.5e308 * (-1) ** i for i in range(300)])),
                                           "--difference", "on", "--scale", "minmax"],
                                "d.csv: the differences between training values overflow float64"),
    "beyond float32 unscaled": (lambda t: ["--data", _csv(t, _column(list(1e39 * SINE))), "--scale", "none"],
                                "after no scaling (--scale none): beyond float32, the model's input type; "
                                "use --scale standard"),
    "1e999 cells among huge values": (lambda t: ["--data", _csv(t, _column(["1e999"] + list(1e200 * SINE)))],
                                      "standard scaling overflows float64"),
    "unparseable time": (lambda t: ["--data", _csv(t, "when,v\n2024-01-10,1\nyesterday,2\n"), "--time-column", "when"],
                         "d.csv line 3, column 'when': 'yesterday' is not a time; accepted: numbers"),
    "ambiguous dates": (lambda t: ["--data", _csv(t, "when,v\n01/02/2024,1\n03/04/2024,2\n"), "--time-column", "when"],
                        "'01/02/2024' (line 2) could be day/month or month/day"),
    "offset and no offset": (lambda t: ["--data", _csv(t, "when,v\n2024-01-10T08:00Z,1\n2024-01-10 09:00,2\n"),
                                        "--time-column", "when"], "has a UTC offset but line 3"),
    "duplicate timestamps": (lambda t: ["--data", _csv(t, "when,v\n2024-01-10,1\n2024-01-11,2\n2024-01-10,3\n"),
                                        "--time-column", "when"],
                             "d.csv: time '2024-01-10' appears on lines 2 and 4: duplicate timestamps"),
    "invalid UTF-8": (lambda t: ["--data", _file(t, "d.csv", b"v\n1\n\xff\n")],
                      "d.csv is not a UTF-8 text CSV file (byte 0xff on line 3)"),
    "oversized CSV field": (lambda t: ["--data", _csv(t, 'v\n1\n"' + "9" * 200_000 + "\n")],
                            "d.csv line 3: unreadable CSV (field larger than field limit"),
    "zero-byte .npy": (lambda t: ["--data", _file(t, "d.npy", b"")], "d.npy is empty (0 bytes)"),
    "damaged .npy": (lambda t: ["--data", _file(t, "d.npy", _npy_bytes()[:-9])],
                     "d.npy is not a readable .npy array (Failed to read all data"),
    "not a .npy": (lambda t: ["--data", _file(t, "d.npy", b"1,2,3\n")], "d.npy is not a .npy array file"),
    "object .npy": (lambda t: ["--data", _npy(t, np.array([1, "a"], dtype=object), allow_pickle=True)],
                    "Object arrays cannot be loaded when allow_pickle=False"),
    "complex .npy": (lambda t: ["--data", _npy(t, SINE + 1j)], "d.npy holds complex values; expected real numbers"),
    "text .npy": (lambda t: ["--data", _npy(t, SINE.astype(str))], "d.npy holds text (<U"),
    "boolean .npy": (lambda t: ["--data", _npy(t, SINE > 0)], "d.npy holds booleans; expected numbers"),
    "structured .npy": (lambda t: ["--data", _npy(t, np.zeros(9, dtype=[("t", "f8"), ("v", "f8")]))],
                        "d.npy holds structured records (fields t, v)"),
}


@pytest.mark.parametrize("case", list(TRAIN_CASES), ids=list(TRAIN_CASES))
def test_train_bad_input(runner, tmp_path, case):
    make_args, message = TRAIN_CASES[case]
    args = make_args(tmp_path)
    if "--out" not in args:
        args += ["--out", str(tmp_path / "m.keras")]
    result = runner.invoke(cli, ["train", "--epochs", "1", *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[:2000]
    assert message in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "m.keras").exists()


def test_export_bad_inputs(runner, sine_model, tmp_path):
    model = str(sine_model.model_path)
    np.save(tmp_path / "wide.npy", np.zeros((4, 4)))
    (tmp_path / "empty.npy").write_bytes(b"")
    np.save(tmp_path / "huge.npy", 1e300 * SINE)
    _with_metadata(sine_model.model_path, tmp_path / "inf.keras", lambda m: m["preprocessing"].update(divisor=np.inf))
    (tmp_path / "text.keras").write_text("not a zip")
    (tmp_path / "exists").mkdir()
    cases = {
        "not a Keras file": ([str(tmp_path / "text.keras"), "--out", str(tmp_path / "b1")], "not a readable .keras"),
        "missing model": ([str(tmp_path / "none.keras"), "--out", str(tmp_path / "b2")], "model file not found"),
        "out exists": ([model, "--out", str(tmp_path / "exists")], "already exists; use --force"),
        "unwritable": ([model, "--out", "/proc/edgernn-bundle"], "cannot write to /proc"),
        "calibration shape": ([model, "--out", str(tmp_path / "b3"), "--calibration-data", str(tmp_path / "wide.npy")],
                              "expected a 1-D series"),
        "calibration zero-byte .npy": ([model, "--out", str(tmp_path / "b5"), "--calibration-data",
                                        str(tmp_path / "empty.npy")], "empty.npy is empty (0 bytes)"),
        "calibration overflow": ([model, "--out", str(tmp_path / "b6"), "--calibration-data",
                                  str(tmp_path / "huge.npy")], "huge.npy: value 2 (of 300) becomes"),
        "unknown variant": ([model, "--out", str(tmp_path / "b4"), "--variants", "tflite-int4"], "unknown variant 'tflite-int4'"),
        "infinite divisor": ([str(tmp_path / "inf.keras"), "--out", str(tmp_path / "b7")],
                             "inf.keras: edgernn.json is unreadable: Infinity is not a JSON value"),
    }
    for name, (args, message) in cases.items():
        result = runner.invoke(cli, ["export", *args, "--no-verify"])
        assert result.exit_code == 2, (name, result.output)
        assert message in result.stderr, (name, result.stderr)
        assert "Traceback" not in result.output
        if name.startswith("calibration"):
            assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.npy", "exists", "huge.npy", "inf.keras", "text.keras",
                                                          "wide.npy"]
    with pytest.raises(ModelError, match="inf.keras: edgernn.json is unreadable"):
        edgernn.predict(tmp_path / "inf.keras", SINE)  # the library, too: one typed error, not a ValueError


def _with_metadata(source, target, change):
    """A copy of a .keras file whose edgernn metadata ``change`` edited (as a model saved by an older edgernn)."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as copy:
        for item in original.infolist():
            data = original.read(item)
            if item.filename == "edgernn.json":
                metadata = json.loads(data)
                change(metadata)
                data = json.dumps(metadata)  # json writes inf as Infinity, as edgernn once did
            copy.writestr(item, data)


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


def test_debug_flag_shows_the_traceback_and_keeps_the_exit_code(runner, tmp_path):
    quiet = runner.invoke(cli, ["stream", str(tmp_path / "nope")])
    assert quiet.exit_code == 2 and "Traceback" not in quiet.stderr
    loud = runner.invoke(cli, ["--debug", "stream", str(tmp_path / "nope")])
    assert loud.exit_code == 2 and "Traceback" in loud.stderr and "BundleError: bundle not found" in loud.stderr
    assert loud.stderr.strip().splitlines()[-1].startswith("error: bundle not found")
