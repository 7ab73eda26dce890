"""How a verify result is shown (the table the CLI prints) and stored (``verify.json`` in the bundle)."""

from __future__ import annotations

from pathlib import Path

from edgernn.verification.gate import COVERAGE_LEVEL, COVERAGE_TOLERANCE, MIN_COVERAGE_POINTS
from edgernn.verification.results import VerifyResult


def format_table(result: VerifyResult) -> str:
    against = ("the float Keras model" if result.reference == "keras"
               else "the float model's outputs stored in the bundle at export")
    if result.outputs:  # multivariate: the float model's figures per output
        task = "float model task RMSE per output (persistence): " + ", ".join(
            f"{name} {f['float_rmse']:.4g} ({f['persistence_rmse']:.4g})" for name, f in result.outputs.items())
    else:
        task = (f"float model task RMSE {result.float_task_rmse:.4g}, persistence {result.persistence_rmse:.4g}"
                + _test_rmse(result))
    lines = [f"verify {result.bundle} against {against}: {result.steps} steps of {result.data}, state carried; "
             + task,
             f"{'variant':<16}{'backend':<16}{'size':>9}{'NRMSE %':>10}{'max err':>10}{'drift':>7}"
             f"{'task RMSE':>11}  result"]
    for row in result.variants:
        m = row.vs_float
        figures = (f" {m['nrmse_pct']:>9.4f} {m['max_abs']:>9.3g} {row.drift:>6.2f} {row.task_rmse:>10.4g}"
                   if m else f"{'-':>10}{'-':>10}{'-':>7}{'-':>11}")
        verdict = "PASS" if row.passed else ("SKIP: " if row.skipped else "INCOMPATIBLE: " if row.incompatible
                                             else "FAIL: ") + "; ".join(row.reasons)
        lines.append(f"{row.variant:<16}{row.backend:<16}{row.size_bytes / 1024:>7.1f}KB{figures}  {verdict}")
    seen = set()
    for row in result.variants:  # a variant run again (on tflm) is named with its backend
        lines += _notes(row, row.variant if row.variant not in seen else f"{row.variant} on {row.backend}")
        seen.add(row.variant)
    skipped = sum(r.skipped for r in result.variants)
    incompatible = sum(r.incompatible for r in result.variants)
    note = f" ({skipped} skipped: no interpreter for them here)" if skipped else ""
    note += f" ({incompatible} incompatible with the interpreter, as recorded at export)" if incompatible else ""
    if incompatible and result.named:
        note += ": you named it, so this is a failure"
    if result.not_verified:
        lines.append(f"NOT VERIFIED: {', '.join(result.not_verified)}: no interpreter here ran it (the manifest says "
                     "none can; a claim is not a run): not a pass; leave it out with --variants to verify the rest")
    lines.append(("all variants pass" if result.passed else "some variants FAIL the gate" if result.failed
                  else "not every variant was verified") + note)
    return "\n".join(lines)


def _test_rmse(result: VerifyResult) -> str:
    """The float model's RMSE on the held-out test split (first pass), beside train's figure for it."""
    if result.float_test_rmse is None:
        return ""
    text = f"; on the held-out test split {result.float_test_rmse:.4g}"
    if result.train_test_rmse is not None:
        text += (f" (train reported {result.train_test_rmse:.4g} with the state warmed on the whole series; here "
                 "it is warmed on the values just before the split)")
    return text


def _notes(row, label: str) -> list[str]:
    lines = []
    if row.note:
        lines.append(f"  {label}: {row.note}")
    if len(row.per_output) > 1:
        per = ", ".join(f"{name} {f['nrmse_pct']:.3g}% (drift {f['drift']:.2f}, task RMSE {f['task_rmse']:.4g})"
                        for name, f in row.per_output.items())
        lines.append(f"  {label}: per output (the row shows the worst NRMSE and drift, the first output's task "
                     f"RMSE): {per}")
    if row.coverage:
        levels = ", ".join(f"{level}: {100 * share:.1f}%" for level, share in row.coverage.items())
        width = row.interval_width.get(COVERAGE_LEVEL)
        levels += f" (the {COVERAGE_LEVEL} interval is {width:.3g} wide on average)" if width is not None else ""
        judged = "" if row.coverage_points >= MIN_COVERAGE_POINTS else (
            f"; too few to judge against +-{100 * COVERAGE_TOLERANCE:.0f} points (the gate needs "
            f"{MIN_COVERAGE_POINTS})")
        lines.append(f"  {label}: intervals cover, of {row.coverage_points} held-out test values, {levels}"
                     f"{judged}")
    if row.arena_bytes is not None:
        lines.append(f"  {label}: tensor arena {row.arena_bytes:,} bytes (RAM), model "
                     f"{row.size_bytes:,} bytes (flash)")
    if row.out_of_range_pct:
        lines.append(f"  {label}: input outside the calibrated range on {row.out_of_range_pct:.1f}% of "
                     f"steps, clipped by input quantization on {row.clipped_pct:.1f}%")
    if row.cross_backend:
        others = ", ".join(f"{b} {d:.1e}" for b, d in row.cross_backend.items())
        lines.append(f"  {label}: max difference from {row.backend}, share of range: {others}")
    for tensor in row.diagnosis:
        if tensor["op"] == "-":
            lines.append(f"  {label} diagnosis: {tensor['tensor']}")
            continue
        lines.append(f"  {label} diagnosis: {tensor['op']} {tensor['tensor']} carries "
                     f"{tensor['rmse_steps']:.2f} quantization steps of RMSE")
    return lines


def write_verify_json(result: VerifyResult, bundle) -> Path:
    """Store the gate's outcome in the bundle as ``verify.json`` (strict JSON; a new temporary file, then a rename:
    a symlink planted in the bundle is replaced, never written through)."""
    from edgernn.runtime.atomic import write_bytes_atomically
    from edgernn.runtime.safe_json import dumps

    path = Path(bundle) / "verify.json"
    write_bytes_atomically(path, (dumps(result.to_dict(), non_finite="null", indent=2) + "\n").encode())
    return path
