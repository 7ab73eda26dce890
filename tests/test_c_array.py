"""``edgernn c-array``: the model bytes as C, compiled by the system compiler and written back out."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from edgernn.runtime.manifest import read_manifest

MAIN = r"""
#include <stdint.h>
#include <stdio.h>
#include "edgernn_model.h"
int main(int argc, char **argv) {
  FILE *out = fopen(argv[1], "wb");
  if (!out || fwrite(edgernn_model, 1, edgernn_model_len, out) != edgernn_model_len) return 2;
  fclose(out);
  return ((uintptr_t)edgernn_model % 16) ? 3 : 0;  /* TFLM wants its model 16-byte aligned */
}
"""


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no C compiler here")
def test_c_array_compiles_and_holds_the_model_bytes(sine_bundle, tmp_path):
    out = tmp_path / "c"
    result = subprocess.run([sys.executable, "-m", "edgernn", "c-array", str(sine_bundle), "--variant", "tflite-int8",
                             "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    (out / "main.c").write_text(MAIN)
    build = subprocess.run(["gcc", "-std=c11", "-Wall", "-Werror", "-o", str(out / "dump"), str(out / "main.c"),
                            "-x", "c", str(out / "edgernn_model.cc")], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    if shutil.which("g++"):  # the array is valid C++ too (firmware builds TFLM as C++)
        cxx = subprocess.run(["g++", "-std=c++17", "-Wall", "-Werror", "-c", "-o", str(out / "model.o"),
                              str(out / "edgernn_model.cc")], capture_output=True, text=True)
        assert cxx.returncode == 0, cxx.stderr
    dumped = tmp_path / "dumped.tflite"
    assert subprocess.run([str(out / "dump"), str(dumped)]).returncode == 0
    entry = read_manifest(sine_bundle).variants["tflite-int8"]
    assert dumped.read_bytes() == (sine_bundle / entry.file).read_bytes()
    header = (out / "edgernn_model.h").read_text()
    assert "EDGERNN_MODEL_INPUT_X " in header and "EDGERNN_MODEL_OUTPUT_Y_SCALE" in header
    assert "#define EDGERNN_MODEL_ARENA_BYTES" in header


def test_c_array_refuses_an_onnx_variant(runner, sine_bundle, tmp_path):
    from edgernn.cli import cli

    result = runner.invoke(cli, ["c-array", str(sine_bundle), "--variant", "onnx-int8", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "is not a TFLite variant" in result.stderr
