"""The one-stream step on the c backend against the raw LiteRT floor, per cell and variant, 50 units (issue 31).

    python benchmarks/c_step.py [--steps 20000] [--json benchmarks/c_step_results.json] [--markdown benchmarks/c_step.md]

For SimpleRNN, GRU and LSTM (50 units, the default size; trained on the built-in sine for 2 epochs: the cost of
a step does not depend on how well it predicts), the tflite-float32 and tflite-int8 variants are stepped one
value at a time: by hand on LiteRT (set_tensor, invoke, get_tensor: the floor an interpreter allows, the int8
value quantized and the prediction dequantized in Python; ``edgernn.bench.measure``), through ``StreamingPredictor`` on
LiteRT, and through ``StreamingPredictor`` on the c backend (the fused one-stream C call; int8: the file's own
integer arithmetic). Each pair is interleaved call by call (``interleaved_medians``), so both see the same
machine; the ratios are what the issue judges. On the way, the c backend's predictions are compared with
LiteRT's (max difference) and, for int8, with LiteRT's reference kernels (the share of predictions equal).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgernn.bench.measure import _inputs, _raw_step, interleaved_medians  # noqa: E402
from edgernn.runtime import StreamingPredictor  # noqa: E402

CELLS = ("simple_rnn", "gru", "lstm")
VARIANTS = ("tflite-float32", "tflite-int8")


def _reference_kernels(bundle: Path, variant: str):
    """The variant on LiteRT's reference kernels (TFLite's plain C++ ones), as a predictor. The file as
    exported on both sides: the predictor built with its own int8 hand-over table (the in-graph hand-over off),
    since the swapped engine runs the file unrewritten."""
    from edgernn.runtime.backends.litert import BACKEND as Litert
    from edgernn.runtime.bundle import Bundle

    opened = Bundle.open(bundle)
    Litert.can_hand_over = False
    try:
        predictor = StreamingPredictor.load(bundle, variant, backend="litert")
    finally:
        Litert.can_hand_over = True
    engine = Litert(opened.read(variant), opened.variant(variant), 1, kernels="reference")
    predictor._run = engine.run  # the same predictor around the reference kernels
    predictor.reset()
    return predictor


def measure(bundle: Path, variant: str, steps: int) -> dict:
    values = _inputs(steps)
    litert = StreamingPredictor.load(bundle, variant, backend="litert")
    c = StreamingPredictor.load(bundle, variant, backend="c")
    check = values[:2000]
    ours = c.run(check)
    difference = float(np.max(np.abs(ours - litert.run(check))))
    agreement = float(np.mean(ours == _reference_kernels(bundle, variant).run(check)))
    c.reset()
    litert.reset()
    floor, c_us = interleaved_medians(_raw_step(bundle, variant), c.step, values)
    floor_again, litert_us = interleaved_medians(_raw_step(bundle, variant), litert.step, values)
    return {"variant": variant, "raw_floor_us": floor, "c_us": c_us, "c_vs_floor": c_us / floor,
            "raw_floor_us_with_litert": floor_again, "litert_us": litert_us,
            "litert_vs_floor": litert_us / floor_again, "max_abs_difference_c_litert": difference,
            "equal_to_reference_kernels": agreement}


def trained_bundles(tmp: Path):
    """``(cell, bundle)`` for each cell: 50 units, the built-in sine, 2 epochs, float32 and int8 exported."""
    import edgernn

    for cell in CELLS:
        trained = edgernn.train("sine", tmp / f"{cell}.keras", cell=cell, units=50, epochs=2, seed=0,
                                baseline="none", season="none", quiet=True)
        yield cell, edgernn.export(trained.model_path, tmp / cell, variants=",".join(VARIANTS), quiet=True,
                                   verify=False).bundle


def run(steps: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for cell, bundle in trained_bundles(Path(tmp)):
            for variant in VARIANTS:
                row = {"cell": cell, "units": 50, **measure(bundle, variant, steps),
                       **firmware(bundle, variant, Path(tmp) / f"{cell}-{variant}")}
                print(f"  {cell} {variant}: c {row['c_us']:.2f} us, raw LiteRT floor {row['raw_floor_us']:.2f} us "
                      f"({row['c_vs_floor']:.2f}x); StreamingPredictor on litert {row['litert_us']:.2f} us; "
                      f"firmware RAM {row['ram_bytes']} B vs TFLM arena {row['tflm_arena_bytes']} B", file=sys.stderr)
                rows.append(row)
    return rows


def firmware(bundle: Path, variant: str, out: Path) -> dict:
    """``edgernn c-step``'s files for the variant and their footprint (gcc -Os here), beside TFLM's arena."""
    from edgernn.firmware.step import write

    measured = write(bundle, variant, out, measure=True)[1]
    return {key: measured[key] for key in ("flash_bytes", "state_bytes", "stack_bytes", "ram_bytes",
                                           "tflm_arena_bytes")}


def _agreement(row: dict) -> str:
    """The share of predictions equal to the reference kernels' (int8: integer arithmetic, equal or not; a float
    step differs in the last bits by the order of its sums, so it is compared by its max difference instead)."""
    return f"{100 * row['equal_to_reference_kernels']:.2f} %" if row["variant"] == "tflite-int8" else "-"


def markdown(rows: list[dict], steps: int) -> str:
    lines = ["# The one-stream step on the c backend against the raw LiteRT floor", "",
             f"`python benchmarks/c_step.py --steps {steps}`: 50-unit models, one value at a time, medians of "
             "interleaved calls (µs); the int8 floor quantizes the value and dequantizes the prediction in Python, "
             "as a hand-written loop would. Firmware: `edgernn c-step`'s NAME.c compiled with gcc -Os on this "
             "machine (RAM: the state struct, static data and every stack frame), beside the tensor arena "
             "TensorFlow Lite Micro needs for the same variant.", "",
             "The litert column is timed interleaved with the floor again (that floor in brackets): its ratio is to "
             "that floor.", "",
             "| cell | variant | raw LiteRT floor | c backend | c / floor | litert (its floor) | litert / floor | "
             "max abs diff c vs litert | c = reference kernels | firmware flash B | firmware RAM B | TFLM arena B |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['cell']} | {r['variant']} | {r['raw_floor_us']:.2f} | {r['c_us']:.2f} | "
                     f"{r['c_vs_floor']:.2f}x | {r['litert_us']:.2f} ({r['raw_floor_us_with_litert']:.2f}) | "
                     f"{r['litert_vs_floor']:.2f}x | "
                     f"{r['max_abs_difference_c_litert']:.1e} | {_agreement(r)} | "
                     f"{r['flash_bytes']:,} | {r['ram_bytes']:,} | {r['tflm_arena_bytes'] or '-'} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    rows = run(args.steps)
    text = markdown(rows, args.steps)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"steps": args.steps, "rows": rows}, indent=1) + "\n")
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
