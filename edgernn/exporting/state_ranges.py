"""How a full-integer variant calibrates its state inputs: the real states, or the activation's full range.

Calibrated on real states, a state input gets its own scale (e.g. 0.0068 for a 50-unit SimpleRNN), while the
state output of a tanh cell is fixed at 1/128, so every step requantizes the state on hand-over. Calibrating
the bounded states (``CellSpec.bounded_states``: ``h`` of a tanh or sigmoid cell) over their activation's whole
int8 range makes the two identical (a lossless hand-over) at the cost of coarser input resolution and wider
intermediate ranges. Which wins depends on the model, so export builds both and keeps the one with the smaller
error against the float model over a long stream with the state carried. Unbounded states (an LSTM's ``c``, any
state of a relu or linear cell) always keep their real range.
"""

from __future__ import annotations

import numpy as np

from edgernn.runtime.cell_table import CELLS
from edgernn.runtime.cells import NumpyStepModel
from edgernn.runtime.manifest import ModelInfo, VariantEntry
from edgernn.runtime.quantization import dequantize, quantize, requantize

EVALUATION_STEPS = 2000


def int8_range(low: float, high: float) -> tuple[float, float]:
    """The ends of an activation's range as int8 represents them: the top is one step short (tanh's
    ``[-1, 1]`` -> ``[-1, 127/128]``, exactly int8 with scale 1/128 and zero point 0)."""
    return low, high - (high - low) / 256.0


def full_range_samples(samples: list[dict], info: ModelInfo) -> list[dict]:
    """The real samples plus two whose bounded states sit at the ends of their activation's range."""
    extra = []
    for end in (0, 1):
        sample = {k: v.copy() for k, v in samples[len(samples) // 2].items()}
        for name, layer, kind in info.state_layers():
            bounds = CELLS[layer.cell].bounded_states(layer).get(kind)
            if bounds is not None:
                sample[name] = np.full((1, layer.units), int8_range(*bounds)[end], np.float32)
        extra.append(sample)
    return samples + extra


def stream_nrmse(backend, entry: VariantEntry, info: ModelInfo, weights: dict, z: np.ndarray) -> float:
    """NRMSE (% of range) of the integer step model vs the float one over ``z``, state carried throughout."""
    model = NumpyStepModel(info.layers, weights)
    float_states = [np.zeros((1, u), np.float32) for _, u in info.state_inputs()]
    pairs = [(entry.input(i), entry.output(o)) for i, o in entry.state_pairs]  # backends' positional order
    states = [quantize(np.zeros(spec.shape), spec) for spec, _ in pairs]
    x_spec, y_spec = entry.input("x"), entry.output("y")
    got, want = [], []
    for value in z:
        x = np.asarray(value, np.float32).reshape(1, -1)  # [1, F]
        y, float_states = model.step(x, float_states)
        out = backend.run([quantize(x, x_spec), *states])
        states = [requantize(o, out_spec, in_spec) for o, (in_spec, out_spec) in zip(out[1:], pairs)]
        got.append(dequantize(out[0], y_spec)[0])
        want.append(y[0].astype(np.float64))
    got, want = np.array(got), np.array(want)  # [steps, outputs]
    spans = np.where(np.ptp(want, axis=0) > 0, np.ptp(want, axis=0), 1.0)
    return float(np.max(100 * np.sqrt(np.mean((got - want) ** 2, axis=0)) / spans))  # the worst output


def evaluation_inputs(z: np.ndarray) -> np.ndarray:
    """The calibration inputs (``[n]`` or rows ``[n, F]``) repeated to ``EVALUATION_STEPS``: long enough for
    state errors to show."""
    return np.resize(z, (EVALUATION_STEPS, *z.shape[1:])).astype(np.float32)
