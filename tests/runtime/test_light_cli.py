"""A light CLI: ``import edgernn.cli.commands`` and every ``--help`` load no numpy (its start-up time is measured by
benchmarks/cli_start.py against Python's own, not asserted here)."""

from __future__ import annotations

import subprocess
import sys

from runtime_env import needs_spawn

pytestmark = needs_spawn  # each test starts Python itself

TIMEOUT = 60
HELP_EVERY_COMMAND = """
import sys
from click.testing import CliRunner
from edgernn.cli.commands import cli
for args in [["--help"], *([name, "--help"] for name in cli.commands)]:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0 and "Usage:" in result.output, (args, result.output)
loaded = [name for name in ("numpy", "tensorflow", "edgernn.runtime.predictor") if name in sys.modules]
assert not loaded, f"--help loaded {loaded}"
"""


def _python(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=TIMEOUT)


def test_importing_the_cli_loads_no_numpy():
    result = _python("-c", "import edgernn.cli.commands, sys; assert 'numpy' not in sys.modules, 'numpy was imported'")
    assert result.returncode == 0, result.stderr


def test_every_help_loads_no_numpy():
    result = _python("-c", HELP_EVERY_COMMAND)
    assert result.returncode == 0, result.stderr


def test_edgernn_help_exits_0_as_a_process():
    """The real entry point (what a shell runs); how long it takes is benchmarks/cli_start.py's business."""
    result = _python("-m", "edgernn", "--help")
    assert result.returncode == 0 and "Usage:" in result.stdout, result.stderr
