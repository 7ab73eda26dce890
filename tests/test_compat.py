"""What runs where, known at export: the manifest's interpreter records, INCOMPATIBLE in verify and stream, and
TensorFlow Lite Micro in verify with its arena."""

from __future__ import annotations

import json
import shutil

import pytest

from edgernn.cli.commands import cli
from edgernn.exporting.compat import TFLITE_RUNTIME_2_14, operators
from edgernn.runtime.backends import installed
from edgernn.runtime.manifest_reader import read_manifest
from built_once import exported_once, trained_once

needs_tflm = pytest.mark.skipif("tflm" not in installed(), reason="tflite-micro is not installed here")


def test_manifest_records_what_runs_where(sine_bundle):
    variants = read_manifest(sine_bundle).variants
    for name, entry in variants.items():
        assert set(entry.interpreters) == ({"onnxruntime"} if name.startswith("onnx") else
                                           {"litert", "tflite-runtime", "tflm"}), name
        if name.startswith("tflite"):
            assert entry.interpreters["litert"]["runs"] is True
            assert entry.interpreters["tflite-runtime"]["runs"] is True  # every variant, 16 units
    # 16 units: no weight tensor reaches 1,024 values, so the converter kept the weights float: it says so
    assert "weights stayed float32" in variants["tflite-dynamic"].notes


@needs_tflm
def test_manifest_records_what_runs_on_tflm(sine_bundle):
    variants = read_manifest(sine_bundle).variants
    assert variants["tflite-int8"].interpreters["tflm"]["arena_bytes"] > 0
    assert variants["tflite-float16"].interpreters["tflm"]["runs"] is False
    assert "TFLM has no float16" in variants["tflite-float16"].interpreters["tflm"]["reason"]
    assert variants["tflite-dynamic"].interpreters["tflm"]["runs"] is True  # it is the float32 model here


@pytest.fixture(scope="module")
def dynamic_50_units(built):
    """A 50-unit model's tflite-dynamic variant: its weight tensors are big enough to be stored as int8."""
    model = trained_once(built, data="sine", units=50, epochs=1)
    bundle = exported_once(built, model.model_path, variants="tflite-dynamic", verify=False)
    return bundle, read_manifest(bundle).variants["tflite-dynamic"]


def test_default_size_dynamic_variant_loads_on_tflite_runtime(dynamic_50_units):
    """50 units: the dynamic-range weights are int8, written per tensor (FULLY_CONNECTED version 9), which
    tflite-runtime 2.14 loads; per channel they were version 12, which it does not."""
    bundle, entry = dynamic_50_units
    versions = operators((bundle / entry.file).read_bytes())
    assert versions["FULLY_CONNECTED"] <= TFLITE_RUNTIME_2_14["FULLY_CONNECTED"]
    assert entry.interpreters["tflite-runtime"]["runs"] is True and "stayed float32" not in entry.notes


@needs_tflm
def test_default_size_dynamic_variant_is_refused_by_tflm(dynamic_50_units):
    _, entry = dynamic_50_units  # int8 weights with float activations: no such kernels in TFLM
    assert entry.interpreters["tflm"]["runs"] is False and "hybrid" in entry.interpreters["tflm"]["reason"]


def test_a_recorded_incompatibility_is_tried_not_trusted(runner, sine_bundle, tmp_path):
    """A manifest cannot hide a variant from the gate: verify tries the interpreter anyway and measures what loads
    (a device's stream does trust the record, and refuses with its reason)."""
    bundle = tmp_path / "bundle"
    shutil.copytree(sine_bundle, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["variants"]["tflite-int16x8"]["interpreters"]["litert"] = {"runs": False, "reason": "needs kernels X"}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    result = runner.invoke(cli, ["verify", str(bundle), "--steps", "300", "--backend", "litert", "--json",
                                 "--variants", "tflite-float32,tflite-int16x8"])
    assert result.exit_code == 0, result.output
    rows = {row["variant"]: row for row in json.loads(result.stdout)["variants"]}
    assert rows["tflite-int16x8"]["result"] == "pass" and "yet it loads here" in rows["tflite-int16x8"]["note"]
    stream = runner.invoke(cli, ["stream", str(bundle), "--variant", "tflite-int16x8", "--backend", "litert"],
                           input="0.1\n")
    assert stream.exit_code == 2 and "incompatible with litert: needs kernels X" in stream.stderr


@needs_tflm
def test_a_real_incompatibility_is_shown_and_fails_when_named(runner, sine_bundle):
    """float16 weights: TFLM has no kernels for them. Named on the command line, INCOMPATIBLE fails (exit 1)."""
    result = runner.invoke(cli, ["verify", str(sine_bundle), "--steps", "300", "--backend", "tflm", "--json",
                                 "--variants", "tflite-int8,tflite-float16"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    rows = {row["variant"]: row for row in data["variants"]}
    assert rows["tflite-float16"]["result"] == "incompatible" and rows["tflite-float16"]["passed"] is None
    recorded = json.loads((sine_bundle / "manifest.json").read_text())["variants"]["tflite-float16"]
    assert rows["tflite-float16"]["reasons"] == [recorded["interpreters"]["tflm"]["reason"]]
    assert rows["tflite-int8"]["result"] == "pass" and data["passed"] is False


@needs_tflm
def test_verify_runs_integer_variants_on_tflm_with_their_arena(runner, sine_bundle):
    result = runner.invoke(cli, ["verify", str(sine_bundle), "--steps", "3000", "--json",
                                 "--variants", "tflite-int8,tflite-int16x8"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["variants"]
    on = {(row["variant"], row["backend"]): row for row in rows}
    tflm, litert = on[("tflite-int8", "tflm")], on[("tflite-int8", "litert")]
    assert tflm["result"] == "pass" and tflm["arena_bytes"] > 0
    # the same carried-state run: TFLM's int8 error vs float within 1.5x of LiteRT's
    assert tflm["vs_float"]["nrmse_pct"] <= 1.5 * litert["vs_float"]["nrmse_pct"]
    assert on[("tflite-int16x8", "tflm")]["result"] == "pass"


@needs_tflm
def test_window_models_record_why_tflm_refuses_them(window_bundle):
    """The unrolled window model builds its zero initial state with SHAPE -> FILL; TFLM's FILL needs constant dims.
    The record says so, not just that allocation failed."""
    from edgernn.exporting.compat import fill_with_runtime_dims

    for name, entry in read_manifest(window_bundle).variants.items():
        record = entry.interpreters["tflm"]
        assert record["runs"] is False and "SHAPE -> FILL" in record["reason"], (name, record)
        assert fill_with_runtime_dims((window_bundle / entry.file).read_bytes())


def test_streaming_models_have_no_runtime_fill(sine_bundle):
    from edgernn.exporting.compat import fill_with_runtime_dims

    entry = read_manifest(sine_bundle).variants["tflite-int8"]
    assert not fill_with_runtime_dims((sine_bundle / entry.file).read_bytes())
