"""``edgernn bench``: the cost of a prediction, per variant and backend, against baselines from the same run.

Everything here runs without TensorFlow (it is what a device can measure about itself): step latency through
``StreamingPredictor``, the raw interpreter floor for the same .tflite file, many streams in one predictor vs
many predictors, the import time of ``edgernn.runtime`` and the peak RSS of a runtime-only process. Baselines
that need TensorFlow (Keras, re-running windows) live in ``benchmarks/run.py``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgernn.runtime import StreamingPredictor
from edgernn.runtime.backends import backend_class, choose, installed, runs
from edgernn.runtime.bundle import Bundle
from edgernn.errors import BackendError
from edgernn.runtime.backends import make_interpreter
from edgernn.runtime.manifest import SIGNATURE, Mode
from edgernn.runtime.manifest_reader import read_manifest
from edgernn.runtime.variants import parse_variants, variant

WARMUP = 200
FLOOR_VARIANT = "tflite-float32"  # the raw floor: the plainest model, driven by hand


@dataclass
class Latency:
    variant: str
    backend: str
    size_bytes: int
    median_us: float
    p99_us: float
    steps_per_s: float
    note: str | None = None  # the backend ran it other than the usual way (e.g. slower reference kernels)


@dataclass
class BenchResult:
    bundle: str
    steps: int
    rows: list[Latency]
    raw_floor_us: float | None = None  # tflite-float32 on litert driven by hand
    wrapped_us: float | None = None  # the same through StreamingPredictor.step, interleaved with it
    wrapper_overhead: float | None = None  # StreamingPredictor.step / raw floor
    streams: int = 0
    one_predictor_steps_per_s: float | None = None  # stream-steps per second, N streams in one predictor
    separate_predictors_steps_per_s: float | None = None
    streams_speedup: float | None = None
    import_s: float | None = None
    peak_rss_mb: float | None = None
    # a step with its interval and score (``predictor.monitor(0.9).step``) against a plain step, same variant
    monitored: dict | None = None
    streams_variant: str | None = None  # the pairing the N-streams comparison ran on
    streams_backend: str | None = None
    streams_note: str | None = None  # why the N-streams comparison was not run, when it was not
    # [variant, backend, why it was not measured]: pairings asked for that could not be loaded
    skipped: list[list[str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _inputs(steps: int, features: int = 1) -> np.ndarray:
    """A sine to step through: ``[n]``, or rows ``[n, features]`` (each column its own phase) for a
    multivariate model."""
    t = np.arange(steps + WARMUP)
    if features == 1:
        return np.sin(2 * np.pi * t / 40.0)
    return np.sin(2 * np.pi * (t[:, None] + 5 * np.arange(features)) / 40.0)



def time_steps(step, values: np.ndarray) -> np.ndarray:
    """Per-call latencies in microseconds after ``WARMUP`` calls."""
    for value in values[:WARMUP]:
        step(value)
    times = np.empty(len(values) - WARMUP)
    clock = time.perf_counter_ns
    for i, value in enumerate(values[WARMUP:]):
        start = clock()
        step(value)
        times[i] = clock() - start
    return times / 1000.0


def _raw_step(bundle: Path, variant: str = FLOOR_VARIANT):
    """One step of ``variant`` on LiteRT driven directly (set_tensor, invoke, get_tensor), as a function of the
    input value (or row); None when the bundle has no such variant or LiteRT is not installed. An int8 variant's
    value is quantized and its prediction dequantized in Python, as a hand-written loop would; its states are
    handed back as the interpreter returned them (no requantization: the floor)."""
    opened = Bundle.open(bundle)
    manifest = opened.manifest
    entry = manifest.variants.get(variant)
    if entry is None or "litert" not in installed() or manifest.model.mode is not Mode.STREAMING:
        return None
    interpreter = make_interpreter(opened.read(entry.name), "litert")
    interpreter.allocate_tensors()
    runner = interpreter.get_signature_runner(SIGNATURE)
    inputs, outputs = runner.get_input_details(), runner.get_output_details()
    del runner
    x_index = inputs["x"]["index"]
    pairs = [(inputs[i]["index"], outputs[o]["index"]) for i, o in entry.state_pairs]
    y_index = outputs["y"]["index"]
    states = [np.full(inputs[i]["shape"], inputs[i]["quantization"][1], inputs[i]["dtype"])
              for i, _ in entry.state_pairs]
    x = np.zeros((1, manifest.features), inputs["x"]["dtype"])
    set_tensor, get_tensor, invoke = interpreter.set_tensor, interpreter.get_tensor, interpreter.invoke
    if x.dtype == np.int8:
        return _raw_int8_step(interpreter, inputs, outputs, pairs, states) if manifest.features == 1 else None

    if len(pairs) == 1:  # one state (SimpleRNN, GRU): the calls written out, as a user would by hand
        (state_in, state_out), = pairs
        state = states[0]

        def step(value):
            nonlocal state
            x[0] = value
            set_tensor(x_index, x)
            set_tensor(state_in, state)
            invoke()
            state = get_tensor(state_out)
            return get_tensor(y_index)[0, 0]

        return step

    def step(value):
        nonlocal states
        x[0] = value
        set_tensor(x_index, x)
        for (index, _), state in zip(pairs, states):
            set_tensor(index, state)
        invoke()
        states = [get_tensor(out) for _, out in pairs]
        return get_tensor(y_index)[0, 0]

    return step


def _raw_int8_step(interpreter, inputs, outputs, pairs, states):
    """The raw floor of an int8 model of one value in and out: the calls written out, one state or several."""
    (x_scale, x_zero), (y_scale, y_zero) = inputs["x"]["quantization"], outputs["y"]["quantization"]
    x_index, y_index = inputs["x"]["index"], outputs["y"]["index"]
    x = np.zeros((1, 1), np.int8)
    set_tensor, get_tensor, invoke = interpreter.set_tensor, interpreter.get_tensor, interpreter.invoke
    if len(pairs) == 1:
        (state_in, state_out), = pairs
        state = states[0]

        def step(value):
            nonlocal state
            x[0, 0] = min(127, max(-128, round(value / x_scale + x_zero)))
            set_tensor(x_index, x)
            set_tensor(state_in, state)
            invoke()
            state = get_tensor(state_out)
            return (int(get_tensor(y_index)[0, 0]) - y_zero) * y_scale

        return step

    def step_many(value):
        nonlocal states
        x[0, 0] = min(127, max(-128, round(value / x_scale + x_zero)))
        set_tensor(x_index, x)
        for (index, _), state in zip(pairs, states):
            set_tensor(index, state)
        invoke()
        states = [get_tensor(out) for _, out in pairs]
        return (int(get_tensor(y_index)[0, 0]) - y_zero) * y_scale

    return step_many


def interleaved_medians(first, second, values: np.ndarray) -> tuple[float, float]:
    """Median µs per call of two step functions called in turn on each value (after ``WARMUP`` values): both
    see the same moments of a machine whose speed drifts by more than the difference measured."""
    for value in values[:WARMUP]:
        first(value)
        second(value)
    times = np.empty((2, len(values) - WARMUP))
    clock = time.perf_counter_ns
    for i, value in enumerate(values[WARMUP:]):
        start = clock()
        first(value)
        middle = clock()
        second(value)
        times[:, i] = middle - start, clock() - middle
    return float(np.median(times[0])) / 1000.0, float(np.median(times[1])) / 1000.0


def raw_floor_and_step(bundle: Path, steps: int) -> tuple[float, float] | None:
    """Median µs per step of ``FLOOR_VARIANT`` on LiteRT driven by hand, and through ``StreamingPredictor``,
    interleaved step by step. None: no floor here (no such variant, or LiteRT not installed)."""
    raw = _raw_step(bundle)
    if raw is None:
        return None
    wrapped = StreamingPredictor.load(bundle, FLOOR_VARIANT, backend="litert").step
    return interleaved_medians(raw, wrapped, _inputs(steps, read_manifest(bundle).features))


def monitor_cost(bundle: Path, variant: str, backend: str, values: np.ndarray) -> dict | None:
    """Median µs of a monitored step (interval and score) and of a plain step, alternated three times (best of
    each), and their ratio; None for a bundle without intervals."""
    plain = StreamingPredictor.load(bundle, variant, backend=backend)
    if plain.intervals is None:
        return None
    monitor = StreamingPredictor.load(bundle, variant, backend=backend).monitor(0.9)
    best = {"plain_us": np.inf, "monitored_us": np.inf}
    for _ in range(3):
        for key, step in (("plain_us", plain.step), ("monitored_us", monitor.step)):
            best[key] = min(best[key], float(np.median(time_steps(step, values))))
    return {"variant": variant, "backend": backend, **best, "ratio": best["monitored_us"] / best["plain_us"]}


def streams_comparison(bundle: Path, variant: str, backend: str, streams: int, steps: int) -> tuple[float, float]:
    """Stream-steps per second: ``streams`` streams in one predictor vs ``streams`` separate predictors."""
    many = StreamingPredictor.load(bundle, variant, backend=backend, streams=streams)
    values = _inputs(steps, many.manifest.features)
    block = np.repeat(values[:, None], streams, axis=1)  # [steps, streams] or [steps, streams, F]
    for row in block[:20]:
        many.step(row)
    start = time.perf_counter()
    for row in block[20:]:
        many.step(row)
    together = streams * (block.shape[0] - 20) / (time.perf_counter() - start)
    alone = [StreamingPredictor.load(bundle, variant, backend=backend) for _ in range(streams)]
    rounds = max(5, steps // 20)
    start = time.perf_counter()
    for value in values[:rounds]:
        for predictor in alone:
            predictor.step(value)
    separate = streams * rounds / (time.perf_counter() - start)
    return together, separate


_PROBE = """
import resource, sys, time
t = time.perf_counter()
from edgernn.runtime import StreamingPredictor  # what a device program imports (numpy included)
imported = time.perf_counter() - t
p = StreamingPredictor.load(sys.argv[1], sys.argv[2], backend=sys.argv[3])
for i in range(int(sys.argv[4])):
    p.step(float(i % 40) / 40.0 if not p.manifest.columns.named else [float(i % 40) / 40.0] * p.features)
