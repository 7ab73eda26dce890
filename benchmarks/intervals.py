"""How far to trust the device's intervals and anomaly flags: coverage, drift, injected anomalies, cost.

    python benchmarks/intervals.py BUNDLE... [--clean sine] [--level 0.99] [--clean-anomalies] [--json out.json]

Runtime only (numpy and an interpreter). For each bundle and variant:
- coverage of each calibrated level on the held-out test split stored in the bundle (never seen by training
  nor by the interval calibration), and the interval's width;
- on clean data (the test split, after the values that warm the state up; ``--clean sine``: 20,000 new values
  of the built-in sine's process, another seed):
- a level shift (+30 % of the range) in its second half: coverage of the fixed (``scaled=False``), the scaled
  (the default) and the adaptive 0.9 interval over the whole run;
- injected anomalies, each kind on its own copy: spikes (+-25 to 50 % of the range),
  level shifts (+-30 %, 200 steps), a stuck sensor (the value frozen for 100 steps) and a slow drift (0 to 50 %
  of the range over 500 steps). Recall: events flagged within their window (a spike: its step and the next
  two; the others: while they last); precision: flags inside an event's window over all flags; and the false
  flag rate on the clean replay;
- the cost of a monitored step (interval and score) against a plain step, interleaved, best of 5.
``--clean-anomalies``: the flags (false flags and injected anomalies) come from monitors that feed a flagged
reading to the model clipped to its interval (``monitor(level, clean=True)``, what ``edgernn stream`` does).
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
from edgernn.runtime.bundle import Bundle  # noqa: E402

KINDS = ("spike", "level shift", "stuck", "drift")
WARM_UP = 256  # --clean sine: values that only warm the state up


def inject(clean: np.ndarray, kind: str, rng, first: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """A copy of ``clean`` with anomalies of one kind after index ``first``, and each one's window [start, stop)."""
    values, spread = clean.copy(), float(np.ptp(clean[first:]))
    length = {"spike": 3, "level shift": 200, "stuck": 100, "drift": 500}[kind]
    length = min(length, max(3, (clean.size - first) // 4))  # a short test split still gets a few
    gap = 50 if kind == "spike" else 250
    starts = np.arange(first + 20, clean.size - length - 20, length + gap)
    windows = []
    for start in starts:
        sign = rng.choice([-1.0, 1.0])
        if kind == "spike":
            values[start] += sign * rng.uniform(0.25, 0.5) * spread
        elif kind == "level shift":
            values[start:start + length] += sign * 0.3 * spread
        elif kind == "stuck":
            values[start:start + length] = values[start - 1]
        else:
            values[start:start + length] += sign * np.linspace(0, 0.5 * spread, length)
        windows.append((int(start), int(start + length)))
    return values, windows


def detection(anomaly: np.ndarray, windows) -> dict:
    inside = np.zeros(anomaly.size, dtype=bool)
    for start, stop in windows:
        inside[start:stop] = True
    found = sum(bool(anomaly[start:stop].any()) for start, stop in windows)
    flags = int(anomaly.sum())
    return {"events": len(windows), "recall": found / len(windows) if windows else float("nan"),
            "precision": float((anomaly & inside).sum() / flags) if flags else float("nan")}


def step_cost(bundle, variant: str, values: np.ndarray, level: float) -> dict:
    plain = StreamingPredictor.load(bundle, variant)
    monitor = StreamingPredictor.load(bundle, variant).monitor(level)
    best = {"plain": np.inf, "monitored": np.inf}
    for _ in range(5):
        for name, step in (("plain", plain.step), ("monitored", monitor.step)):
            started = time.perf_counter()
            for value in values:
                step(value)
            best[name] = min(best[name], (time.perf_counter() - started) / values.size)
    return {"plain_us": 1e6 * best["plain"], "monitored_us": 1e6 * best["monitored"],
            "ratio": best["monitored"] / best["plain"], "backend": plain.backend_name}


def clean_series(stored: np.ndarray, test, source: str | None) -> tuple[np.ndarray, int]:
    """Clean data and the index of its first scored value: the stored test split's first pass (after its
    warm-up context), or new values of the built-in sine's process."""
    if source == "sine":
        from edgernn.data.series import sine_series

        return sine_series(points=20_000 + WARM_UP, seed=7), WARM_UP
    return stored[: test[1] + 1], test[0] + 1


def measure(bundle: Path, level: float, clean_source: str | None = None, cleaned: bool = False) -> dict:
    opened = Bundle.open(bundle)
    stored, _ = opened.reference_data()
    stored = stored.astype(np.float64)
    test = opened.manifest.files["reference_data"].test
    clean, first = clean_series(stored, test, clean_source)
    results = {}
    for variant, entry in opened.manifest.variants.items():
        if entry.intervals is None:
            continue
        row = {"coverage": {}, "width": {}}
        on_test = slice(test[0] + 1, test[1] + 1)  # the values whose predictions were made on the test split
        for at, half in zip(entry.intervals.levels, entry.intervals.half_widths):
            if half is not None:  # what the device does: the monitor's own flags and widths (scaled ones move)
                checked = StreamingPredictor.load(bundle, variant).monitor(at).run(stored[: test[1] + 1])
                row["coverage"][f"{at:g}"] = float(1 - checked["anomaly"][on_test].mean())
                row["width"][f"{at:g}"] = float(np.nanmean((checked["high"] - checked["low"])[test[0]: test[1]]))
        adaptive = StreamingPredictor.load(bundle, variant).monitor(0.9, adaptive=True).run(stored[: test[1] + 1])
        row["adaptive_coverage_0.9"] = float(1 - adaptive["anomaly"][on_test].mean())
        shifted = clean.copy()
        shifted[(first + clean.size) // 2:] += 0.3 * float(np.ptp(clean))
        row["level_shift_coverage"] = {
            name: float(1 - StreamingPredictor.load(bundle, variant).monitor(0.9, adaptive=adaptive, scaled=scaled)
                        .run(shifted)["anomaly"][first:].mean())
            for name, adaptive, scaled in (("fixed", False, False), ("scaled", False, True), ("adaptive", True, True))}
        flags = StreamingPredictor.load(bundle, variant).monitor(level, clean=cleaned).run(clean)["anomaly"]
        row["clean_values"] = int(clean.size - first)
        row["false_flag_rate"] = float(flags[first:].mean())
        rng = np.random.default_rng(0)
        row["anomalies"] = {}
        for kind in KINDS:
            values, windows = inject(clean, kind, rng, first)
            flagged = StreamingPredictor.load(bundle, variant).monitor(level, clean=cleaned).run(values)["anomaly"]
            row["anomalies"][kind] = detection(flagged, windows)
        row["cost"] = step_cost(bundle, variant, clean[:2000], 0.9)
        results[variant] = row
    return results


def table(name: str, results: dict, level: float) -> str:
    lines = [f"### {name}", "",
             "| variant | 0.8 | 0.9 | 0.95 | 0.99 | 0.9 adaptive | 0.9 mean width | level shift: fixed / scaled / "
             "adaptive | "
             f"false flags ({level:g}) | spikes: recall / precision (events) | level shifts | stuck | drift | "
             "monitored step / plain |", "|" + "---|" * 14]
    for variant, row in results.items():
        cov = row["coverage"]
        shift = row["level_shift_coverage"]
        kinds = row["anomalies"]
        lines.append(
            f"| {variant} | " + " | ".join(f"{100 * cov[k]:.1f}%" if k in cov else "-"
                                           for k in ("0.8", "0.9", "0.95", "0.99"))
            + f" | {100 * row['adaptive_coverage_0.9']:.1f}% | {row['width'].get('0.9', float('nan')):.3g} | "
            f"{100 * shift['fixed']:.1f}% / {100 * shift['scaled']:.1f}% / "
            f"{100 * shift['adaptive']:.1f}% | {100 * row['false_flag_rate']:.2f}% of {row['clean_values']} | "
            f"{100 * kinds['spike']['recall']:.0f}% / {100 * kinds['spike']['precision']:.0f}% "
            f"({kinds['spike']['events']}) | "
            + " | ".join(f"{100 * kinds[k]['recall']:.0f}% / {100 * kinds[k]['precision']:.0f}% ({kinds[k]['events']})"
                         for k in KINDS[1:])
            + f" | {row['cost']['ratio']:.2f}x ({row['cost']['plain_us']:.1f} -> "
            f"{row['cost']['monitored_us']:.1f} us, {row['cost']['backend']}) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--level", type=float, default=0.99, help="the anomaly flags' level")
    parser.add_argument("--clean", choices=["sine"], default=None,
                        help="clean data: new values of the built-in sine (default: the stored test split)")
    parser.add_argument("--clean-anomalies", action="store_true",
                        help="flags from monitors that feed a flagged reading clipped to its interval")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    everything = {}
    for bundle in args.bundles:
        everything[str(bundle)] = measure(bundle, args.level, args.clean, args.clean_anomalies)
        print(table(bundle.name, everything[str(bundle)], args.level), flush=True)
        print()
    if args.json:
        args.json.write_text(json.dumps(everything, indent=1))


if __name__ == "__main__":
    main()
