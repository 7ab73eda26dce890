"""``edgernn c-array``: the model bytes as C, compiled by the system compiler and written back out."""

from __future__ import annotations

import json

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bundle_edit import copy_bundle, manifest_of, run_cli, write_manifest

from edgernn.firmware.c_array import _c_float
from edgernn.runtime.backends import installed
from edgernn.runtime.manifest_reader import read_manifest
from edgernn.runtime.variants import VARIANTS

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("g++") is None,
                               reason="no C and C++ compiler here")

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
                            "-x", "c", str(out / "edgernn_model.cc")], capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    if shutil.which("g++"):  # the array is valid C++ too (firmware builds TFLM as C++)
        cxx = subprocess.run(["g++", "-std=c++17", "-Wall", "-Werror", "-c", "-o", str(out / "model.o"),
                              str(out / "edgernn_model.cc")], capture_output=True, text=True, timeout=120)
        assert cxx.returncode == 0, cxx.stderr
    dumped = tmp_path / "dumped.tflite"
    assert subprocess.run([str(out / "dump"), str(dumped)], timeout=60).returncode == 0
    entry = read_manifest(sine_bundle).variants["tflite-int8"]
    assert dumped.read_bytes() == (sine_bundle / entry.file).read_bytes()
    header = (out / "edgernn_model.h").read_text()
    assert "EDGERNN_MODEL_INPUT_X " in header and "EDGERNN_MODEL_OUTPUT_Y_SCALE" in header
    assert "#define EDGERNN_MODEL_ARENA_BYTES" in header


