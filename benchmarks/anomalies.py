"""Do spikes in the held-out data inflate the anomaly level? Recall and false flags at the default level, with the
intervals calibrated as before (plain split conformal), with outliers left out first (fixed half-widths), and as
the device runs them (outliers left out, half-widths scaled by the recent residuals' size), and as ``edgernn
stream --anomalies`` runs them (the same, with each flagged reading fed to the model clipped to its interval),
issue 30.

    python benchmarks/anomalies.py [--series co2 elnino] [--json benchmarks/anomalies_results.json]

No package here ships a labelled anomaly series offline, so the labels are injected, and said so: public series
(weekly Mauna Loa CO2, ``benchmarks/data/co2_weekly.csv``; monthly Nino 1+2 SST, ``statsmodels.datasets.elnino``)
with 3 spikes in the validation split (which export calibrates the intervals on) and 7 in the test split, as in
the issue's labelled benchmark; each spike 8 to 16 times the standard deviation of the training split's first
differences, sign at random (seed 0). A default model (``edgernn.train``, seed 0) is trained on the spiked series
and exported (float32 and int8); each variant's validation residuals are computed as export does, and the
half-width at each level is set both ways. Recall: test spikes flagged at their own step; false flags: flags
among the clean test values (a spike and the two predictions made after seeing it are not clean). Control: the same
on the series without spikes (nothing should be left out, nothing should change).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgernn.data.series import chronological_split, load_series  # noqa: E402
from edgernn.runtime import StreamingPredictor  # noqa: E402
from edgernn.runtime.intervals import Monitor, conformal_half_widths, without_outliers  # noqa: E402
from edgernn.stream.lines import ANOMALY_LEVEL  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
LEVELS = (0.95, ANOMALY_LEVEL)
VARIANTS = ("tflite-float32", "tflite-int8")


def _elnino() -> np.ndarray:
    import statsmodels.api as sm

    return sm.datasets.elnino.load_pandas().data.iloc[:, 1:].to_numpy(dtype=np.float64).reshape(-1)


SERIES = {
    "co2": lambda: load_series(str(DATA / "co2_weekly.csv"), column="co2", time_column="date").values,
    "elnino": _elnino,
}


def spiked(values: np.ndarray, rng, counts=(3, 7)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A copy with ``counts`` spikes in the validation and the test split; (values, validation and test spike
    positions), at least 10 steps apart and 5 from each split's edges."""
    split = chronological_split(values.size)
    size = float(np.std(np.diff(values[: split.train_end])))
    out = values.copy()
    positions = []
    for first, stop, count in zip((split.train_end, split.val_end), (split.val_end, split.length), counts):
        slots = np.arange(first + 5, stop - 5, 10)
        chosen = np.sort(rng.choice(slots, count, replace=False))
        out[chosen] += rng.choice([-1.0, 1.0], count) * rng.uniform(8, 16, count) * size
        positions.append(chosen)
    return out, positions[0], positions[1]


def validation_residuals(predictor, values: np.ndarray, split, context: int) -> np.ndarray:
    """What export calibrates on: the variant run over the validation split after ``context`` warm-up values."""
    start = max(0, split.train_end - context)
    part = values[start: split.val_end]
    predictions = predictor.run(part)
    residuals = (part[1:] - predictions[:-1])[max(0, split.train_end - start - 1):]
    return residuals[np.isfinite(residuals)]


def measure(bundle: Path, variant: str, values, split, context, test_spikes) -> dict:
    predictor = StreamingPredictor.load(bundle, variant)
    residuals = validation_residuals(predictor, values, split, context)
    clean = np.zeros(values.size, dtype=bool)
    clean[split.val_end:] = True
    for spike in test_spikes:
        clean[spike: spike + 3] = False
    rows = {}
    for how, kept in (("before", residuals), ("after", without_outliers(residuals)), ("scaled", None),
                      ("cleaned", None)):
        for level in LEVELS:
            if kept is None:  # what the device runs: export's half-widths, scaled by the recent residuals
                monitor = StreamingPredictor.load(bundle, variant).monitor(level, clean=how == "cleaned")
                left_out = None
            else:  # fixed half-widths from the validation residuals, with or without the outliers
                width = conformal_half_widths(kept, [level])[0]
                monitor = Monitor(StreamingPredictor.load(bundle, variant), level, width)
                left_out = int(residuals.size - kept.size)
            flags = monitor.run(values)["anomaly"]
            recall = float(flags[test_spikes].mean()) if test_spikes.size else None
            rows[f"{how} {level:g}"] = {"half_width": monitor.calibrated, "recall": recall,
                                        "false_flags": float(flags[clean].mean()), "left_out": left_out}
    return rows


def run_series(name: str, counts=(3, 7)) -> dict:
    """Train, export and measure on the series with ``counts`` spikes (``(0, 0)``: the clean series, a control)."""
    import edgernn

    started = time.perf_counter()
    values, val_spikes, test_spikes = spiked(SERIES[name](), np.random.default_rng(0), counts)
    split = chronological_split(values.size)
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "s.npy", values)
        model = edgernn.train(str(Path(tmp) / "s.npy"), Path(tmp) / "m.keras", seed=0, quiet=True)
        bundle = edgernn.export(model.model_path, Path(tmp) / "b", variants=",".join(VARIANTS), quiet=True,
                                verify=False).bundle
        context = model.metadata["data"]["val_context"]
        results = {v: measure(bundle, v, values, split, context, test_spikes) for v in VARIANTS}
    return {"series": name if any(counts) else f"{name} (clean)", "points": int(values.size),
            "validation_spikes": val_spikes.tolist(),
            "test_spikes": test_spikes.tolist(),
            "variants": results, "seconds": round(time.perf_counter() - started, 1)}


def markdown(results: list[dict]) -> str:
    hows = ("before", "after", "scaled", "cleaned")
    lines = ["| series | variant | level | half-width before / after / scaled | "
             f"recall {' / '.join(hows)} | false flags {' / '.join(hows)} |", "|---|---|---|---|---|---|"]

    def cells(rows, field, form):
        return " / ".join("-" if r[field] is None else format(r[field], form) for r in rows)

    for case in results:
        for variant, by in case["variants"].items():
            for level in LEVELS:
                rows = [by[f"{how} {level:g}"] for how in hows]
                lines.append(f"| {case['series']} | {variant} | {level:g} | {cells(rows[:3], 'half_width', '.3g')} | "
                             f"{cells(rows, 'recall', '.0%')} | {cells(rows, 'false_flags', '.2%')} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", nargs="*", choices=list(SERIES), help="default: all")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    names = args.series or list(SERIES)
    results = [run_series(name) for name in names] + [run_series(name, (0, 0)) for name in names]
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps({"default_level": ANOMALY_LEVEL, "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
