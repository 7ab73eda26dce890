"""A light CLI: ``import edgernn.cli`` and every ``--help`` load no numpy, and ``edgernn --help`` starts fast."""

from __future__ import annotations

import subprocess
import sys
import time

TIMEOUT = 60
HELP_EVERY_COMMAND = """
import sys
from click.testing import CliRunner
from edgernn.cli import cli
for args in [["--help"], *([name, "--help"] for name in cli.commands)]:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0 and "Usage:" in result.output, (args, result.output)
loaded = [name for name in ("numpy", "tensorflow", "edgernn.runtime.predictor") if name in sys.modules]
assert not loaded, f"--help loaded {loaded}"
"""


def _python(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=TIMEOUT)


def test_importing_the_cli_loads_no_numpy():
    result = _python("-c", "import edgernn.cli, sys; assert 'numpy' not in sys.modules, 'numpy was imported'")
    assert result.returncode == 0, result.stderr


def test_every_help_loads_no_numpy():
    result = _python("-c", HELP_EVERY_COMMAND)
    assert result.returncode == 0, result.stderr


def _best_of_three(*args: str) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        result = _python(*args)
        best = min(best, time.perf_counter() - started)
        assert result.returncode == 0, result.stderr
    return best


def test_edgernn_help_exits_0_and_costs_little_over_python_itself():
    result = _python("-m", "edgernn", "--help")
    assert result.returncode == 0 and "Usage:" in result.stdout, result.stderr
    overhead = _best_of_three("-m", "edgernn", "--help") - _best_of_three("-c", "pass")
    assert overhead < 0.3, f"edgernn --help takes {overhead:.3f} s beyond Python's own start"
