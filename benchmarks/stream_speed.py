"""``edgernn stream`` on 100,000 values from a file against a raw LiteRT loop doing the same I/O (issue 31).

    python benchmarks/stream_speed.py BUNDLE [--values 100000] [--repeats 3] [--json out.json]

Both run as their own process, reading the same file of one number per line and writing one prediction per
line to a file: the raw loop reads each line, parses it, scales it with the bundle's preprocessing, sets the
input and the state, invokes, gets the output and the state, unscales and writes it (what a user would write by
hand on ``ai_edge_litert``); ``edgernn stream BUNDLE --variant tflite-float32 --out FILE`` does that and
checks each value (non-numeric lines, the calibrated range, NaN handling). Both are timed whole (start-up
included), best of ``--repeats``, alternated; the ratio is values/s of edgernn over values/s of the raw loop.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RAW_LOOP = r'''
import json, sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter

bundle, source, target = sys.argv[1:4]
manifest = json.load(open(f"{bundle}/manifest.json"))
entry = manifest["variants"]["tflite-float32"]
pre = manifest["preprocessing"]
offset, divisor = pre["offset"], pre["divisor"]
interpreter = Interpreter(model_path=f"{bundle}/{entry['file']}")
interpreter.allocate_tensors()
runner = interpreter.get_signature_runner("serving_default")
inputs, outputs = runner.get_input_details(), runner.get_output_details()
del runner
x_index, y_index = inputs["x"]["index"], outputs["y"]["index"]
pairs = [(inputs[i]["index"], outputs[o]["index"]) for i, o in entry["state_pairs"]]
states = [np.zeros(inputs[i]["shape"], np.float32) for i, _ in entry["state_pairs"]]
x = np.zeros((1, 1), np.float32)
set_tensor, get_tensor, invoke = interpreter.set_tensor, interpreter.get_tensor, interpreter.invoke
with open(source) as lines, open(target, "w") as out:
    for line in lines:
        x[0, 0] = (float(line) - offset) / divisor
        set_tensor(x_index, x)
        for (index, _), state in zip(pairs, states):
            set_tensor(index, state)
        invoke()
        states = [get_tensor(o) for _, o in pairs]
        out.write(f"{float(get_tensor(y_index)[0, 0]) * divisor + offset:.6g}\n")
'''


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    return time.perf_counter() - started


def measure(bundle: Path, count: int, repeats: int, backend: str) -> dict:
    manifest = json.loads((bundle / "manifest.json").read_text())
    pre = manifest["preprocessing"]
    if manifest.get("columns") or pre.get("difference") or manifest["model"].get("mode") != "streaming":
        raise SystemExit("the raw loop here is for a plain streaming univariate model (no differencing)")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "values.txt"
        t = np.arange(count)
        np.savetxt(source, pre["offset"] + pre["divisor"] * np.sin(2 * np.pi * t / 40.0), fmt="%.6f")
        raw = [sys.executable, "-c", RAW_LOOP, str(bundle), str(source), str(Path(tmp) / "raw.txt")]
        edgernn = [sys.executable, "-m", "edgernn", "stream", str(bundle), "--variant", "tflite-float32",
                   "--backend", backend, str(source), "--out", str(Path(tmp) / "edgernn.txt")]
        times = {"raw": [], "edgernn": []}
        for _ in range(repeats):
            times["raw"].append(timed(raw))
            (Path(tmp) / "edgernn.txt").unlink(missing_ok=True)
            times["edgernn"].append(timed(edgernn))
        raw_out = np.loadtxt(Path(tmp) / "raw.txt")
        ours = np.loadtxt(Path(tmp) / "edgernn.txt", delimiter=",", usecols=0)
    best = {k: min(v) for k, v in times.items()}
    return {"values": count, "backend": backend, "raw_s": best["raw"], "edgernn_s": best["edgernn"],
            "raw_values_per_s": count / best["raw"], "edgernn_values_per_s": count / best["edgernn"],
            "ratio": best["raw"] / best["edgernn"],
            "max_abs_difference": float(np.max(np.abs(raw_out[: ours.size] - ours)))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--values", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = [measure(args.bundle, args.values, args.repeats, backend) for backend in ("litert", "c")]
    for row in rows:
        print(f"edgernn stream --backend {row['backend']}: {row['edgernn_values_per_s']:,.0f} values/s; raw LiteRT "
              f"loop {row['raw_values_per_s']:,.0f} values/s; ratio {row['ratio']:.2f}x "
              f"(max |difference| {row['max_abs_difference']:.1e})")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
