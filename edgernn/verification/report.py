"""``edgernn verify --report DIR``: report.json, report.md and three PNG plots a person can read.

Plots (matplotlib, Agg backend, written only here; without matplotlib the JSON and Markdown are still written): float vs each variant over a stretch of the series, the
error along the whole sequence (drift shows as a rising curve), and each variant's error histogram.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from edgernn.runtime import safe_json
from edgernn.runtime.atomic import fsync_directory, fsync_tree, remove_stale, replace_directory, temp_dir_beside

STRETCH = 300  # steps shown in the predictions plot
SMOOTHING = 200  # steps in the rolling mean of the drift plot


def write_report(result, directory) -> tuple[list[Path], str | None]:
    """Write the report files into ``directory`` (created if needed); returns their paths, and a note when
    the plots could not be drawn (no matplotlib on a device: report.json and report.md are written anyway).

    The files are written into a temporary sibling directory first: a new ``directory`` is renamed into place
    with all of them; into an existing one (its other files kept) they are renamed in, ``report.md``, which
    links the rest, last. A killed verify leaves no partial report, only a temporary sibling that the next
    report into the same directory removes."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(directory)
    staging = temp_dir_beside(directory)
    try:
        names, note = _write_files(result, staging)
        fsync_tree(staging)
        if not directory.exists():
            replace_directory(staging, directory, replace=False)
        else:
            for name in names:  # report.md last
                os.replace(staging / name, directory / name)
            fsync_directory(directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [directory / name for name in names], note


def _write_files(result, directory: Path) -> tuple[list[str], str | None]:
    """The report's files written into ``directory``: their names, report.md last, and the note."""
    (directory / "report.json").write_text(safe_json.dumps(result.to_dict(), non_finite="null", indent=2) + "\n")
    try:
        import matplotlib
    except ImportError:
        (directory / "report.md").write_text(_markdown(result, plots=False))
        return ["report.json", "report.md"], ("the plots need matplotlib, which is not installed: "
                                              "pip install matplotlib (or edgernn[train])")
    matplotlib.use("Agg")
    arrays = result.arrays
    variants = [row.variant for row in result.variants if row.variant in arrays]
    bands = {row.variant: row.interval_width["0.9"] for row in result.variants
             if "0.9" in row.interval_width and row.variant in arrays}
    if getattr(result, "columns", None) is not None:  # multivariate: one plot per target (its next value)
        per_target = _per_target(result.columns, arrays, variants)
        plots = [_predictions(a, variants, directory, None, f"predictions-{_file_part(t)}.png", t).name
                 for t, a in per_target.items()]
        first = next(iter(per_target.values()))
        plots += [plot(first, variants, directory).name for plot in (_drift, _histograms)]
    else:
        plots = [_predictions(arrays, variants, directory, bands).name,
                 *(plot(arrays, variants, directory).name for plot in (_drift, _histograms))]
    (directory / "report.md").write_text(_markdown(result, plots=plots))
    return ["report.json", *plots, "report.md"], None


def _per_target(columns, arrays: dict, variants: list[str]) -> dict[str, dict]:
    """For each target: its raw values and each model's next-value prediction of it, as a univariate run's
    arrays (what the plots draw)."""
    found = {}
    for k, out in enumerate(columns.outputs):
        if out.step != 1 or out.source is None:
            continue
        found[out.target] = {"values": arrays["values"][:, out.source], "reference": arrays["reference"][:, k],
                             **{name: arrays[name][:, k] for name in variants}}
    if not found:  # no output predicts an input column's next value: the first output against the float model
        found[columns.outputs[0].target] = {"values": arrays["reference"][:, 0], "reference": arrays["reference"][:, 0],
                                            **{name: arrays[name][:, 0] for name in variants}}
    return found


def _file_part(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:60]


def _predictions(arrays: dict, variants: list[str], directory: Path, bands: dict | None = None,
                 file: str = "predictions.png", target: str | None = None) -> Path:
    """The true next value, the float model and each variant over a stretch in the middle of the run, with the
    first variant's 0.9 interval as a band (``bands``: variant -> interval width)."""
    import matplotlib.pyplot as plt

    values, reference = arrays["values"], arrays["reference"]
    start = max(0, values.size // 2 - STRETCH // 2)
    window = slice(start, start + STRETCH)
    steps = np.arange(values.size)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(steps[window][1:], values[window][1:], color="0.75", lw=3, label="true next value")
    ax.plot(steps[window], reference[window], color="black", lw=1.5, label="float Keras model")
    banded = next((name for name in variants if name in (bands or {})), None)
    if banded is not None:
        half = bands[banded] / 2
        ax.fill_between(steps[window], arrays[banded][window] - half, arrays[banded][window] + half,
                        color="tab:blue", alpha=0.15, lw=0, label=f"{banded} 0.9 interval")
    for name in variants:
        ax.plot(steps[window], arrays[name][window], lw=1, ls="--", label=name)
    ax.set(title=f"{target + ': ' if target else ''}Predictions over steps {start}-{start + STRETCH} (state carried "
                 "from step 0)", xlabel="step", ylabel="prediction (raw units)")
    ax.legend(fontsize=8, ncol=3, loc="upper right")
    return _save(fig, directory / file)


def _drift(arrays: dict, variants: list[str], directory: Path) -> Path:
    """Each variant's error along the whole run, smoothed: a rising curve is drift."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4.5))
    kernel = np.ones(SMOOTHING) / SMOOTHING
    for name in variants:
        error = np.nan_to_num(np.abs(arrays[name] - arrays["reference"]))
        smooth = np.convolve(error, kernel, mode="valid")
        ax.plot(np.arange(smooth.size) + SMOOTHING // 2, np.maximum(smooth, 1e-12), lw=1, label=name)
    ax.set_yscale("log")
    ax.set(title=f"|variant - float| along the sequence ({SMOOTHING}-step rolling mean): flat = no drift",
           xlabel="step", ylabel="absolute error (raw units, log)")
    ax.legend(fontsize=8, ncol=3)
    return _save(fig, directory / "drift.png")


def _histograms(arrays: dict, variants: list[str], directory: Path) -> Path:
    """One histogram of (variant - float) per variant."""
    import matplotlib.pyplot as plt

    cols = min(4, max(1, len(variants)))
    rows = int(np.ceil(len(variants) / cols)) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, variants):
        error = arrays[name] - arrays["reference"]
        ax.hist(error[np.isfinite(error)], bins=60, color="tab:blue")
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.locator_params(axis="x", nbins=4)
        ax.set_xlabel("variant - float", fontsize=8)
    for ax in list(axes.flat)[len(variants):]:
        ax.axis("off")
    fig.suptitle("Error histograms")
    return _save(fig, directory / "histograms.png")


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _markdown(result, plots) -> str:
    if result.outputs:
        task = "Float model task RMSE (persistence) per output: " + ", ".join(
            f"{name} {f['float_rmse']:.4g} ({f['persistence_rmse']:.4g})" for name, f in result.outputs.items()) + "."
    else:
        task = f"Float model task RMSE {result.float_task_rmse:.4g}; persistence {result.persistence_rmse:.4g}."
    lines = [
        f"# edgernn verify: {result.bundle}",
        "",
        f"{result.steps} steps of {result.data}, state carried. {task}",
        "",
        "| variant | backend | size | NRMSE vs float | max error | drift | task RMSE | 0.9 interval: coverage, "
        "width | result |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result.variants:
        m = row.vs_float
        figures = (f"{m['nrmse_pct']:.4f} % | {m['max_abs']:.3g} | {row.drift:.2f} | {row.task_rmse:.4g}"
                   if m else "- | - | - | -")
        interval = (f"{100 * row.coverage['0.9']:.1f} % of {row.coverage_points}, {row.interval_width['0.9']:.3g}"
                    if "0.9" in row.coverage else "-")
        verdict = "PASS" if row.passed else ("SKIP: " if row.skipped else "INCOMPATIBLE: " if row.incompatible
                                             else "FAIL: ") + "; ".join(row.reasons)
        lines.append(f"| {row.variant} | {row.backend} | {row.size_bytes / 1024:.1f} KB | {figures} | {interval} | "
                     f"{verdict} |")
    lines += _comparison(result)
    if plots:
        for name in plots:
            lines += ["", f"![{name.rsplit('.', 1)[0]}]({name})"]
        lines.append("")
    else:
        lines += ["", "(No plots: matplotlib is not installed here.)", ""]
    return "\n".join(lines)


def _comparison(result) -> list[str]:
    """Train's comparison with its peers (when the model's metadata records it), one table per output."""
    lines = []
    for output, rows in (getattr(result, "comparison", None) or {}).items():
        lines += ["", f"Compared at training on the same split ({output}; RMSE in raw units; deploy the lowest "
                  "validation RMSE):", "", "| forecaster | validation RMSE | test RMSE |", "|---|---|---|"]
        lines += [f"| {r['name']} | {_figure(r['val_rmse'])} | {_figure(r['test_rmse'])} |" for r in rows]
    return lines


def _figure(value) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.4g}"
