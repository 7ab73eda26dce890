"""Untrusted bundles: random manifest mutations and model-byte mutations end in a clean edgernn error."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from edgernn.runtime import EdgernnError, StreamingPredictor  # noqa: E402
from edgernn.runtime.backends import installed  # noqa: E402
from runtime_env import EMULATED, needs_spawn  # noqa: E402

ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["../../etc/passwd", "/etc/passwd", "", "\x00", "tflite-int8", "x" * 5000, "h0_out"]),
    st.lists(st.integers(min_value=-5, max_value=10**9), max_size=5), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _paths(node, prefix=()):
    """Every key path in a JSON tree."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, prefix + (index,))


@pytest.fixture(scope="module")
def manifest_fuzz_dir(bundles, tmp_path_factory):
    target = tmp_path_factory.mktemp("fuzz") / "bundle"
    shutil.copytree(bundles["sine"], target)
    return target


@pytest.mark.skipif(EMULATED, reason="hypothesis' float strategy asserts under qemu-user; run natively")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_manifest_mutations_end_cleanly(manifest_fuzz_dir, bundles, data):
    original = json.loads((bundles["sine"] / "manifest.json").read_text())
    manifest = copy.deepcopy(original)
    paths = [p for p in _paths(manifest) if p]
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        path = data.draw(st.sampled_from(paths))
        parent = manifest
        try:
            for key in path[:-1]:
                parent = parent[key]
            if data.draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = data.draw(ODD_VALUES)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation removed or replaced this path's parent
    (manifest_fuzz_dir / "manifest.json").write_text(json.dumps(manifest))
    variant = data.draw(st.sampled_from(["tflite-float32", "tflite-int8", "onnx-float32"]))
    try:
        StreamingPredictor.load(manifest_fuzz_dir, variant).run(np.array([0.1, 0.2, np.nan, 0.3]))
    except EdgernnError as exc:
        assert str(exc) and "\n" not in str(exc)


@needs_spawn
@pytest.mark.parametrize("variant", ["tflite-float32", "tflite-int8", "onnx-float32"])
def test_model_byte_mutations_end_cleanly(bundles, tmp_path, variant):
    fmt = variant.split("-")[0]
    if (fmt == "onnx" and "onnxruntime" not in installed()) or (
            fmt == "tflite" and not {"litert", "tflite-runtime"} & set(installed())):
        pytest.skip(f"no interpreter for {fmt} here")
    worker = Path(__file__).with_name("fuzz_model_bytes.py")
    result = subprocess.run([sys.executable, str(worker), str(bundles["sine"]), variant, "150", "7",
                             str(tmp_path / "scratch")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"worker died (code {result.returncode}): {result.stderr[-500:]}"
    outcomes = json.loads(result.stdout.strip().splitlines()[-1])
    assert sum(outcomes.values()) == 150
    assert not [k for k in outcomes if k.startswith("OTHER")], outcomes
