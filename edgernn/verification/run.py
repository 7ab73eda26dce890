"""``verify``: every variant of a bundle stepped through ``StreamingPredictor`` with its state carried, measured
against the float model, cross-checked on every other installed backend, and judged by the gate."""

from __future__ import annotations

import numpy as np

from edgernn.training.comparison import table
from edgernn.verification.metrics import drift_ratio, error_metrics
from edgernn.runtime.backends.tensorflow import available as tensorflow_installed
from edgernn.runtime.bundle import Bundle
from edgernn.errors import EdgernnError
from edgernn.runtime.intervals import scale_ratios
from edgernn.runtime.options import REFERENCES
from edgernn.runtime.variants import parse_variants, variant
from edgernn.verification import gate
from edgernn.verification.replay import Picked, replay_for
from edgernn.verification.results import VariantResult, VerifyResult



def verify(bundle, data=None, *, column=None, columns=None, time_column=None, steps: int = gate.DEFAULT_STEPS,
           variants=None, backend: str | list[str] = "auto", max_nrmse: dict | None = None, diagnose: bool = True,
           reference: str = "auto", max_clipped: float = gate.DEFAULT_MAX_CLIPPED, progress=None) -> VerifyResult:
    """Measure every variant (or ``variants``) of ``bundle`` against the float model.

    Each variant also runs on every other installed backend that can run it; float32 variants must agree
    within 1e-5 of range. ``backend``: a name (or ``auto``), or a list of them: each variant is gated on each,
    the first's run cross-checked. A failing diagnosable variant gets a per-tensor diagnosis (``diagnose``, needs
    TensorFlow).

    ``reference``: ``keras`` runs the float model (needs TensorFlow); ``stored`` uses the inputs and float
    outputs recorded in the bundle at export (what a device without TensorFlow does); ``auto`` picks keras
    where TensorFlow is installed, else stored. ``progress(done, total, variant)``, if given, is called as
    each variant starts.

    Raises:
        EdgernnError: bad options, an unreadable bundle, or nothing that could be verified here.
    """
    opened = Bundle.open(bundle)
    manifest = opened.manifest
    names = _checked(manifest, variants, steps, reference)
    stored = reference == "stored" or (reference == "auto" and not tensorflow_installed())
    replayed = replay_for(opened, data, Picked(column, columns, time_column), steps, stored)
    backends = [backend] if isinstance(backend, str) else list(backend)  # each one gated; the first cross-checked
    results, arrays = _gated(opened, names, backends, replayed, gate.thresholds(max_nrmse), max_clipped, diagnose,
                             progress)
    if all(r.skipped or r.incompatible for r in results):  # nothing verified is never "all variants pass"
        reason = f": {results[0].reasons[0]}" if results else ""
        raise EdgernnError(f"no variant of this bundle can run here, nothing was verified{reason}")
    result = _result(opened, replayed, results, arrays, "stored" if stored else "keras")
    result.named = backends != ["auto"] or variants not in (None, "all")
    return result


def _checked(manifest, variants, steps: int, reference: str) -> list[str]:
    """The variants to verify, after the options are checked (one line each)."""
    names = [n for n in parse_variants(variants) if variants not in (None, "all") or n in manifest.variants]
    missing = [n for n in names if n not in manifest.variants]
    if missing:
        raise EdgernnError(f"variant {', '.join(missing)} is not in this bundle; it has {', '.join(manifest.variants)}")
    if steps < 10:
        raise EdgernnError(f"--steps must be at least 10, got {steps}")
    if reference not in REFERENCES:
        raise EdgernnError(f"reference must be auto, keras or stored, got {reference!r}")
    return names


