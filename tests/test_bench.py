"""``edgernn bench`` on backends that run one stream, variants it cannot load, ratios below 1."""

from __future__ import annotations

import pytest
from bundle_edit import run_cli

from edgernn.bench.measure import _ratio
from edgernn.runtime.backends import installed

needs_tflm = pytest.mark.skipif("tflm" not in installed(), reason="tflite-micro is not installed here")


def test_ratios_keep_two_significant_digits():
    assert [_ratio(v) for v in (0.004, 0.4, 0.534, 1.0, 4.25, 37.4, 120.0)] == [
        "0.004x", "0.4x", "0.53x", "1x", "4.2x", "37x", "120x"]


@needs_tflm
def test_bench_on_tflm_prints_its_table_and_what_it_could_not_measure(sine_bundle):
    """TFLM runs one stream: the N-streams comparison is skipped with the reason, not the whole bench; float16
    (no TFLM kernels) is listed under the table with its recorded reason."""
    result = run_cli(["bench", str(sine_bundle), "--backend", "tflm", "--variants", "tflite-int8,tflite-float16",
                      "--steps", "20", "--streams", "4"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(line.startswith("tflite-int8") and "tflm" in line for line in lines), result.stdout
    assert any("not measured: tflite-float16 on tflm" in line and "float16" in line for line in lines)
    assert any(line.startswith("N-streams comparison skipped") and "one stream" in line for line in lines)


@needs_tflm
def test_bench_of_only_an_incompatible_pairing_gives_the_recorded_reason(sine_bundle):
    result = run_cli(["bench", str(sine_bundle), "--backend", "tflm", "--variants", "tflite-float16",
                      "--steps", "20"])
    assert result.exit_code == 2 and "TFLM has no float16" in result.stderr


@pytest.mark.skipif(not {"tflm", "litert"} <= set(installed()), reason="needs tflite-micro and ai-edge-litert")
def test_the_streams_comparison_runs_on_a_backend_that_runs_many(sine_bundle):
    result = run_cli(["bench", str(sine_bundle), "--backend", "tflm,litert", "--variants", "tflite-int8",
                      "--steps", "20", "--streams", "4", "--json"])
    assert result.exit_code == 0, result.output
    import json

    data = json.loads(result.stdout)
    assert data["streams"] == 4 and data["streams_backend"] == "litert" and data["streams_speedup"] > 0
