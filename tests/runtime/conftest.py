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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from built_once import build_once, run_root  # noqa: E402


class Bundles(dict):
    """Bundles by name; a name not here skips the test that asks for it."""

    reference_file: Path | None = None  # the exporting machine's float32 predictions, where there are any

    def __missing__(self, name):
        pytest.skip(f"bundle {name!r} is not available here (only {', '.join(self)}): set EDGERNN_TEST_BUNDLES "
                    "or install TensorFlow to make it")

    def every(self) -> dict[str, Path]:
        """Every bundle this environment has."""
        return dict(self)

    def x86_reference(self) -> Path | None:
        return self.reference_file


class BuiltBundles(Bundles):
    """Where TensorFlow is installed: each bundle trained and exported when a test first asks for it, once per run
    across xdist workers (``built_once``); the tests' host fixtures share the same trained models."""

    def __init__(self, root: Path):
        super().__init__()
        self.root = root

    def __missing__(self, name):
        from make_bundles import SPECS, built_bundle

        if name not in SPECS:
            return super().__missing__(name)
        bundle = self[name] = built_bundle(self.root, name)
        return bundle

    def every(self) -> dict[str, Path]:
        from make_bundles import TEST_BUNDLES

        return {name: self[name] for name in TEST_BUNDLES}

    def x86_reference(self) -> Path:
        from make_bundles import write_x86_reference

        bundles = self.every()
        return build_once(self.root, "x86-reference",
                          lambda directory: write_x86_reference(directory / "float32-reference.npz", bundles)
                          ) / "float32-reference.npz"


def _found(directory: Path) -> Bundles:
    found = Bundles({p.name: p for p in sorted(directory.iterdir()) if (p / "manifest.json").exists()})
    reference = directory / "float32-reference.npz"
    found.reference_file = reference if reference.exists() else None
    return found


@pytest.fixture(scope="session")
def bundles(tmp_path_factory):
    given = os.environ.get("EDGERNN_TEST_BUNDLES")
    if given:
        return _found(Path(given).resolve())  # absolute: some tests change the working directory
    if importlib.util.find_spec("tensorflow") is None:
        from make_bundles import COMMITTED

        return _found(COMMITTED)
    return BuiltBundles(run_root(tmp_path_factory))


@pytest.fixture(scope="session")
def sine_values():
    from edgernn.data.series import sine_series

    return sine_series()[:1000]


@pytest.fixture
def paho():
    """paho-mqtt, or a skip saying how to install it (the MQTT tests' one guard)."""
    from mqtt_broker import require_mqtt

    return require_mqtt()


@pytest.fixture
def broker(paho, tmp_path):
    """A real Mosquitto on a free localhost port, run as the current user (its persistence in tmp_path)."""
    from mqtt_broker import Mosquitto

    server = Mosquitto(tmp_path / "broker").start()
    yield server
    server.stop()
