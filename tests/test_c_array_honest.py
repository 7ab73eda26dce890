"""c-array tells the whole truth or refuses: standard C/C++ names refused as --name, a damaged model file whose
hash was updated refused in one line (exit 2), a multivariate model refused with the reason (its per-column
scaling and decoding are not generated yet), each before anything is written."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
from click.testing import CliRunner

from edgernn.firmware.c_names import STANDARD_NAMES
from edgernn.cli.commands import cli
from make_bundles import COMMITTED


def _refused(args, text: str, out) -> None:
    result = CliRunner().invoke(cli, ["c-array", *args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], result.output
    assert not out.exists()  # nothing half-written


@pytest.mark.parametrize("name", ["log", "sqrt", "tanh", "memcmp", "INT8_MAX", "SIZE_MAX", "va_list", "errno",
                                  "printf", "uint8_t", "NAN", "isnan"])
def test_standard_names_are_refused(name, tmp_path):
    assert name in STANDARD_NAMES
    _refused([str(COMMITTED / "sine"), "--name", name], "standard library", tmp_path / "c")


def test_a_damaged_model_with_an_updated_hash_is_one_line_exit_2(tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(COMMITTED / "sine", bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    entry = manifest["variants"]["tflite-int8"]
    damaged = (bundle / entry["file"]).read_bytes()[:2000]
    (bundle / entry["file"]).write_bytes(damaged)
    entry["sha256"] = hashlib.sha256(damaged).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    _refused([str(bundle)], "is not a readable .tflite step model", tmp_path / "c")


def test_a_multivariate_model_is_refused_with_the_reason(tmp_path):
    _refused([str(COMMITTED / "multi")], "per-column C is not generated yet", tmp_path / "c")
