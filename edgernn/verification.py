"""``edgernn verify``: what each variant costs in accuracy, measured the way the device runs it.

Each variant is stepped with its state carried over a long sequence (at least 10,000 steps by default,
repeating the data) through ``StreamingPredictor``, and compared with the float Keras model run on the same
inputs. The gate holds every variant to a threshold on NRMSE vs float (% of the float output's range) and on
drift (error over the last 10 % of steps / error over the first 10 %).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgernn.errors import DataError, EdgernnError
from edgernn.metrics import drift_ratio, error_metrics
from edgernn.runtime.backends.tensorflow import available as tensorflow_installed
from edgernn.runtime.bundle import Bundle
from edgernn.runtime.manifest import parse_variants

# Default gate: NRMSE vs float, % of range. float32 variants also need max abs error within 1e-4 of range.
DEFAULT_MAX_NRMSE = {
    "tflite-float32": 0.001,
    "tflite-float16": 0.5,
    "tflite-int16x8": 1.0,
    "tflite-dynamic": 2.0,
    "tflite-int8": 2.0,
    "onnx-float32": 0.001,
    "onnx-int8": 2.0,
}
FLOAT32_MAX_ABS_OF_RANGE = 1e-4
MAX_DRIFT = 2.0
DEFAULT_MAX_CLIPPED = 1.0  # % of steps an integer variant may clip its input on
CROSS_BACKEND_FLOAT32 = 1e-5  # float32 variants: every backend within this share of the range
DEFAULT_STEPS = 10_000


@dataclass
class VariantResult:
    variant: str
    backend: str
    size_bytes: int
    vs_float: dict = field(default_factory=dict)
    drift: float = float("nan")
    task_rmse: float = float("nan")
    passed: bool = False
    skipped: bool = False  # no interpreter for this variant here (e.g. onnx-* on a device with LiteRT only)
    reasons: list[str] = field(default_factory=list)
    out_of_range_pct: float = 0.0  # share of steps whose input was outside the calibrated range
    clipped_pct: float = 0.0  # share of steps whose input an integer variant's input quantization clipped
    cross_backend: dict = field(default_factory=dict)  # other backend -> max |difference| / float range
    diagnosis: list[dict] = field(default_factory=list)  # worst tensors, for a failing full-integer variant
    note: str | None = None  # how the backend ran it, when not the usual way (e.g. reference kernels)


@dataclass
class VerifyResult:
    bundle: str
    data: str
    steps: int
    float_task_rmse: float
    persistence_rmse: float
    variants: list[VariantResult]
    arrays: dict = field(default_factory=dict, repr=False)  # inputs, reference and predictions, for the report
    reference: str = "keras"  # keras: the float model run here; stored: the outputs recorded at export

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.variants if not v.skipped)

    def to_dict(self) -> dict:
        """JSON-ready: each variant's ``result`` is ``pass``, ``fail`` or ``skipped`` (then ``passed`` is null:
        a variant that could not run here neither passed nor failed)."""
        data = asdict(self)
        data.pop("arrays")
        for row in data["variants"]:
            row["result"] = "skipped" if row["skipped"] else ("pass" if row["passed"] else "fail")
            if row["skipped"]:
                row["passed"] = None
        return {**data, "passed": self.passed}


def parse_thresholds(items) -> dict[str, float]:
    """``["tflite-int8=1.5", ...]`` -> ``{"tflite-int8": 1.5}``; one-line errors for anything else."""
    out = {}
    for item in items or ():
        name, sep, value = str(item).partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or not math.isfinite(number) or number < 0:
            raise EdgernnError(f"--max-nrmse takes VARIANT=PERCENT (e.g. tflite-int8=1.5), got {item!r}")
        out[parse_variants(name)[0]] = number
    return out


def _series(metadata, data, column, steps: int) -> tuple[np.ndarray, str]:
    """``steps`` values to verify on: ``data`` (a series name or file), else the reference model's held-out split."""
    from edgernn.data import load_series

    if data is None:
        values = metadata.test_values if metadata else None
        if values is None:
            raise DataError("this bundle records no held-out test data (not trained by edgernn train): give --data")
        name = "held-out test split"
    else:
        series = load_series(str(data), column=column)
        values, name = series.values, series.name
    if values.size < 3:
        raise DataError(f"{name} has {values.size} values; verify needs at least 3")
    repeats = math.ceil(steps / values.size)
    if repeats > 1:
        name += f", repeated x{repeats} forwards and backwards"
    return repeat_to(values, steps), name