def test_c_array_refuses_an_onnx_variant(runner, sine_bundle, tmp_path):
    from edgernn.cli.commands import cli

    result = runner.invoke(cli, ["c-array", str(sine_bundle), "--variant", "onnx-int8", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "is not a TFLite variant" in result.stderr


def test_c_array_json_lists_the_files_it_wrote(runner, sine_bundle, tmp_path):
    from edgernn.cli.commands import cli

    result = runner.invoke(cli, ["c-array", str(sine_bundle), "--out", str(tmp_path / "c"), "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["variant"] == "tflite-int8" and sorted(Path(f).name for f in data["files"]) == [
        "edgernn_model.cc", "edgernn_model.h", "edgernn_model_example.cc"]
    assert all(Path(f).is_file() for f in data["files"])


def c_array(bundle, out, *args):
    return run_cli(["c-array", str(bundle), "--out", str(out), *args])


def compile_both(out: Path, name: str) -> None:
    """The header and the array compile as C (C99 and C11, pedantic) and as C++17 (pedantic errors)."""
    main = out / f"use_{name}.c"
    main.write_text(f'#include "{name}.h"\nint main(void) {{ return {name}[0] == 0 && {name}_len > 0 '
                    f'&& {name.upper()}_ARENA_BYTES > 0; }}\n')
    for std in ("c99", "c11"):
        build = subprocess.run(["gcc", f"-std={std}", "-Wall", "-Wextra", "-Werror", "-pedantic", "-o",
                                str(out / "a.out"), str(main), "-x", "c", str(out / f"{name}.cc")],
                               capture_output=True, text=True, timeout=120)
        assert build.returncode == 0, (std, build.stderr)
    cxx = subprocess.run(["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic-errors", "-o",
                          str(out / "b.out"), "-x", "c++", str(main), str(out / f"{name}.cc")],
                         capture_output=True, text=True, timeout=120)
    assert cxx.returncode == 0, cxx.stderr


def test_c_float_literals_always_have_a_point_or_an_exponent():
    assert _c_float(1) == "1.0f" and _c_float(0.5) == "0.5f" and _c_float(1e-5) == "1e-05f"
    assert _c_float(3e38) == "3e+38f" and _c_float(2, "") == "2.0"
    with pytest.raises(ValueError):
        _c_float(float("nan"))


@needs_gcc
def test_manifest_strings_never_reach_the_c_text(sine_bundle, tmp_path):
    """A reason closing a C comment and a variant file name with ``*/`` in it: neither appears in the C files,
    which compile (the injected declaration would be an unused, duplicate or conflicting global)."""
    bundle = copy_bundle(sine_bundle, tmp_path / "evil")
    manifest = manifest_of(bundle)
    entry = manifest["variants"]["tflite-int8"]
    entry["interpreters"]["tflm"]["reason"] = "x */ int injected = 1; /*"
    (bundle / "a*").mkdir()
    (bundle / entry["file"]).rename(bundle / "a*" / "tflite-int8.tflite")
    entry["file"] = "a*/tflite-int8.tflite"
    write_manifest(bundle, manifest)
    out = tmp_path / "c"
    assert c_array(bundle, out).exit_code == 0
    text = "".join(path.read_text() for path in out.iterdir())
    assert "injected" not in text and "a*" not in text
    compile_both(out, "edgernn_model")


@pytest.mark.parametrize("record, said", [
    ({"interpreters": {"tflm": {"runs": True, "reason": "a\nb"}}}, "printable"),
    ({"interpreters": {"tflm": {"runs": True, "reason": "x" * 1001}}}, "at most 1000"),
    ({"interpreters": {"mcu-magic": {"runs": True, "reason": ""}}}, "is not one of"),
    ({"interpreters": {"tflm": {"runs": True, "reason": "", "arena_bytes": (1 << 30) + 1}}}, "arena_bytes"),
    ({"interpreters": {"tflm": {"runs": True, "reason": "", "arena_bytes": 0}}}, "arena_bytes"),
], ids=["newline", "long", "unknown-interpreter", "huge-arena", "zero-arena"])
def test_manifest_interpreter_records_are_bounded(sine_bundle, tmp_path, record, said):
    bundle = copy_bundle(sine_bundle, tmp_path / "b")
    manifest = manifest_of(bundle)
    manifest["variants"]["tflite-int8"].update(record)
    write_manifest(bundle, manifest)
    result = c_array(bundle, tmp_path / "c")
    assert result.exit_code == 2 and said in result.stderr and not (tmp_path / "c").exists()


def litert_details(content: bytes):
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=content).get_signature_runner("serving_default")
    return runner.get_input_details(), runner.get_output_details()


def assert_file_quantization(bundle: Path, out: Path) -> None:
    header = (out / "edgernn_model.h").read_text()
    inputs, outputs = litert_details((bundle / "tflite-int8.tflite").read_bytes())
    for kind, details in (("INPUT", inputs), ("OUTPUT", outputs)):
        for name, detail in details.items():
            scale, zero_point = detail["quantization"]
            macro = f"EDGERNN_MODEL_{kind}_{name.upper()}"
            assert f"#define {macro}_SCALE {float(scale)!r}f\n" in header
            assert f"#define {macro}_ZERO_POINT {zero_point}\n" in header


def test_scales_and_zero_points_come_from_the_model_file(sine_bundle, tmp_path):
    out = tmp_path / "c"
    assert c_array(sine_bundle, out).exit_code == 0
    assert_file_quantization(sine_bundle, out)
    bundle = copy_bundle(sine_bundle, tmp_path / "b")
    manifest = manifest_of(bundle)
    for tensor in manifest["variants"]["tflite-int8"]["inputs"] + manifest["variants"]["tflite-int8"]["outputs"]:
        tensor["scale"], tensor["zero_point"] = 1, 7  # lies: the file says otherwise
    write_manifest(bundle, manifest)
    result = c_array(bundle, tmp_path / "lied")
    if result.exit_code == 2:  # TFLM, installed here, compares the file with the manifest while measuring the arena
        assert "differs from the manifest" in result.stderr and "tflm" in installed()
    else:
        assert_file_quantization(bundle, tmp_path / "lied")
        assert "_SCALE 1.0f" not in (tmp_path / "lied" / "edgernn_model.h").read_text()


@pytest.mark.skipif("tflm" not in installed(), reason="tflite-micro is not installed here")
def test_the_arena_is_measured_not_taken_from_the_manifest(sine_bundle, tmp_path):
    from edgernn.runtime.backends.tflm import arena_bytes

    bundle = copy_bundle(sine_bundle, tmp_path / "b")
    manifest = manifest_of(bundle)
    manifest["variants"]["tflite-int8"]["interpreters"]["tflm"]["arena_bytes"] = 16  # too small to allocate in
    write_manifest(bundle, manifest)
    out = tmp_path / "c"
    assert c_array(bundle, out).exit_code == 0
    measured = arena_bytes((bundle / "tflite-int8.tflite").read_bytes())
    assert f"#define EDGERNN_MODEL_ARENA_BYTES {measured}\n" in (out / "edgernn_model.h").read_text()
    assert measured > 16


def test_the_example_lists_tensors_in_their_real_positions(sine_bundle, tmp_path):
    out = tmp_path / "c"
    assert c_array(sine_bundle, out).exit_code == 0
    header = (out / "edgernn_model.h").read_text()
    position = {name: int(header.split(f"#define EDGERNN_MODEL_INPUT_{name.upper()} ")[1].split()[0])
                for name in ("x", "h0")}
    order = sorted(position, key=position.get)
    example = (out / "edgernn_model_example.cc").read_text()
    assert f"inputs {order[0]} ({position[order[0]]}), {order[1]} ({position[order[1]]});" in example


# variants TFLM lacks the kernels for whatever the model (a hybrid one runs when its weights stayed float, as the
# 16-unit sine's do), and one of another format, from the variant table
TFLM_REFUSED = [(name, spec.tflm_lacks) for name, spec in VARIANTS.items() if spec.tflm_lacks and not spec.hybrid]
TFLM_REFUSED.append((next(name for name, spec in VARIANTS.items() if spec.format != "tflite"), "not a TFLite variant"))


@pytest.mark.parametrize("variant, said", TFLM_REFUSED)
def test_variants_tflm_cannot_run_are_refused(sine_bundle, tmp_path, variant, said):
    out = tmp_path / "new" / "c"
    result = c_array(sine_bundle, out, "--variant", variant)
    assert result.exit_code == 2 and said in result.stderr and not (tmp_path / "new").exists()


def test_a_variant_recorded_as_not_running_on_tflm_is_refused(sine_bundle, tmp_path):
    bundle = copy_bundle(sine_bundle, tmp_path / "b")
    manifest = manifest_of(bundle)
    manifest["variants"]["tflite-int8"]["interpreters"]["tflm"] = {"runs": False, "reason": "no room on the chip"}
    write_manifest(bundle, manifest)
    result = c_array(bundle, tmp_path / "c")
    assert result.exit_code == 2 and "no room on the chip" in result.stderr and not (tmp_path / "c").exists()


def test_window_models_are_refused_with_the_reason(window_bundle, tmp_path):
    result = c_array(window_bundle, tmp_path / "c", "--variant", "tflite-int8")
    assert result.exit_code == 2 and "SHAPE -> FILL" in result.stderr and not (tmp_path / "c").exists()


GOOD_NAMES = ["edgernn_model", "m", "Model2", "g_model_data", "x" * 64, "EDGERNN_MODEL", "Int", "class_"]
BAD_NAMES = {"int": "keyword", "_Bool": "keyword", "class": "keyword", "new": "keyword", "alignas": "keyword",
             "_Foo": "reserved", "_lower": "reserved", "a__b": "reserved", "NULL": "standard", "size_t": "standard", "main": "standard",
             "tensor_arena": "clashes", "model": "clashes", "x" * 65: "at most 64", "x" * 226: "at most 64",
             "1abc": "C identifier", "a-b": "C identifier", "caf\u00e9": "C identifier"}


@needs_gcc
@pytest.mark.parametrize("name", GOOD_NAMES)
def test_good_names_compile_as_c_and_cxx(sine_bundle, tmp_path, name):
    out = tmp_path / "c"
    assert c_array(sine_bundle, out, "--name", name).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{name}.h", f"{name}.cc", f"{name}_example.cc"])
    compile_both(out, name)


@pytest.mark.parametrize("name", list(BAD_NAMES), ids=lambda n: n[:20])
def test_bad_names_exit_2_saying_why(sine_bundle, tmp_path, name):
    result = c_array(sine_bundle, tmp_path / "c", "--name", name)
    assert result.exit_code == 2 and BAD_NAMES[name] in result.stderr and not (tmp_path / "c").exists()


def test_the_files_are_written_as_a_set_and_never_over_existing_ones(sine_bundle, tmp_path):
    out = tmp_path / "c"
    out.mkdir()
    (out / "edgernn_model.cc").mkdir()  # a directory where a file goes: nothing may be written
    result = c_array(sine_bundle, out)
    assert result.exit_code == 2 and f"{out / 'edgernn_model.cc'} is a directory" in result.stderr
    assert ".tmp-" not in result.stderr and sorted(p.name for p in out.iterdir()) == ["edgernn_model.cc"]
    assert [p.name for p in tmp_path.iterdir()] == ["c"]  # no staging directory left beside --out
    (out / "edgernn_model.cc").rmdir()
    (out / "edgernn_model.h").write_text("mine")
    (out / "keep.txt").write_text("other work")
    result = c_array(sine_bundle, out)
    assert result.exit_code == 2 and "--force" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["edgernn_model.h", "keep.txt"]
    assert c_array(sine_bundle, out, "--force").exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["edgernn_model.cc", "edgernn_model.h", "edgernn_model_example.cc",
                                                     "keep.txt"]
    assert (out / "edgernn_model.h").read_text() != "mine" and (out / "keep.txt").read_text() == "other work"


def test_out_inside_a_bundle_is_refused(sine_bundle, tmp_path):
    bundle = copy_bundle(sine_bundle, tmp_path / "b")
    before = sorted(p.name for p in bundle.iterdir())
    for out in (bundle, bundle / "c"):
        result = c_array(bundle, out)
        assert result.exit_code == 2 and "inside a bundle" in result.stderr
    assert sorted(p.name for p in bundle.iterdir()) == before
