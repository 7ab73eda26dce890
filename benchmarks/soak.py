"""Soak: a long stream through StreamingPredictor on tflite-int8 and tflite-float32, side by side.

    python benchmarks/soak.py BUNDLE [--steps 1000000]

Checks what months on a device would show first: memory growth (RSS at step 10,000 vs the end, target
<= 2 MB), outputs staying finite, and the int8 error vs float32 over the last 100,000 steps being no worse
than over the first 100,000 (the carried state does not drift off). Input: an endless seeded noisy sine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgernn.runtime import StreamingPredictor  # noqa: E402

WINDOW = 100_000


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024.0


def soak(bundle, steps: int) -> dict:
    int8 = StreamingPredictor.load(bundle, "tflite-int8")
    float32 = StreamingPredictor.load(bundle, "tflite-float32")
    rng = np.random.default_rng(0)
    first = last = 0.0
    window = min(WINDOW, steps // 4)
    rss_start = None
    finite = True
    started = time.perf_counter()
    chunk = 10_000
    for offset in range(0, steps, chunk):
        t = np.arange(offset, offset + chunk)
        values = np.sin(2 * np.pi * t / 40.0) + 0.4 * np.sin(2 * np.pi * t / 170.0) + rng.normal(0, 0.05, chunk)
        a = np.fromiter((int8.step(v) for v in values), float, chunk)
        b = np.fromiter((float32.step(v) for v in values), float, chunk)
        finite &= bool(np.isfinite(a).all() and np.isfinite(b).all())
        error = np.sum((a - b) ** 2)
        if offset < window:
            first += error
        if offset >= steps - window:
            last += error
        if offset + chunk == 10_000:
            rss_start = rss_mb()
    rss_end = rss_mb()
    result = {
        "steps": steps,
        "seconds": time.perf_counter() - started,
        "rss_at_10k_mb": rss_start,
        "rss_at_end_mb": rss_end,
        "rss_growth_mb": rss_end - rss_start,
        "finite": finite,
        "int8_rmse_first": float(np.sqrt(first / window)),
        "int8_rmse_last": float(np.sqrt(last / window)),
    }
    result["last_over_first"] = result["int8_rmse_last"] / result["int8_rmse_first"]
    result["passed"] = bool(finite and result["rss_growth_mb"] <= 2.0 and result["last_over_first"] <= 1.05)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--steps", type=int, default=1_000_000)
    args = parser.parse_args()
    result = soak(args.bundle, args.steps)
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
