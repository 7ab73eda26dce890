"""Benchmarks: export time, the cost of a prediction per variant/backend, and the baselines, in one run.

    python benchmarks/run.py [--out benchmarks] [--steps 3000]

Trains the demo model (streaming SimpleRNN, 50 units, built-in sine), exports all seven variants (timed),
runs ``edgernn bench`` on the bundle, and measures the baselines that need TensorFlow: re-running an unrolled
window model over the last N = 10 and 50 samples for every new sample (what users do without state), and
Keras ``model.predict`` / ``model(x)`` on one sample. Writes ``results.md`` (with the machine it ran on),
``results.json`` and ``latency.png``. Every target is a ratio from this one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgernn.bench.measure import bench, time_steps  # noqa: E402


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    from importlib.metadata import version

    versions = ", ".join(f"{p} {version(p)}" for p in ("tensorflow", "ai-edge-litert", "onnxruntime", "numpy"))
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}, Python {platform.python_version()}; {versions}"


def window_rerun_us(model_path: Path, window: int, steps: int) -> float:
    """Median µs to re-run an unrolled float32 window model over the last ``window`` samples, per new sample."""
    from edgernn.exporting import tflite
    from edgernn.exporting.inspect import inspect_model
    from edgernn.exporting.step_model import build_window_model, write_saved_model
    from edgernn.training.modeling import load_model
    from edgernn.runtime.backends import make_interpreter
    from edgernn.runtime.quiet import silenced_stderr
    from edgernn.runtime.variants import variant

    model, _ = load_model(model_path)
    inspected = inspect_model(model)
    with tempfile.TemporaryDirectory() as scratch, silenced_stderr():
        saved = write_saved_model(build_window_model(inspected, window), Path(scratch) / "sm")
        content = tflite.convert(saved, variant("tflite-float32"))
        interpreter = make_interpreter(content, "litert")
        interpreter.allocate_tensors()
    x_index = interpreter.get_input_details()[0]["index"]
    y_index = interpreter.get_output_details()[0]["index"]
    ring = np.zeros((1, window, 1), np.float32)

    def step(value):
        ring[0, :-1, 0] = ring[0, 1:, 0]
        ring[0, -1, 0] = value
        interpreter.set_tensor(x_index, ring)
        interpreter.invoke()
        return interpreter.get_tensor(y_index)[0, 0]

    values = np.sin(np.arange(steps + 200) / 6.0)
    return float(np.median(time_steps(step, values)))


def keras_us(model_path: Path, calls: int = 200) -> tuple[float, float]:
    """Median µs of ``model.predict`` and ``model(x)`` on one sample."""
    from edgernn.training.modeling import load_model

    model, _ = load_model(model_path)
    x = np.zeros((1, 1, 1), np.float32)
    model.predict(x, verbose=0)
    model(x)
    predict = [0.0] * calls
    for i in range(calls):
        start = time.perf_counter()
        model.predict(x, verbose=0)
        predict[i] = time.perf_counter() - start
    direct = [0.0] * calls
    for i in range(calls):
        start = time.perf_counter()
        model(x)
        direct[i] = time.perf_counter() - start
    return float(np.median(predict) * 1e6), float(np.median(direct) * 1e6)


def plot(result, baselines: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r.variant}\n{r.backend}" for r in result.rows]
    values = [r.median_us for r in result.rows]
    labels += [f"window N={n}\nre-run" for n in (10, 50)] + ["Keras\nmodel(x)", "Keras\npredict"]
    values += [baselines["window10_us"], baselines["window50_us"], baselines["keras_call_us"],
               baselines["keras_predict_us"]]
    colors = ["tab:blue"] * len(result.rows) + ["tab:orange"] * 2 + ["tab:red"] * 2
    fig, ax = plt.subplots(figsize=(max(10, len(values) * 0.75), 5))
    ax.bar(range(len(values)), values, color=colors)
    ax.set_yscale("log")
    ax.set_xticks(range(len(values)), labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("median latency per prediction (µs, log)")
    ax.set_title("Cost of one prediction: stateful step (blue) vs re-running a window (orange) vs Keras (red)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # not into benchmarks/ by default: the tracked results there are replaced only when asked (--out benchmarks)
    parser.add_argument("--out", default="benchmark-results")
    parser.add_argument("--steps", type=int, default=3000)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import edgernn
    from edgernn import export

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        model = edgernn.train("sine", work / "model.keras", units=50, seed=0, quiet=True, force=True).model_path
        export(model, work / "warm", variants="tflite-float32", quiet=True, verify=False)  # first conversion pays TF start-up
        started = time.perf_counter()
        export(model, work / "bundle", quiet=True, verify=False)
        export_s = time.perf_counter() - started
        result = bench(work / "bundle", steps=args.steps, streams=256)
        baselines = {
            "export_all_variants_s": export_s,
            "window10_us": window_rerun_us(model, 10, args.steps),
            "window50_us": window_rerun_us(model, 50, args.steps),
        }
        baselines["keras_predict_us"], baselines["keras_call_us"] = keras_us(model)

    step = next(r.median_us for r in result.rows if r.variant == "tflite-float32" and r.backend == "litert")
    ratios = {
        "wrapper_overhead_vs_raw_floor": result.wrapper_overhead,
        "speedup_vs_window10": baselines["window10_us"] / step,
        "speedup_vs_window50": baselines["window50_us"] / step,
        "speedup_vs_keras_predict": baselines["keras_predict_us"] / step,
        "speedup_vs_keras_call": baselines["keras_call_us"] / step,
        "streams256_one_vs_separate": result.streams_speedup,
    }
    targets = {
        "wrapper_overhead_vs_raw_floor": ("<=", 1.3),
        "speedup_vs_window10": (">=", 2.5),
        "speedup_vs_window50": (">=", 10),
        "speedup_vs_keras_predict": (">=", 1000),
        "streams256_one_vs_separate": (">=", 50),
    }
    (out / "results.json").write_text(json.dumps({"machine": machine(), "bench": result.to_dict(),
                                                  "baselines": baselines, "ratios": ratios}, indent=2) + "\n")
    plot(result, baselines, out / "latency.png")
    lines = [
        "# edgernn benchmarks",
        "",
        f"Machine: {machine()}.",
        f"Model: streaming SimpleRNN, 50 units, built-in sine. Steps per row: {args.steps} after warm-up, one thread.",
        "",
        "## Targets (ratios from this one run)",
        "",
        "| measure | value | target | met |",
        "|---|---|---|---|",
    ]
    for key, value in ratios.items():
        op, bound = targets.get(key, ("", None))
        met = "" if bound is None else ("yes" if (value <= bound if op == "<=" else value >= bound) else "no")
        lines.append(f"| {key.replace('_', ' ')} | {value:.2f}x | {op} {bound if bound is not None else ''} | {met} |")
    lines += [
        f"| import edgernn.runtime | {result.import_s:.3f} s | <= 0.5 s | {'yes' if result.import_s <= 0.5 else 'no'} |",
        f"| peak RSS, runtime-only predicting process | {result.peak_rss_mb:.0f} MB | <= 100 MB | "
        f"{'yes' if result.peak_rss_mb <= 100 else 'no'} |",
        f"| export, all seven variants (TensorFlow already imported) | {baselines['export_all_variants_s']:.1f} s | <= 60 s | "
        f"{'yes' if baselines['export_all_variants_s'] <= 60 else 'no'} |",
        "",
        "## Baselines",
        "",
        f"- raw interpreter floor (tflite-float32 on litert, set_tensor/invoke/get_tensor by hand): {result.raw_floor_us:.1f} µs",
        f"- re-running a 10-sample window per new sample: {baselines['window10_us']:.1f} µs; 50-sample: {baselines['window50_us']:.1f} µs",
        f"- Keras `model.predict` on one sample: {baselines['keras_predict_us']:,.0f} µs; `model(x)`: {baselines['keras_call_us']:,.0f} µs",
        f"- {result.streams} streams: one predictor {result.one_predictor_steps_per_s:,.0f} stream-steps/s, "
        f"{result.streams} predictors {result.separate_predictors_steps_per_s:,.0f}",
        "",
        "## Per variant and backend",
        "",
        "| variant | backend | size | median µs | p99 µs | steps/s |",
        "|---|---|---|---|---|---|",
    ]
    for r in result.rows:
        lines.append(f"| {r.variant} | {r.backend} | {r.size_bytes / 1024:.1f} KB | {r.median_us:.1f} | "
                     f"{r.p99_us:.1f} | {r.steps_per_s:,.0f} |")
    lines += ["", "![latency per variant](latency.png)", ""]
    (out / "results.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
