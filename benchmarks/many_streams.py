"""Many streams through one predictor against a hand-written batched LiteRT loop doing the same work (issue 31).

    python benchmarks/many_streams.py BUNDLE [--streams 16 256 4096] [--json benchmarks/many_streams_results.json]

The raw loop is what a user would write without edgernn, with the bundle's own numbers: scale each stream's
value (the manifest's preprocessing), quantize it for an integer input, ``set_tensor`` the input and the states,
``invoke``, ``get_tensor`` the prediction and the states (an integer state output requantized to the state
input's scale through float, as ``requantize`` does), and scale the predictions back. edgernn is
``StreamingPredictor.load(bundle, variant, backend="litert", streams=N).step(values)``, which also checks each
input (finite, inside the calibrated range) and counts those that are not. Both alternate, 7 rounds of 300 steps
each; medians. The inputs are sines of random phase, inside the calibrated range (the common case).
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
from edgernn.runtime.quantization import dequantize, quantize, requantize, same_quantization  # noqa: E402

VARIANTS = ("tflite-float32", "tflite-int8")
ROUNDS, STEPS = 7, 300


def raw_loop(bundle: Path, variant: str, streams: int):
    """A hand-written batched loop over the LiteRT interpreter edgernn loaded (its set/invoke/get runner)."""
    loaded = StreamingPredictor.load(bundle, variant, backend="litert", streams=streams)
    run, pre, x_spec, y_spec = loaded._run, loaded._pre, loaded._x_spec, loaded._y_spec
    pairs = loaded._pairs
    x = np.zeros_like(loaded._x)
    states = [s.copy() for s in loaded._states]

    def loop(rows: np.ndarray) -> None:
        nonlocal states
        for row in rows:
            x[:, 0] = quantize(pre.encode(row, None), x_spec)
            out = run([x, *states])
            states = [o if same_quantization(o_spec, i_spec) else requantize(o, o_spec, i_spec)
                      for o, (i_spec, o_spec) in zip(out[1:], pairs)]
            pre.decode(dequantize(out[0][:, 0], y_spec), None)
    return loop


def edgernn_loop(bundle: Path, variant: str, streams: int):
    step = StreamingPredictor.load(bundle, variant, backend="litert", streams=streams).step

    def loop(rows: np.ndarray) -> None:
        for row in rows:
            step(row)
    return loop


def measure(bundle: Path, variant: str, streams: int) -> dict:
    rows = np.sin(np.arange(STEPS)[:, None] / 9.0 + np.random.default_rng(0).uniform(0, 6, streams)[None, :])
    loops = {"edgernn": edgernn_loop(bundle, variant, streams), "raw": raw_loop(bundle, variant, streams)}
    times = {name: [] for name in loops}
    for _ in range(ROUNDS):
        for name, loop in loops.items():
            started = time.perf_counter()
            loop(rows)
            times[name].append((time.perf_counter() - started) / STEPS)
    step = {name: float(np.median(t)) for name, t in times.items()}
    return {"variant": variant, "streams": streams, "edgernn_us": step["edgernn"] * 1e6, "raw_us": step["raw"] * 1e6,
            "edgernn_stream_steps_per_s": streams / step["edgernn"], "raw_stream_steps_per_s": streams / step["raw"],
            "speed_vs_raw": step["raw"] / step["edgernn"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--streams", type=int, nargs="+", default=[16, 256, 4096])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = [measure(args.bundle, variant, n) for variant in VARIANTS for n in args.streams]
    print("| variant | streams | edgernn us/step | raw loop us/step | edgernn stream-steps/s | edgernn / raw speed |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['variant']} | {r['streams']} | {r['edgernn_us']:.1f} | {r['raw_us']:.1f} | "
              f"{r['edgernn_stream_steps_per_s']:,.0f} | {r['speed_vs_raw']:.2f}x |")
    if args.json:
        args.json.write_text(json.dumps({"bundle": str(args.bundle), "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