def repeat_to(values: np.ndarray, steps: int) -> np.ndarray:
    """``values`` forwards, backwards, forwards... cut to ``steps``: the joins are continuous, so repeating
    short data adds no artificial jumps (a jump can push states outside their calibrated range)."""
    repeats = max(1, math.ceil(steps / values.size))
    return np.concatenate([values if i % 2 == 0 else values[::-1] for i in range(repeats)])[:steps]


def stored_reference(bundle: Bundle) -> tuple[np.ndarray, np.ndarray, str]:
    """The inputs and float-model outputs recorded at export (hash-checked): verify without TensorFlow."""
    values, outputs = bundle.reference_data()
    source = bundle.manifest.files["reference_data"].source or "?"
    return values, outputs, f"stored reference ({values.size} steps recorded at export from {source})"


def reference_model(bundle: Bundle):
    """The bundle's float Keras model and its metadata, from the hash-checked bytes (``safe_mode=True``)."""
    from edgernn.modeling import load_model_bytes

    return load_model_bytes(bundle.read("reference"), bundle.manifest.files["reference"].file)


def float_reference(model, metadata, values: np.ndarray) -> np.ndarray:
    """The float Keras model's prediction after each value (NaN where none exists yet)."""
    from edgernn.training import predict_with

    out = predict_with(model, metadata, values)
    if out.size != values.size:  # window models: one per complete window
        out = np.concatenate([np.full(values.size - out.size, np.nan), out])
    return out


