"""tflite-int8 against tflite-float32 on LiteRT, one stream through ``StreamingPredictor`` (issue 31: "int8
without a tax"), with the int8 state handed over in the graph (``tflite_handover``, the default) and, as the
baseline in the same run, by the predictor's table.

    python benchmarks/int8_step.py [--steps 20000] [--rounds 5] [--json benchmarks/int8_step_results.json]

The bundles are benchmarks/c_step.py's (50 units, SimpleRNN, GRU and LSTM on the built-in sine). Each pair is
interleaved call by call (``interleaved_medians``); each ratio is the median over ``--rounds`` rounds. The
predictions of the two int8 predictors are compared on the way (the rewrite must not move a code).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from c_step import trained_bundles  # noqa: E402
from edgernn.bench.measure import _inputs, interleaved_medians  # noqa: E402
from edgernn.runtime import StreamingPredictor  # noqa: E402


def _with_table(bundle: Path) -> StreamingPredictor:
    """tflite-int8 on LiteRT with the hand-over left to the predictor's table (as before ``tflite_handover``)."""
    from edgernn.runtime.backends.litert import LiteRTBackend

    LiteRTBackend.can_hand_over = False
    try:
        return StreamingPredictor.load(bundle, "tflite-int8", backend="litert")
    finally:
        LiteRTBackend.can_hand_over = True


def measure(cell: str, bundle: Path, steps: int, rounds: int) -> dict:
    values = _inputs(steps)
    float32 = StreamingPredictor.load(bundle, "tflite-float32", backend="litert")
    int8 = StreamingPredictor.load(bundle, "tflite-int8", backend="litert")
    table = _with_table(bundle)
    handed_in_graph = all(h is None for h in int8._handovers) and not all(h is None for h in table._handovers)
    same = bool(np.array_equal(int8.run(values[:2000]), table.run(values[:2000])))
    ratios, ratios_table, times = [], [], []
    for _ in range(rounds):
        f, i = interleaved_medians(float32.step, int8.step, values)
        f2, t = interleaved_medians(float32.step, table.step, values)
        ratios.append(i / f)
        ratios_table.append(t / f2)
        times.append((f, i, t))
    f, i, t = (float(np.median(column)) for column in zip(*times))
    return {"cell": cell, "units": 50, "float32_us": f, "int8_us": i, "int8_table_us": t,
            "int8_vs_float32": float(np.median(ratios)), "int8_table_vs_float32": float(np.median(ratios_table)),
            "handed_over_in_graph": handed_in_graph, "same_predictions": same}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for cell, bundle in trained_bundles(Path(tmp)):
            rows.append(measure(cell, bundle, args.steps, args.rounds))
            print(rows[-1], file=sys.stderr, flush=True)
    print("| cell | float32 µs | int8 µs | int8 / float32 | int8 with the table / float32 | hand-over in the graph "
          "| same predictions |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['cell']} | {r['float32_us']:.2f} | {r['int8_us']:.2f} | {r['int8_vs_float32']:.2f}x | "
              f"{r['int8_table_vs_float32']:.2f}x | {r['handed_over_in_graph']} | {r['same_predictions']} |")
    if args.json:
        args.json.write_text(json.dumps({"steps": args.steps, "rounds": args.rounds, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
