"""The emulated aarch64 stage leaves out tests marked ``portable`` (.ci/aarch64.sh); this keeps that mark off what an
architecture can change: each module that checks what an interpreter or numpy computes keeps tests that run there.

Read statically (no collection, no bundles), so marking a whole numeric module portable fails here, natively.
"""

from __future__ import annotations

import ast
from pathlib import Path

RUNTIME = Path(__file__).resolve().parent / "runtime"
# predictions and their parity, quantization, batched streams, intervals, kernels, verify verdicts
NUMERIC = ["test_compatibility_claims", "test_device_verify", "test_intervals", "test_mqtt_topics",
           "test_multivariate", "test_old_bundles", "test_predictor", "test_quantization", "test_tflite_kernels"]


def _is_portable(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr == "portable" for n in ast.walk(node))


def kept_under_emulation(module: Path) -> list[str]:
    """The module's test functions not marked ``portable`` (by ``pytestmark`` or a decorator)."""
    tree = ast.parse(module.read_text())
    for node in tree.body:
        if (isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "pytestmark" for t in node.targets)
                and _is_portable(node.value)):
            return []
    return [node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
            and not any(_is_portable(d) for d in node.decorator_list)]


def test_the_reader_sees_both_ways_of_marking():
    assert kept_under_emulation(RUNTIME / "test_fuzz.py") == []  # pytestmark
    kept = kept_under_emulation(RUNTIME / "test_predictor.py")
    assert "test_bad_bundles_give_one_line_errors" not in kept  # a decorator
    assert "test_float32_equals_the_exporting_machine" in kept


def test_every_numeric_module_keeps_tests_under_emulation():
    for name in NUMERIC:
        assert kept_under_emulation(RUNTIME / f"{name}.py"), f"{name}: every test is marked portable"
