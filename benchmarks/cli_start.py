"""How long ``edgernn --help`` takes beyond Python's own start (``python -c pass``), best of N interleaved runs.

The CLI imports no numpy until a command needs it (tests/runtime/test_light_cli.py holds that); this measures
what that buys. Usage: ``python benchmarks/cli_start.py [RUNS]``.
"""

from __future__ import annotations

import subprocess
import sys
import time


def _seconds(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, capture_output=True, timeout=60)
    return time.perf_counter() - started


def main(runs: int = 7) -> None:
    python, cli = [], []
    for _ in range(runs):  # interleaved: this machine's speed drifts between minutes
        python.append(_seconds("-c", "pass"))
        cli.append(_seconds("-m", "edgernn", "--help"))
    print(f"python -c pass: {min(python):.3f} s; edgernn --help: {min(cli):.3f} s; "
          f"overhead {min(cli) - min(python):.3f} s (best of {runs})")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
