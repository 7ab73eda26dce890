"""Small modules with one job: no function over 60 lines, no module over 500, read with ``ast`` (nothing imported).

A function's length runs from its ``def`` to its last line (decorators left out); a nested function counts
inside its parent too, so a parent cannot hide its length in a closure.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "edgernn"
MOST_LINES_A_FUNCTION = 60
MOST_LINES_A_MODULE = 500


def _functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.lineno, node.end_lineno - node.lineno + 1


def test_no_function_over_sixty_lines():
    long = [f"{path.relative_to(ROOT.parent)}:{line} {name} ({length} lines)"
            for path in sorted(ROOT.rglob("*.py")) for name, line, length in _functions(path)
            if length > MOST_LINES_A_FUNCTION]
    assert not long, "functions over 60 lines:\n" + "\n".join(long)


def test_no_module_over_five_hundred_lines():
    long = [f"{path.relative_to(ROOT.parent)} ({count} lines)" for path in sorted(ROOT.rglob("*.py"))
            if (count := len(path.read_text(encoding="utf-8").splitlines())) > MOST_LINES_A_MODULE]
    assert not long, "modules over 500 lines:\n" + "\n".join(long)


def test_the_counts_see_a_long_function(tmp_path):
    """The counter itself: a 61-line function is found, a 60-line one is not."""
    body = "\n".join(f"    x{i} = {i}" for i in range(59))
    (tmp_path / "long.py").write_text(f"def at_most():\n{body}\n\n\ndef too_long():\n{body}\n    x = 0\n")
    assert [(name, length) for name, _, length in _functions(tmp_path / "long.py")] == [("at_most", 60),
                                                                                        ("too_long", 61)]