heavy = [m for m in ("tensorflow", "keras") if m in sys.modules]
try:  # VmHWM is this process's own peak; ru_maxrss keeps the forking parent's peak across exec on Linux
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024.0
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print(imported, peak, ",".join(heavy))
"""


def process_footprint(bundle: Path, variant: str, backend: str, steps: int) -> tuple[float, float]:
    """(import time of edgernn.runtime in s, peak RSS in MB) of a fresh process that only steps a predictor."""
    best_import, rss = float("inf"), 0.0
    for _ in range(3):  # import time: best of three cold-ish starts
        out = subprocess.run([sys.executable, "-c", _PROBE, str(bundle), variant, backend, str(steps)],
                             capture_output=True, text=True, timeout=300, check=True).stdout.split()
        if len(out) > 2:
            raise RuntimeError(f"the runtime-only probe imported {out[2]}")
        best_import, rss = min(best_import, float(out[0])), float(out[1])
    return best_import, rss


def bench(bundle, variants=None, backends=None, steps: int = 2000, streams: int = 256) -> BenchResult:
    """Measure ``bundle``; see the module docstring. ``backends`` None = every installed backend."""
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    names = [n for n in parse_variants(variants) if n in manifest.variants]
    if backends:
        for name in backends:
            backend_class(name)  # unknown or not installed: BackendError naming the extra
        chosen = list(backends)
    else:
        chosen = installed()
    values = _inputs(steps, manifest.features)
    rows, skipped = [], []
    for name in names:
        entry = manifest.variants[name]
        for backend in chosen:
            try:
                choose(backend, variant(name), entry)
                predictor = StreamingPredictor.load(bundle, name, backend=backend)
            except BackendError as exc:
                skipped.append([name, backend, str(exc)])
                continue
            times = time_steps(predictor.step, values)
            median = float(np.median(times))
            rows.append(Latency(name, backend, entry.size_bytes, median, float(np.percentile(times, 99)),
                                1e6 / float(np.mean(times)), predictor.backend_note))
    if not rows:
        why = "; ".join(f"{name} on {backend}: {reason}" for name, backend, reason in skipped)
        raise BackendError(f"nothing to measure: no variant of {', '.join(names) or '(none)'} runs on "
                           f"{', '.join(chosen)} here" + (f" ({why})" if why else ""))
    result = BenchResult(str(bundle), steps, rows, skipped=skipped)
    measured = any(r.variant == FLOOR_VARIANT and r.backend == "litert" for r in rows)
    floor = raw_floor_and_step(bundle, steps) if measured else None
    if floor:
        result.raw_floor_us, result.wrapped_us = floor
        result.wrapper_overhead = result.wrapped_us / result.raw_floor_us
    primary = next((r for r in rows if r.backend != "numpy"), rows[0])
    if streams > 1:
        _compare_streams(result, bundle, rows, streams, min(steps, 500))
    result.monitored = monitor_cost(bundle, primary.variant, primary.backend, values)
    result.import_s, result.peak_rss_mb = process_footprint(bundle, primary.variant, primary.backend,
                                                            min(steps, 1000))
    return result


def _compare_streams(result: BenchResult, bundle: Path, rows: list[Latency], streams: int, steps: int) -> None:
    """The N-streams comparison on the first measured pairing whose backend runs many streams (TFLM runs one:
    a microcontroller's tensors have a fixed shape), numpy last; a note when none does."""
    refusals = []
    for row in sorted(rows, key=lambda r: r.backend == "numpy"):
        try:
            together, separate = streams_comparison(bundle, row.variant, row.backend, streams, steps)
        except BackendError as exc:
            refusals.append(f"{row.backend}: {exc}")
            continue
        result.streams = streams
        result.one_predictor_steps_per_s, result.separate_predictors_steps_per_s = together, separate
        result.streams_speedup = together / separate
        result.streams_variant, result.streams_backend = row.variant, row.backend
        return
    result.streams_note = f"no measured backend runs {streams} streams ({'; '.join(dict.fromkeys(refusals))})"


def _ratio(value: float) -> str:
    """A ratio with two significant digits (0.53x, 4.2x), whole from 10 up (37x, 120x)."""
    return f"{value:.0f}x" if value >= 10 else f"{value:.2g}x"


def format_table(result: BenchResult) -> str:
    lines = [f"bench {result.bundle}: {result.steps} steps per row after {WARMUP} warm-up steps",
             f"{'variant':<16}{'backend':<16}{'size':>9}{'median us':>11}{'p99 us':>9}{'steps/s':>10}"]
    for r in result.rows:
        lines.append(f"{r.variant:<16}{r.backend:<16}{r.size_bytes / 1024:>7.1f}KB{r.median_us:>11.1f}"
                     f"{r.p99_us:>9.1f}{r.steps_per_s:>10.0f}")
    lines += [f"  {r.variant} on {r.backend}: {r.note}" for r in result.rows if r.note]
    measured = {r.variant for r in result.rows}
    lines += [f"  not measured: {name} on {backend}: {reason}" for name, backend, reason in result.skipped
              if name not in measured or runs(backend_class(backend), variant(name))]  # not: numpy on int8...
    if result.wrapper_overhead:
        lines.append(f"raw interpreter floor (tflite-float32, litert, by hand): {result.raw_floor_us:.1f} us; "
                     f"through StreamingPredictor.step {result.wrapped_us:.1f} us ({result.wrapper_overhead:.2f}x; "
                     "interleaved step by step)")
    if result.streams_speedup:
        lines.append(f"{result.streams} streams ({result.streams_variant}, {result.streams_backend}): one predictor "
                     f"{result.one_predictor_steps_per_s:,.0f} stream-steps/s vs {result.streams} predictors "
                     f"{result.separate_predictors_steps_per_s:,.0f} ({_ratio(result.streams_speedup)})")
    elif result.streams_note:
        lines.append(f"N-streams comparison skipped: {result.streams_note}")
    if result.monitored:
        m = result.monitored
        lines.append(f"{m['variant']} on {m['backend']} with its 0.9 interval and score: {m['monitored_us']:.1f} us "
                     f"vs {m['plain_us']:.1f} us plain ({m['ratio']:.2f}x)")
    if result.import_s is not None:
        lines.append(f"import of StreamingPredictor {result.import_s:.3f} s; peak RSS of a runtime-only "
                     f"predicting process {result.peak_rss_mb:.0f} MB")
    return "\n".join(lines)


