"""``edgernn c-step``: the step as plain C for firmware, compiled by the system (or cross) compiler and called
like a microcontroller would call it: a reading in, a prediction out, the state in a struct the caller owns."""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys

import numpy as np
import pytest

from edgernn.firmware.step import state_bytes, write
from edgernn.runtime import StreamingPredictor
from edgernn.runtime.backends import c as c_backend
from edgernn.runtime.cell_table import CELLS
from runtime_env import bundle_of_cell, needs_spawn

pytestmark = pytest.mark.skipif(not c_backend.available(), reason="no C compiler (cc, gcc, clang or $CC) here")


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGERNN_CACHE", str(tmp_path / "cache"))


def _firmware(bundle, variant, tmp_path):
    """NAME.c compiled (GNU C99, where GCC would contract a*b+c into one rounding unless the file says not to;
    -pedantic -Werror, every extern declared) into a library."""
    if variant == "tflite-int8":
        pytest.importorskip("ai_edge_litert", reason="the int8 C step reads the .tflite with ai-edge-litert's schema")
    (header, source), _ = write(bundle, variant, tmp_path / "fw", name="fw")
    library = tmp_path / "fw.so"
    result = subprocess.run([c_backend.compiler(), "-std=gnu99", "-pedantic", "-Wall", "-Wextra", "-Werror",
                             "-Wmissing-prototypes", "-O2",
                             "-fPIC", "-shared", "-o", str(library), str(source), "-lm"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lib = ctypes.CDLL(str(library))
    lib.fw_predict.restype, lib.fw_predict.argtypes = ctypes.c_double, [ctypes.c_void_p, ctypes.c_double]
    lib.fw_reset.restype, lib.fw_reset.argtypes = None, [ctypes.c_void_p]
    return lib, header


@pytest.mark.parametrize("variant", ["tflite-int8", "tflite-float32"])
@pytest.mark.parametrize("cell", list(CELLS))
def test_firmware_predict_is_the_predictors_step(bundles, sine_values, cell, variant, tmp_path):
    """NAME_predict over a series with a NaN and a reading far outside the calibrated range: int8 bit-equal to
    the predictor on the c backend (itself bit-equal to TFLite's reference kernels), float32 within 1e-5 of the
    range (compiled without -ffast-math here); the out-of-range count as the predictor's; reset starts again."""
    bundle = bundle_of_cell(bundles, cell)
    lib, _ = _firmware(bundle, variant, tmp_path)
    predictor = StreamingPredictor.load(bundle, variant, backend="c")
    total = sum(units for _, units in predictor.manifest.model.state_inputs())
    item = 1 if variant == "tflite-int8" else 4
    state = ctypes.create_string_buffer(state_bytes(item, total))
    lib.fw_reset(state)
    values = np.array(sine_values[:400], dtype=np.float64)
    values[50], values[120] = np.nan, 1e9
    got = np.array([lib.fw_predict(state, float(v)) for v in values])
    want = predictor.run(values)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    if variant == "tflite-int8":
        np.testing.assert_array_equal(got, want)
    else:
        finite = np.isfinite(want)
        assert np.max(np.abs(got[finite] - want[finite])) <= 1e-5 * np.ptp(want[finite])
    counted = int.from_bytes(state.raw[(total * item + 7) // 8 * 8 + 8:][:4], sys.byteorder)
    assert counted == int(np.sum(predictor.stats["out_of_range"])) >= 1
    lib.fw_reset(state)
    again = np.array([lib.fw_predict(state, float(v)) for v in values[:100]])
    np.testing.assert_array_equal(again, got[:100])


@needs_spawn
def test_c_step_prints_flash_and_ram_beside_the_tflm_arena(bundles, tmp_path):
    """The int8 step of the sine bundle: its RAM (state, static data, every stack frame) well under the arena
    TFLM needs for the same file; --json says the same."""
    pytest.importorskip("ai_edge_litert")
    out = tmp_path / "fw"
    result = subprocess.run([sys.executable, "-m", "edgernn", "c-step", str(bundles["sine"]), "--out", str(out),
                             "--json"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert sorted(p.rsplit("/", 1)[-1] for p in found["files"]) == ["rnn.c", "rnn.h"]
    assert 0 < found["ram_bytes"] and 0 < found["flash_bytes"]
    if found["tflm_arena_bytes"]:
        assert found["ram_bytes"] <= 0.5 * found["tflm_arena_bytes"]


@needs_spawn
@pytest.mark.parametrize("name, variant, reason", [
    ("multi", "tflite-int8", "not one value in and one out"),
    ("window", "tflite-int8", "window model"),
    ("sine", "tflite-int16x8", "neither float32 nor int8"),
])
def test_what_c_step_does_not_write_is_refused_in_one_line(bundles, tmp_path, name, variant, reason):
    result = subprocess.run([sys.executable, "-m", "edgernn", "c-step", str(bundles[name]), "--variant", variant,
                             "--out", str(tmp_path / "fw")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and reason in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "fw").exists()
