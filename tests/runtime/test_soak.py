"""The soak benchmark as a slow test (``pytest -m slow``): 1,000,000 steps, int8 beside float32."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))


@pytest.mark.slow
def test_one_million_steps(bundles):
    from soak import soak

    result = soak(bundles["sine"], 1_000_000)
    assert result["finite"]
    assert result["rss_growth_mb"] <= 2.0
    assert result["last_over_first"] <= 1.05  # the state does not drift off (5 % allows sampling noise)