def _gated(opened: Bundle, names: list[str], backends: list[str], replayed, limits, max_clipped: float,
           diagnose: bool, progress) -> tuple[list[VariantResult], dict]:
    """Each variant on each backend (and TFLM), measured and judged by the gate; the predictions by row name."""
    manifest = opened.manifest
    values, outputs = replayed.values, replayed.reference
    arrays, results = {"values": values, "reference": outputs}, []
    pairings = _pairings(names, backends) + [(name, "tflm") for name in _tflm_variants(opened, names, backends)]
    first = {}  # each variant's first backend: its run is cross-checked on every other, named by the variant alone
    for name, on in pairings:
        first.setdefault(name, on)
    for done, (name, on) in enumerate(pairings):
        if progress is not None:
            progress(done, len(pairings), name)
        primary = first[name]
        row, predicted = _measure(opened, name, on, values, outputs, cross_check=on == primary, test=replayed.test,
                                  columns=manifest.columns)
        if predicted is not None:
            arrays[name if on == primary else f"{name} on {on}"] = predicted
            row.reasons = gate.reasons(row, variant(name), limits[name], max_clipped,
                                       manifest.preprocessing.difference)
            row.passed = not row.reasons
            if not row.passed and variant(name).diagnosable and diagnose and on == primary:  # once per variant
                row.diagnosis = _diagnose(opened.path, name)
        results.append(row)
    return results, arrays


def _result(opened: Bundle, replayed, results: list, arrays: dict, reference: str) -> VerifyResult:
    """The run around the rows: the float model's own figures beside persistence's, and train's comparison."""
    values, outputs, columns = replayed.values, replayed.reference, opened.manifest.columns
    if columns.named:  # per output; a plain univariate model's figures are its one value's
        result = VerifyResult(str(opened.path), replayed.name, int(values.shape[0]), float("nan"), float("nan"),
                              results, arrays, reference)
        result.outputs = _float_per_output(columns, values, outputs)
        result.columns = columns
        result.comparison = table(replayed.training_metrics or {}, columns)
        return result
    truth = values[1:]
    result = VerifyResult(str(opened.path), replayed.name, int(values.size), error_metrics(outputs[:-1], truth)["rmse"],
                          error_metrics(values[:-1], truth)["rmse"], results, arrays, reference)
    if replayed.test is not None:  # the held-out test split, first pass: train's own figure, measured here
        result.float_test_rmse = error_metrics(outputs[replayed.test], values[1:][replayed.test])["rmse"]
        result.train_test_rmse = replayed.train_test_rmse
    result.comparison = table(replayed.training_metrics or {}, columns)
    return result


def _pairings(names: list[str], backends: list[str]) -> list[tuple[str, str]]:
    """Each variant with each named backend that runs its kind of file here (a list of several: an ONNX variant
    is not paired with a TFLite interpreter); a variant none of them runs keeps its first pairing, whose row says
    why it was skipped."""
    from edgernn.runtime.backends import choose

    def runs(name, on):
        try:
            choose(on, variant(name))
        except EdgernnError:
            return False
        return True

    pairs = []
    for name in names:
        found = [(name, on) for on in backends if len(backends) == 1 or runs(name, on)]
        pairs += found or [(name, backends[0])]
    return sorted(pairs, key=lambda pair: backends.index(pair[1]))  # backend by backend, as the table reads


def _tflm_variants(bundle: Bundle, names: list[str], backends: list[str]) -> list[str]:
    """Full-integer TFLite variants to run again on TensorFlow Lite Micro (what a microcontroller runs), where it
    is installed, whatever the manifest records of TFLM (a record is a claim: a missing or negative one is measured
    here); verify's own backend choice "auto" only: a named backend means that backend."""
    from edgernn.runtime.backends import installed
    from edgernn.runtime.manifest import Mode

    if backends != ["auto"] or "tflm" not in installed() or bundle.manifest.model.mode is Mode.WINDOW:
        return []  # a window model's zero state is built at run time (SHAPE -> FILL): never on TFLM
    return [name for name in names if variant(name).format == "tflite" and not variant(name).float32
            and not variant(name).tflm_lacks]


def _float_per_output(columns, values: np.ndarray, reference: np.ndarray) -> dict:
    """Per output: the float model's RMSE against what happened, beside persistence (the target's latest value
    carried that many steps ahead)."""
    truth = columns.targets_of(values)
    found = {}
    for k, (name, out) in enumerate(zip(columns.output_names(), columns.outputs)):
        found[name] = {"float_rmse": error_metrics(reference[:, k], truth[:, k])["rmse"],
                       "persistence_rmse": (error_metrics(values[:, out.source], truth[:, k])["rmse"]
                                            if out.source is not None else float("nan"))}
    return found


