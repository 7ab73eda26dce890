"""The runnable blocks of README.md and docs/*.md (fenced ```bash runnable NAME / ```python runnable NAME).

Keeps the docs from rotting: every command a newcomer copies from those blocks works as written. Blocks with the
same NAME run in order in one directory (a later one may use what an earlier one made); each NAME is its own
test, so xdist runs them side by side.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```(bash|python) runnable(?: ([\w-]+))?\n(.*?)^```", re.S | re.M)
MADE = {"temp": ["temp-report/drift.png", "state.npz"]}  # what a group's blocks leave behind, checked too


def runnable_blocks() -> dict[str, list[tuple[str, str]]]:
    """Blocks by group name, in the order they appear (README first, then docs/ by name)."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for doc in DOCS:
        for kind, name, code in BLOCK.findall(doc.read_text()):
            groups.setdefault(f"{doc.stem}-{name or 'blocks'}", []).append((kind, code))
    return groups


def test_readme_has_runnable_blocks():
    kinds = [kind for kind, _ in runnable_blocks().get("README-temp", [])]
    assert kinds.count("bash") >= 1 and kinds.count("python") >= 2
    assert len(runnable_blocks()) >= 3


@pytest.mark.parametrize("group", sorted(runnable_blocks()))
def test_runnable_blocks_work(group, tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for kind, code in runnable_blocks()[group]:
        command = ["bash", "-euo", "pipefail", "-c", code] if kind == "bash" else [sys.executable, "-c", code]
        result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, (f"{group} block failed:\n{code}\n--- stdout\n{result.stdout[-2000:]}\n"
                                        f"--- stderr\n{result.stderr[-2000:]}")
    for made in MADE.get(group.split("-", 1)[1], []):
        assert (tmp_path / made).exists(), made
