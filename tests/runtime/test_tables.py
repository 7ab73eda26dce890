"""Tables own their axes: a variant or a backend added to its table alone reaches every part that names them.

A copy of the edgernn package gets one new variant row (reusing tflite-int8's converter settings) and one new
backend (its module wrapping the litert interpreter, and its row) and nothing else; in that copy the CLI's
choices, the manifest's validation, export's interpreter checks and the missing-package extras all know both,
and ``edgernn stream`` runs the new variant on the new backend with tflite-int8's results on litert.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bundle_edit import copy_bundle, manifest_of, write_manifest
from edgernn.runtime.backends import installed
from edgernn.errors import BundleError
from edgernn.runtime.manifest_reader import read_manifest
from runtime_env import needs_spawn

SOURCE = Path(__file__).resolve().parents[2] / "edgernn"
NEW_VARIANT, NEW_BACKEND = "tflite-int8-copy", "litert-copy"
VARIANT_ROW = (f'    VariantSpec("{NEW_VARIANT}", "tflite", "int8", False, 2.0, True, False, "as tflite-int8", '
               'integer_io=True),\n')
BACKEND_ROW = (f'    BackendInfo("{NEW_BACKEND}", "edgernn.runtime.backends.litert_copy", "ai_edge_litert", '
               '"litert-copy", False, True),\n')
BACKEND_MODULE = f'''"""A throwaway backend: the litert interpreter under another name."""

from edgernn.runtime.backends.litert import LiteRTBackend, available  # noqa: F401


class LiteRTCopy(LiteRTBackend):
    name = "{NEW_BACKEND}"


BACKEND = LiteRTCopy
'''
TIMEOUT = 120

pytestmark = [pytest.mark.skipif("litert" not in installed(), reason="needs ai-edge-litert"), needs_spawn]


def _insert_before(path: Path, marker: str, row: str) -> None:
    text = path.read_text()
    assert text.count(marker) == 1, f"{marker!r} in {path}"
    path.write_text(text.replace(marker, row + marker))


@pytest.fixture(scope="module")
def extended(tmp_path_factory) -> Path:
    """A copy of the package with the two rows and the backend's module added: three edits, two table files."""
    root = tmp_path_factory.mktemp("extended")
    shutil.copytree(SOURCE, root / "edgernn", ignore=shutil.ignore_patterns("__pycache__"))
    _insert_before(root / "edgernn/runtime/variants.py", '    VariantSpec("tflite-int16x8"', VARIANT_ROW)
    _insert_before(root / "edgernn/runtime/backends/__init__.py", '    BackendInfo("numpy"', BACKEND_ROW)
    (root / "edgernn/runtime/backends/litert_copy.py").write_text(BACKEND_MODULE)
    return root


@pytest.fixture(scope="module")
def bundle_with_new_variant(bundles, tmp_path_factory) -> Path:
    """The sine bundle with tflite-int8's file and entry also under the new name, recorded as run by the new
    backend."""
    bundle = copy_bundle(bundles["sine"], tmp_path_factory.mktemp("b") / "sine")
    manifest = manifest_of(bundle)
    entry = dict(manifest["variants"]["tflite-int8"], name=NEW_VARIANT, file=f"{NEW_VARIANT}.tflite")
    entry["interpreters"] = {**entry["interpreters"], NEW_BACKEND: {"runs": True, "reason": "loaded at export"}}
    shutil.copyfile(bundle / "tflite-int8.tflite", bundle / entry["file"])
    manifest["variants"][NEW_VARIANT] = entry
    write_manifest(bundle, manifest)
    return bundle


def _run(root: Path, args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
                          capture_output=True, text=True, timeout=TIMEOUT, **kwargs)


def test_the_cli_offers_the_new_variant_and_backend(extended):
    for command, wanted in (("stream", (NEW_VARIANT, NEW_BACKEND)), ("export", (NEW_VARIANT,)),
                            ("bench", (NEW_BACKEND,)), ("c-array", (NEW_VARIANT,))):
        result = _run(extended, ["-m", "edgernn", command, "--help"])
        assert result.returncode == 0, result.stderr
        for name in wanted:
            assert name in result.stdout, (command, name)


def test_the_manifest_accepts_the_new_variant_only_where_the_table_has_it(extended, bundle_with_new_variant):
    with pytest.raises(BundleError, match=f"unknown variant '{NEW_VARIANT}'"):
        read_manifest(bundle_with_new_variant)  # this edgernn's table: refused
    script = ("import sys; from edgernn.runtime.manifest_reader import read_manifest; "
              f"m = read_manifest(sys.argv[1]); print(sorted(m.variants['{NEW_VARIANT}'].interpreters))")
    result = _run(extended, ["-c", script, str(bundle_with_new_variant)])
    assert result.returncode == 0, result.stderr
    assert NEW_BACKEND in result.stdout


def test_export_checks_and_extras_know_the_new_backend(extended, bundle_with_new_variant):
    """compat records the new interpreter for .tflite files by loading the file with it; a missing package
    names the new row's extra."""
    script = f"""
import json, sys
from pathlib import Path
from edgernn.cli.exit_codes import classify
from edgernn.exporting import compat
from edgernn.runtime.manifest_reader import read_manifest
from edgernn.runtime.variants import variant
entry = read_manifest(sys.argv[1]).variants["{NEW_VARIANT}"]
content = (Path(sys.argv[1]) / entry.file).read_bytes()
found = compat.interpreters(variant("{NEW_VARIANT}"), content, entry)
missing = ImportError("no", name="ai_edge_litert")
print(json.dumps({{"tflite": compat.format_interpreters("tflite"), "onnx": compat.format_interpreters("onnx"),
                  "found": found, "missing": classify(missing)[1]}}))
"""
    result = _run(extended, ["-c", script, str(bundle_with_new_variant)])
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert NEW_BACKEND in report["tflite"] and NEW_BACKEND not in report["onnx"]
    assert report["found"][NEW_BACKEND] == {"runs": True, "reason": "loaded at export"}
    assert "pip install 'edgernn[litert-copy]'" in report["missing"]


def test_stream_runs_the_new_variant_on_the_new_backend(extended, bundle_with_new_variant):
    values = "".join(f"{v}\n" for v in (0.1, 0.5, -0.3, 0.9, 0.0, 0.4))
    outputs = []
    for variant, backend in (("tflite-int8", "litert"), (NEW_VARIANT, NEW_BACKEND)):
        result = _run(extended, ["-m", "edgernn", "stream", str(bundle_with_new_variant), "--variant", variant,
                                 "--backend", backend], input=values)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout.split())
    assert len(outputs[0]) == 6 and outputs[0] == outputs[1]