def verify(bundle, data=None, *, column=None, steps: int = DEFAULT_STEPS, variants=None, backend: str = "auto",
           max_nrmse: dict | None = None, diagnose: bool = True, reference: str = "auto",
           max_clipped: float = DEFAULT_MAX_CLIPPED, progress=None) -> VerifyResult:
    """Measure every variant (or ``variants``) of ``bundle`` against the float model; see the module doc.

    Each variant also runs on every other installed backend that can run it; float32 variants must agree
    within 1e-5 of range. A failing tflite-int8 gets a per-tensor diagnosis (``diagnose``, needs TensorFlow).

    ``reference``: ``keras`` runs the float model (needs TensorFlow); ``stored`` uses the inputs and float
    outputs recorded in the bundle at export (what a device without TensorFlow does); ``auto`` picks keras
    where TensorFlow is installed, else stored. ``progress(done, total, variant)``, if given, is called as
    each variant starts.
    """
    from edgernn.runtime import StreamingPredictor
    from edgernn.runtime.backends import choose
    from edgernn.runtime.errors import BackendError, BundleError
    from edgernn.runtime.manifest import Variant

    opened = Bundle.open(bundle)
    bundle, manifest = opened.path, opened.manifest
    names = [n for n in parse_variants(variants) if variants not in (None, "all") or n in manifest.variants]
    missing = [n for n in names if n not in manifest.variants]
    if missing:
        raise EdgernnError(f"variant {', '.join(missing)} is not in this bundle; it has {', '.join(manifest.variants)}")
    if steps < 10:
        raise EdgernnError(f"--steps must be at least 10, got {steps}")
    if reference not in ("auto", "keras", "stored"):
        raise EdgernnError(f"reference must be auto, keras or stored, got {reference!r}")
    use_stored = reference == "stored" or (reference == "auto" and not tensorflow_installed())
    if use_stored:
        if data is not None:
            raise EdgernnError("--data needs TensorFlow to run the float model; without it verify uses the "
                               "bundle's stored reference (drop --data)")
        values, reference_outputs, data_name = stored_reference(opened)
        values, reference_outputs = values[:steps], reference_outputs[:steps]
    else:
        model, metadata = reference_model(opened)
        values, data_name = _series(metadata, data, column, steps)
        reference_outputs = float_reference(model, metadata, values)
    reference = reference_outputs
    truth = values[1:]
    task = error_metrics(reference[:-1], truth)
    persistence = error_metrics(values[:-1], truth)
    thresholds = {**DEFAULT_MAX_NRMSE, **(max_nrmse or {})}
    results = []
    arrays = {"values": values, "reference": reference}
    for done, name in enumerate(names):
        if progress is not None:
            progress(done, len(names), name)
        entry = manifest.variants[name]
        row = VariantResult(name, backend, entry.size_bytes)
        try:
            choose(backend, entry.format, Variant(name).is_float32)
        except BackendError as exc:
            row.skipped, row.passed = True, False
            row.reasons.append(str(exc))
            results.append(row)
            continue
        try:
            predictor = StreamingPredictor.load(bundle, name, backend=backend)
        except (BundleError, BackendError) as exc:  # a damaged variant fails the gate; it does not crash it
            row.reasons.append(str(exc))
            results.append(row)
            continue
        row.backend, row.note = predictor.backend_name, predictor.backend_note
        predicted = predictor.run(values)
        stats = predictor.stats
        row.out_of_range_pct = 100.0 * float(stats["out_of_range"][0]) / max(1, values.size)
        row.clipped_pct = 100.0 * float(stats["clipped"][0]) / max(1, values.size)
        arrays[name] = predicted
        row.vs_float = error_metrics(predicted, reference)
        row.cross_backend = _cross_backend(bundle, name, row.backend, values, predicted, row.vs_float["range"])
        row.drift = drift_ratio(predicted, reference)
        row.task_rmse = error_metrics(predicted[:-1], truth)["rmse"]
        limit = thresholds[name]
        if not row.vs_float["nrmse_pct"] <= limit:
            row.reasons.append(f"NRMSE {row.vs_float['nrmse_pct']:.4g}% > {limit:g}%")
        if name.endswith("float32") and not row.vs_float["max_abs"] <= FLOAT32_MAX_ABS_OF_RANGE * row.vs_float["range"]:
            row.reasons.append(f"max error {row.vs_float['max_abs']:.3g} > 1e-4 of range")
        if not row.drift <= MAX_DRIFT:
            row.reasons.append(f"drift {row.drift:.3g} > {MAX_DRIFT:g}")
        if row.clipped_pct > max_clipped:
            row.reasons.append(f"input clipped by quantization on {row.clipped_pct:.1f}% of steps > {max_clipped:g}% "
                               "(data outside the calibrated range: try --difference on, or recalibrate)")
        if name.endswith("float32"):
            for other, difference in row.cross_backend.items():
                if not difference <= CROSS_BACKEND_FLOAT32:
                    row.reasons.append(f"{other} differs by {difference:.2g} of range")
        row.passed = not row.reasons
        if not row.passed and name == "tflite-int8" and diagnose:
            row.diagnosis = _diagnose(bundle)
        results.append(row)
    if all(r.skipped for r in results):  # nothing verified is never "all variants pass"
        reason = f": {results[0].reasons[0]}" if results else ""
        raise EdgernnError(f"no variant of this bundle can run here, nothing was verified{reason}")
    return VerifyResult(str(bundle), data_name, int(values.size), task["rmse"], persistence["rmse"], results,
                        arrays, "stored" if use_stored else "keras")


def _cross_backend(bundle: Path, name: str, primary: str, values, predicted, span: float) -> dict:
    """Run the variant on every other installed backend that can; max |difference| / range for each."""
    from edgernn.runtime import StreamingPredictor
    from edgernn.runtime.backends import installed
    from edgernn.runtime.errors import BackendError

    found = {}
    for other in installed():
        if other == primary:
            continue
        try:
            predictor = StreamingPredictor.load(bundle, name, backend=other)
        except BackendError:
            continue  # this backend cannot run this variant's format or precision
        difference = np.abs(predictor.run(values) - predicted)
        found[other] = float(np.nanmax(difference) / span) if span > 0 else float("nan")
    return found


