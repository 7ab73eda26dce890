"""Runtime tests run in the full environment and in runtime-only ones (no TensorFlow).

``EDGERNN_TEST_BUNDLES=DIR`` points at bundles exported once by the full environment
(``tests/make_bundles.py``); without it, the bundles are made here where TensorFlow is installed, and elsewhere
(a device with nothing else) the bundle kept in the repository is used (``tests/data/bundles``: the 16-unit
sine, every variant); tests that need another bundle skip, saying which.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class Bundles(dict):
    """Bundles by name; a name not here skips the test that asks for it."""

    def __missing__(self, name):
        pytest.skip(f"bundle {name!r} is not available here (only {', '.join(self)}): set EDGERNN_TEST_BUNDLES "
                    "or install TensorFlow to make it")


def _found(directory: Path) -> Bundles:
    return Bundles({p.name: p for p in sorted(directory.iterdir()) if (p / "manifest.json").exists()})


@pytest.fixture(scope="session")
def bundles(tmp_path_factory):
    given = os.environ.get("EDGERNN_TEST_BUNDLES")
    if given:
        return _found(Path(given).resolve())  # absolute: some tests change the working directory
    if importlib.util.find_spec("tensorflow") is None:
        from make_bundles import COMMITTED

        return _found(COMMITTED)
    from make_bundles import TEST_BUNDLES, make_bundles

    return Bundles(make_bundles(tmp_path_factory.mktemp("bundles"), names=TEST_BUNDLES))


@pytest.fixture(scope="session")
def sine_values():
    from edgernn.data import sine_series

    return sine_series()[:1000]
