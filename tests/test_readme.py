"""The README's runnable blocks (fenced ```bash runnable / ```python runnable), run in order in one directory.

Keeps the README from rotting: every command a newcomer copies from those blocks works as written.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```(bash|python) runnable\n(.*?)^```", re.S | re.M)


def runnable_blocks() -> list[tuple[str, str]]:
    return BLOCK.findall(README.read_text())


def test_readme_has_runnable_blocks():
    kinds = [kind for kind, _ in runnable_blocks()]
    assert kinds.count("bash") >= 2 and kinds.count("python") >= 1


def test_readme_runnable_blocks_work(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for kind, code in runnable_blocks():
        command = ["bash", "-euo", "pipefail", "-c", code] if kind == "bash" else [sys.executable, "-c", code]
        result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"README block failed:\n{code}\n--- stdout\n{result.stdout[-2000:]}\n--- stderr\n{result.stderr[-2000:]}"
    assert (tmp_path / "temp-report" / "drift.png").exists() and (tmp_path / "state.npz").exists()
