"""Runtime tests run in the full environment and in runtime-only ones (no TensorFlow).

``EDGERNN_TEST_BUNDLES=DIR`` points at bundles exported once by the full environment
(``tests/make_bundles.py``); without it, the bundles are made here (which needs TensorFlow).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@pytest.fixture(scope="session")
def bundles(tmp_path_factory):
    given = os.environ.get("EDGERNN_TEST_BUNDLES")
    if given:
        return {p.name: p for p in Path(given).iterdir() if (p / "manifest.json").exists()}
    pytest.importorskip("tensorflow")
    from make_bundles import make_bundles

    return make_bundles(tmp_path_factory.mktemp("bundles"))


@pytest.fixture(scope="session")
def sine_values():
    from edgernn.data import sine_series

    return sine_series()[:1000]
