"""The CLI's contract, enforced: exit codes 0/1/2/3, one-line errors, --debug, help for every option,
case-insensitive choices, --json everywhere results are printed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from edgernn.cli.commands import cli

CLI = [sys.executable, "-m", "edgernn"]


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def test_every_option_has_help_and_lists_its_choices():
    for name, command in cli.commands.items():
        for param in command.params:
            if isinstance(param, click.Option) and param.name != "help":
                assert param.help, f"{name} {param.opts[0]} has no help text"
                if isinstance(param.type, click.Choice):
                    assert not param.type.case_sensitive, f"{name} {param.opts[0]} is case-sensitive"


PRINTS_RESULTS = ("train", "export", "verify", "bench", "demo", "c-array", "c-step", "keygen", "sign")  # stream: lines


def test_one_vocabulary_across_commands():
    """The same concept has the same option on every command (issue 29): ``--out`` for what a command writes,
    ``--target`` (repeatable) for what a model predicts, a range for every integer, ``--json`` wherever results
    are printed. Older spellings (``stream --output``, ``export --targets``) are still read, and hidden or listed
    second."""
    for name, command in cli.commands.items():
        options = {opt: param for param in command.params if isinstance(param, click.Option) for opt in param.opts}
        visible = {opt for opt, param in options.items() if not param.hidden and param.opts[0] == opt}
        assert not visible & {"--output", "--targets", "--outdir", "--output-dir"}, (name, visible)
        if "--target" in options:
            assert options["--target"].multiple, name
        for param in set(options.values()):
            if isinstance(param.type, click.types.IntParamType) and not param.hidden:
                assert isinstance(param.type, click.IntRange), f"{name} {param.opts[0]} is a plain int"
        if name in PRINTS_RESULTS:
            assert "--json" in options, f"{name} prints results but has no --json"
        if "--backend" in options:  # a list everywhere: bench measures each, verify gates each, stream prefers
            assert options["--backend"].type.name == "backend list", name
    reads = {name: {opt for param in cli.commands[name].params for opt in param.opts}
             for name in ("train", "verify", "stream")}
    for name, opts in reads.items():  # the series options, shared by every command that reads a data file
        assert {"--column", "--columns"} <= opts, name
    for name, opts in reads.items():
        assert "--time-column" in opts, name


def test_stream_help_fits_a_screen():
    """The line service and the MQTT bridge are two commands: each one's --help is its own."""
    for name, most in (("stream", 60), ("bridge", 110)):
        result = subprocess.run([*CLI, name, "--help"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and len(result.stdout.splitlines()) <= most, (name, len(result.stdout.splitlines()))


def test_older_spellings_still_work(runner, sine_bundle, tmp_path):
    result = runner.invoke(cli, ["stream", str(sine_bundle), "--variant", "tflite-float32", "--output",
                                 str(tmp_path / "old.txt")], input="0.1\n0.2\n")
    assert result.exit_code == 0 and (tmp_path / "old.txt").read_text().count("\n") == 2
    result = runner.invoke(cli, ["stream", str(sine_bundle), "--variant", "tflite-float32", "--out",
                                 str(tmp_path / "new.txt")], input="0.1\n0.2\n")
    assert result.exit_code == 0 and (tmp_path / "new.txt").read_text() == (tmp_path / "old.txt").read_text()


def test_usage_errors_are_one_line_exit_2():
    for args in (["train", "--cell", "transformer"], ["stream", "b", "--variant", "tflite-int4"],
                 ["bench", "b", "--backend", "litrt"], ["verify", "b", "--steps", "3"], ["nope"]):
        result = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), (args, result.stderr)


def test_choices_are_case_insensitive(runner, sine_bundle):
    result = runner.invoke(cli, ["stream", str(sine_bundle), "--variant", "TFLITE-Float32", "--on-nan", "Hold",
                                 "--backend", "LiteRT"], input="0.1\nnan\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == result.stdout.splitlines()[1] or len(result.stdout.splitlines()) == 2


def test_a_model_given_as_a_bundle_says_what_to_do(runner, sine_model):
    result = runner.invoke(cli, ["verify", str(sine_model.model_path)])
    assert result.exit_code == 2
    assert f"export it first: edgernn export {sine_model.model_path} --out BUNDLE" in result.stderr


def test_an_internal_error_is_exit_3_and_says_it_is_a_bug(runner, sine_bundle, monkeypatch):
    import edgernn.verification

    def broken(*args, **kwargs):
        return 1 / 0  # a bug inside edgernn, not bad input

    monkeypatch.setattr(edgernn.verification, "verify", broken)
    quiet = runner.invoke(cli, ["verify", str(sine_bundle)])
    assert quiet.exit_code == 3 and "Traceback" not in quiet.stderr
    assert _last_line(quiet.stderr).startswith("error: internal error: ZeroDivisionError") and "bug" in quiet.stderr
    loud = runner.invoke(cli, ["--debug", "verify", str(sine_bundle)])
    assert loud.exit_code == 3 and "Traceback" in loud.stderr


def test_verify_json_says_skipped_not_failed(runner, sine_bundle):
    result = runner.invoke(cli, ["verify", str(sine_bundle), "--backend", "onnxruntime", "--steps", "200",
                                 "--variants", "tflite-int8,onnx-float32", "--json"])
    data = json.loads(result.stdout)
    rows = {row["variant"]: row for row in data["variants"]}
    assert rows["tflite-int8"]["result"] == "skipped" and rows["tflite-int8"]["passed"] is None
    assert rows["onnx-float32"]["result"] == "pass" and rows["onnx-float32"]["passed"] is True
    assert result.exit_code == 0 and data["passed"]


def test_export_json_is_the_result_and_the_gate(runner, sine_model, tmp_path):
    out = tmp_path / "b"
    result = runner.invoke(cli, ["export", str(sine_model.model_path), "--out", str(out),
                                 "--variants", "tflite-float32,onnx-float32", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["bundle"] == str(out) and data["variants"] == ["tflite-float32", "onnx-float32"]
    assert [row["result"] for row in data["verify"]["variants"]] == ["pass", "pass"]


@pytest.mark.parametrize("args", [["--version"], ["stream", "--help"]])
def test_help_and_version_exit_0(args):
    assert subprocess.run([*CLI, *args], capture_output=True, timeout=60).returncode == 0


def test_keygen_and_sign_print_json(runner, tmp_path):
    """--json on the signing commands: the key files and fingerprint, then the bundle, key and version."""
    import shutil

    from make_bundles import COMMITTED

    made = runner.invoke(cli, ["keygen", "--out", str(tmp_path / "keys"), "--json"])
    assert made.exit_code == 0, made.output
    keys = json.loads(made.stdout)
    assert Path(keys["private_key"]).is_file() and Path(keys["public_key"]).is_file() and len(keys["fingerprint"]) >= 16
    shutil.copytree(COMMITTED / "sine", tmp_path / "bundle")
    signed = runner.invoke(cli, ["sign", str(tmp_path / "bundle"), "--key", keys["private_key"], "--json"])
    assert signed.exit_code == 0, signed.output
    assert json.loads(signed.stdout) == {"bundle": str(tmp_path / "bundle"), "key": keys["fingerprint"], "version": 1}
