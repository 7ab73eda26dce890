"""The runnable blocks of README.md and docs/*.md (fenced ```bash runnable NAME / ```python runnable NAME).

Keeps the docs from rotting: every command a newcomer copies from those blocks works as written. Blocks with the
same NAME run in order in one directory (a later one may use what an earlier one made); each NAME is its own
test, so xdist runs them side by side. The pages hold together too: each starts with a line saying what it is
for, the README links each one, and every relative link and anchor in them leads somewhere.
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
MADE = {"README-temp": ["temp-report/drift.png", "state.npz"]}  # what a group's blocks leave behind, checked too
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


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
    for made in MADE.get(group, []):
        assert (tmp_path / made).exists(), made


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_docs_page_says_what_it_is_for_and_the_readme_links_it():
    readme = (ROOT / "README.md").read_text()
    for page in DOCS[1:]:
        title, _, rest = page.read_text().partition("\n\n")
        first = rest.split("\n\n", 1)[0]
        assert title.startswith("# ") and first and "\n" not in first, f"{page.name}: '# title', then one line"
        assert re.search(rf"^- \[docs/{re.escape(page.name)}\]\(docs/{re.escape(page.name)}\): \S", readme,
                         re.M), f"README.md lists no '- [docs/{page.name}](docs/{page.name}): what it holds'"


def test_relative_links_and_anchors_lead_somewhere():
    for doc in DOCS:
        for target in LINK.findall(re.sub(r"^```.*?^```", "", doc.read_text(), flags=re.S | re.M)):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            file = (doc.parent / path).resolve() if path else doc
            assert file.exists(), f"{doc.name}: link to {target}: no such file"
            if anchor:
                headings = re.findall(r"^#+ (.*)$", file.read_text(), re.M)
                assert anchor in {_anchor(h) for h in headings}, f"{doc.name}: link to {target}: no such heading"


def test_architecture_lists_every_module():
    """docs/ARCHITECTURE.md's tree names every module under edgernn/ (by its place in the tree) and no other."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    tree = re.search(r"^```\nedgernn/\n(.*?)^```", text, re.S | re.M).group(1)
    listed, parents = set(), {0: "edgernn"}
    for line in tree.splitlines():
        depth, name = (len(line) - len(line.lstrip())) // 2, line.strip().split(" ")[0]
        if name.endswith("/"):
            parents[depth] = f"{parents[depth - 1]}/{name[:-1]}"
        elif name.endswith(".py"):
            listed.add(f"{parents[depth - 1]}/{name}")
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "edgernn").rglob("*.py")}
    assert listed == modules, f"not in the tree: {sorted(modules - listed)}; no such module: {sorted(listed - modules)}"


def test_a_docs_block_said_to_run_in_the_readme_is_one_of_its_blocks():
    """A page that repeats a README block and says it runs there repeats it exactly, so the test that runs the
    README's block runs the page's too."""
    readme = {code for blocks in runnable_blocks().values() for _, code in blocks}
    copies = 0
    for page in DOCS[1:]:
        for code in re.findall(r"runs, tested, in\s+\[the README[^\n]*\n+```python\n(.*?)^```",
                                     page.read_text(), re.S | re.M):
            copies += 1
            assert code in readme, f"{page.name}: a block said to run in the README's tour differs from it"
    assert copies >= 2