def _diagnose(bundle: Path) -> list[dict]:
    """The three worst tensors by quantization error, when TensorFlow is here to run the debugger."""
    if not tensorflow_installed():
        return []
    from edgernn.diagnosis import diagnose_int8

    try:
        worst = diagnose_int8(bundle)[:3]
    except Exception as exc:  # noqa: BLE001 - the debugger is best effort; the verdict stands without it
        return [{"op": "-", "tensor": f"diagnosis unavailable: {str(exc).splitlines()[0][:120]}", "rmse": 0.0,
                 "scale": 0.0, "rmse_steps": 0.0}]
    return [{"op": t.op, "tensor": t.tensor, "rmse": t.rmse, "scale": t.scale, "rmse_steps": t.steps}
            for t in worst]


def format_table(result: VerifyResult) -> str:
    against = ("the float Keras model" if result.reference == "keras"
               else "the float model's outputs stored in the bundle at export")
    lines = [f"verify {result.bundle} against {against}: {result.steps} steps of {result.data}, state carried; "
             f"float model task RMSE {result.float_task_rmse:.4g}, persistence {result.persistence_rmse:.4g}",
             f"{'variant':<16}{'backend':<16}{'size':>9}{'NRMSE %':>10}{'max err':>10}{'drift':>7}"
             f"{'task RMSE':>11}  result"]
    for row in result.variants:
        m = row.vs_float
        figures = (f"{m['nrmse_pct']:>10.4f}{m['max_abs']:>10.3g}{row.drift:>7.2f}{row.task_rmse:>11.4g}"
                   if m else f"{'-':>10}{'-':>10}{'-':>7}{'-':>11}")
        verdict = "PASS" if row.passed else ("SKIP: " if row.skipped else "FAIL: ") + "; ".join(row.reasons)
        lines.append(f"{row.variant:<16}{row.backend:<16}{row.size_bytes / 1024:>7.1f}KB{figures}  {verdict}")
    for row in result.variants:
        if row.note:
            lines.append(f"  {row.variant}: {row.note}")
        if row.out_of_range_pct:
            lines.append(f"  {row.variant}: input outside the calibrated range on {row.out_of_range_pct:.1f}% of "
                         f"steps, clipped by input quantization on {row.clipped_pct:.1f}%")
        if row.cross_backend:
            others = ", ".join(f"{b} {d:.1e}" for b, d in row.cross_backend.items())
            lines.append(f"  {row.variant}: max difference from {row.backend}, share of range: {others}")
        for tensor in row.diagnosis:
            if tensor["op"] == "-":
                lines.append(f"  {row.variant} diagnosis: {tensor['tensor']}")
                continue
            lines.append(f"  {row.variant} diagnosis: {tensor['op']} {tensor['tensor']} carries "
                         f"{tensor['rmse_steps']:.2f} quantization steps of RMSE")
    skipped = sum(r.skipped for r in result.variants)
    note = f" ({skipped} skipped: no interpreter for them here)" if skipped else ""
    lines.append(("all variants pass" if result.passed else "some variants FAIL the gate") + note)
    return "\n".join(lines)


def write_verify_json(result: VerifyResult, bundle) -> Path:
    """Store the gate's outcome in the bundle as ``verify.json`` (strict JSON; a new temporary file, then a rename:
    a symlink planted in the bundle is replaced, never written through)."""
    from edgernn.runtime.atomic import write_bytes_atomically
    from edgernn.runtime.safe_json import dumps

    path = Path(bundle) / "verify.json"
    write_bytes_atomically(path, (dumps(result.to_dict(), non_finite="null", indent=2) + "\n").encode())
    return path
