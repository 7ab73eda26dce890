"""Benchmarks are not tests; this only checks that ``edgernn bench`` runs and its JSON has the fields."""

import json
import subprocess
import sys

from runtime_env import needs_spawn, needs_tflite


@needs_spawn
@needs_tflite
def test_bench_json_has_the_fields(bundles):
    result = subprocess.run([sys.executable, "-m", "edgernn", "bench", str(bundles["sine"]), "--steps", "100",
                             "--variants", "tflite-float32,tflite-int8", "--streams", "8", "--json"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["rows"] and {"variant", "backend", "median_us", "p99_us", "steps_per_s", "size_bytes"} <= set(data["rows"][0])
    assert data["import_s"] > 0 and data["peak_rss_mb"] > 0
    assert data["streams"] == 8 and data["streams_speedup"] > 0