def _per_output(row: VariantResult, columns, values, predicted, reference) -> None:
    """A multivariate variant's figures for each output; the row's own figures are the worst output's (the gate
    holds every output to the limits)."""
    truth = columns.targets_of(values)
    for k, name in enumerate(columns.output_names()):
        figures = error_metrics(predicted[:, k], reference[:, k])
        figures["drift"] = drift_ratio(predicted[:, k], reference[:, k])
        figures["task_rmse"] = error_metrics(predicted[:, k], truth[:, k])["rmse"]
        row.per_output[name] = figures
    worst, figures = max(row.per_output.items(), key=lambda item: _badness(item[1]["nrmse_pct"]))
    row.vs_float = {k: v for k, v in figures.items() if k not in ("drift", "task_rmse")}
    row.vs_float["output"] = worst
    row.drift = float(max((f["drift"] for f in row.per_output.values()), key=_badness))  # NaN: unmeasurable, fails
    row.task_rmse = next(iter(row.per_output.values()))["task_rmse"]  # the first output's, for every variant alike


def _badness(value: float) -> float:
    return np.inf if np.isnan(value) else value


def _measure(bundle: Bundle, name: str, backend: str, values, reference, cross_check: bool = True,
             test: slice | None = None, columns=None) -> tuple[VariantResult, np.ndarray | None]:
    """One variant on ``backend`` over ``values``: its figures (no verdict yet), and its predictions (None when it
    could not run: skipped where no interpreter runs it, incompatible where the export recorded so, failed where
    the bundle's file is damaged). ``cross_check``: also run it on every other installed backend."""
    from edgernn.runtime import StreamingPredictor
    from edgernn.runtime.backends import choose
    from edgernn.errors import BackendError, BundleError

    entry = bundle.manifest.variants[name]
    row = VariantResult(name, backend, entry.size_bytes)
    try:  # the interpreter that will run it, claims of incompatibility aside: they are tried, not trusted
        chosen = choose(backend, variant(name)).name
    except BackendError as exc:
        row.skipped = True
        row.reasons.append(str(exc))
        return row, None
    recorded = entry.refused_by(chosen)
    try:
        predictor = StreamingPredictor.load(bundle.path, name, backend=chosen, refuse_recorded=False)
    except (BundleError, BackendError) as exc:  # a damaged variant fails the gate; it does not crash it
        if recorded is not None and not isinstance(exc, BundleError):  # as the export recorded: INCOMPATIBLE
            row.backend, row.incompatible = chosen, True
            row.reasons.append(recorded)
        elif chosen == "tflm" and not isinstance(exc, BundleError):  # measured here: TFLM cannot load it
            row.backend, row.incompatible = chosen, True
            row.reasons.append(f"TFLM cannot load it here: {exc}")
        else:
            row.reasons.append(str(exc))
        return row, None
    row.backend, row.note = predictor.backend_name, predictor.backend_note
    if recorded is not None:
        row.note = ((row.note + "; ") if row.note else "") + (
            f"the export recorded {chosen} as unable to run it ({recorded}), yet it loads here: measured")
    row.arena_bytes = (entry.interpreters.get("tflm") or {}).get("arena_bytes") if row.backend == "tflm" else None
    predicted = predictor.run(values)
    stats = predictor.stats  # the busiest feature's counts, for a multivariate model
    row.out_of_range_pct = 100.0 * float(np.max(stats["out_of_range"][0])) / max(1, values.shape[0])
    row.clipped_pct = 100.0 * float(np.max(stats["clipped"][0])) / max(1, values.shape[0])
    if columns.named:
        predicted = predicted.reshape(values.shape[0], -1)
        _per_output(row, columns, values, predicted, reference)
        if cross_check:
            spans = np.array([f["range"] for f in row.per_output.values()])
            row.cross_backend = _cross_backend(bundle, name, row.backend, values, predicted, spans)
        if columns.univariate and entry.intervals is not None and test is not None:  # one column, plain numbers
            _coverage(row, entry.intervals, values.reshape(-1)[1:] - predicted[:-1, 0], test)
        return row, predicted
    row.vs_float = error_metrics(predicted, reference)
    if cross_check:
        row.cross_backend = _cross_backend(bundle, name, row.backend, values, predicted, row.vs_float["range"])
    row.drift = drift_ratio(predicted, reference)
    row.task_rmse = error_metrics(predicted[:-1], values[1:])["rmse"]
    if entry.intervals is not None and test is not None:
        _coverage(row, entry.intervals, values[1:] - predicted[:-1], test)
    return row, predicted


