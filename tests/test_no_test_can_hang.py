"""No test can hang: every call in the tests that waits on another process or thread says how long it may wait.

pytest-timeout stops a stuck test in the full environment, but the emulated aarch64 stage and a bare device venv
run without it, and a reviewer's run once hung for 15 minutes on a FIFO. Read statically, so a new test that
forgets a timeout fails here before it ever hangs.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
SUBPROCESS_WAITS = {"run", "call", "check_call", "check_output"}  # subprocess.X(...) waits for the process
METHOD_WAITS = {"wait", "join", "communicate"}  # process.wait(), thread.join(), process.communicate()


def _waits_without_limit(call: ast.Call) -> bool:
    func = call.func
    if not isinstance(func, ast.Attribute):
        return False
    keywords = {keyword.arg for keyword in call.keywords}
    if "timeout" in keywords:
        return False
    if isinstance(func.value, ast.Name) and func.value.id == "subprocess":
        return func.attr in SUBPROCESS_WAITS
    # a positional argument is the timeout of wait/join/communicate(input) ... or a string join's iterable
    return func.attr in METHOD_WAITS and not call.args


def unbounded_waits() -> list[str]:
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and _waits_without_limit(node):
                found.append(f"{path.relative_to(TESTS.parent)}:{node.lineno}: {ast.unparse(node)[:80]}")
    return found


def test_every_wait_in_the_tests_has_a_timeout():
    assert unbounded_waits() == []


def test_the_checker_sees_what_it_must():
    calls = ["subprocess.run(['x'])", "p.wait()", "t.join()", "p.communicate()"]
    fine = ["subprocess.run(['x'], timeout=5)", "p.wait(timeout=5)", "t.join(10)", "', '.join(names)"]
    assert all(_waits_without_limit(ast.parse(code).body[0].value) for code in calls)
    assert not any(_waits_without_limit(ast.parse(code).body[0].value) for code in fine)


def test_runtime_tests_that_start_python_skip_where_it_cannot_start():
    """Under qemu-user (CI's aarch64 stage) the emulated Python cannot start a copy of itself: a runtime test
    module that runs ``sys.executable`` must carry ``needs_spawn`` (it failed there three times over when one
    did not)."""
    unmarked = [path.name for path in sorted((TESTS / "runtime").glob("test_*.py"))
                if "sys.executable" in path.read_text() and "needs_spawn" not in path.read_text()]
    assert unmarked == []
