"""The CLI where optional packages are really missing: CI runs these in its runtime-only virtualenvs (no
TensorFlow, no matplotlib), installed from the built wheel. In the full environment they skip."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from runtime_env import needs_interpreter, needs_spawn

CLI = [sys.executable, "-m", "edgernn"]
NO_TENSORFLOW = importlib.util.find_spec("tensorflow") is None
NO_MATPLOTLIB = importlib.util.find_spec("matplotlib") is None
pytestmark = needs_spawn


def _one_line_exit_2(result, text: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: ") and text in result.stderr, result.stderr


@pytest.mark.skipif(not NO_TENSORFLOW, reason="TensorFlow is installed here")
@pytest.mark.parametrize("args", [["train", "--data", "sine", "--epochs", "1", "--out", "{tmp}/new.keras"],
                                  ["export", "{tmp}/m.keras", "--out", "{tmp}/b"],
                                  ["demo", "--out", "{tmp}/demo"],
                                  ["verify", "{bundle}", "--reference", "keras"]],
                         ids=["train", "export", "demo", "verify --reference keras"])
def test_host_commands_without_tensorflow_name_the_extra(bundles, tmp_path, args):
    (tmp_path / "m.keras").write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip: export fails on the import first
    args = [a.format(tmp=tmp_path, bundle=bundles["sine"]) for a in args]
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)
    _one_line_exit_2(result, "pip install 'edgernn[train]'")
    assert not (tmp_path / "b").exists() and not (tmp_path / "demo").exists()


@pytest.mark.skipif(not NO_MATPLOTLIB, reason="matplotlib is installed here")
@needs_interpreter
def test_report_without_matplotlib_still_writes_json_and_markdown(bundles, tmp_path):
    report = tmp_path / "report"
    result = subprocess.run([*CLI, "verify", str(bundles["sine"]), "--steps", "500", "--report", str(report)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
    assert "the plots need matplotlib" in result.stderr
    assert json.loads((report / "report.json").read_text())["variants"]
    assert "| variant |" in (report / "report.md").read_text()
    assert not list(report.glob("*.png"))