def _coverage(row: VariantResult, intervals, residuals: np.ndarray, test: slice) -> None:
    """Each calibrated level's share of held-out test values inside its interval (the ``Monitor``'s rule:
    |residual| <= half-width in force, the scale run from the first residual), and the interval's mean width."""
    residuals = np.asarray(residuals, dtype=np.float64).reshape(-1)
    scaling = intervals.scaling
    ratios = (scale_ratios(residuals, *scaling) if scaling else np.ones(residuals.size))[test]
    residuals = residuals[test]
    finite = np.isfinite(residuals)
    sizes, ratios = np.abs(residuals[finite]), ratios[finite]
    row.coverage_points = int(sizes.size)
    if not sizes.size:
        return
    for level, width in zip(intervals.levels, intervals.half_widths):
        if width is not None:
            row.coverage[f"{level:g}"] = float(np.mean(sizes <= width * ratios))
            row.interval_width[f"{level:g}"] = float(2 * width * np.mean(ratios))


def _cross_backend(bundle: Bundle, name: str, primary: str, values, predicted, span) -> dict:
    """Run the variant on every other installed backend that can; max |difference| / range for each (``span``:
    one range, or one per output column of ``predicted``)."""
    from edgernn.runtime import StreamingPredictor
    from edgernn.runtime.backends import backend_class, installed, runs
    from edgernn.errors import BackendError

    found = {}
    for other in installed():
        if other == primary or not runs(backend_class(other), variant(name)):
            continue
        try:
            predictor = StreamingPredictor.load(bundle.path, name, backend=other)
        except BackendError:
            continue  # this interpreter cannot load this file (the primary one could)
        difference = np.abs(predictor.run(values).reshape(predicted.shape) - predicted)
        span = np.asarray(span, dtype=np.float64)
        if not (span > 0).all():
            found[other] = float("nan")
            continue
        found[other] = float(np.nanmax(difference / span))
    return found


def _diagnose(bundle_path, name: str) -> list[dict]:
    """The three worst tensors by quantization error, when TensorFlow is here to run the debugger."""
    if not tensorflow_installed():
        return []
    from edgernn.verification.diagnosis import diagnose

    try:
        worst = diagnose(bundle_path, name)[:3]
    except Exception as exc:  # noqa: BLE001 - the debugger is best effort; the verdict stands without it
        return [{"op": "-", "tensor": f"diagnosis unavailable: {_in_words(exc)}", "rmse": 0.0, "scale": 0.0,
                 "rmse_steps": 0.0}]
    return [{"op": t.op, "tensor": t.tensor, "rmse": t.rmse, "scale": t.scale, "rmse_steps": t.steps}
            for t in worst]


def _in_words(exc: Exception) -> str:
    """Why TensorFlow's quantization debugger could not run, for a person (its own message goes to --debug)."""
    import os

    text = str(exc)
    if os.environ.get("EDGERNN_DEBUG"):
        return f"{type(exc).__name__}: {text.splitlines()[0][:200] if text else ''}"
    if "XNNPACK" in text or "prepare" in text:
        return ("TensorFlow's quantization debugger could not run this model: its interpreter's XNNPACK delegate "
                "refused it (the variant itself runs; set EDGERNN_DEBUG=1 for the debugger's message)")
    return ("TensorFlow's quantization debugger could not run this model (set EDGERNN_DEBUG=1 for its message)")
