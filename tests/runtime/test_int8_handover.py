"""The int8 state hand-over run in the graph on LiteRT (``tflite_handover``): the rewritten model steps exactly as
the model as exported followed by the predictor's table, on every kernel set and batch; the predictor uses it."""

from __future__ import annotations

import numpy as np
import pytest

from edgernn.runtime import StreamingPredictor
from edgernn.runtime.backends import installed
from edgernn.runtime.backends.io_order import tensor_order
from edgernn.runtime.bundle import Bundle
from edgernn.runtime.quantization import requantizer

pytestmark = pytest.mark.skipif("litert" not in installed(), reason="ai-edge-litert is not installed")


def _int8_with_a_table(bundles) -> list:
    """Every bundle whose tflite-int8 variant hands a state over through a table (at least one must)."""
    found = []
    for name, path in sorted(bundles.every().items()):
        bundle = Bundle.open(path)
        entry = bundle.manifest.variants.get("tflite-int8")
        if entry is not None and any(requantizer(entry.output(o), entry.input(i)) for i, o in entry.state_pairs):
            found.append((name, bundle, entry))
    assert found, "no bundle here needs an int8 state hand-over: the rewrite goes untested"
    return found


@pytest.mark.parametrize("kernels", ["xnnpack", "reference"])
@pytest.mark.parametrize("batch", [1, 3])
def test_the_rewritten_model_steps_exactly_as_the_exported_one_and_the_table(bundles, kernels, batch):
    from edgernn.runtime.backends.litert import LiteRTBackend

    for name, bundle, entry in _int8_with_a_table(bundles):
        content = bundle.read("tflite-int8")
        plain = LiteRTBackend(content, entry, batch, kernels=kernels)
        fused = LiteRTBackend(content, entry, batch, kernels=kernels, hand_over=True)
        assert fused.states_handed_over and not plain.states_handed_over, name
        in_order, out_order = tensor_order(entry)
        pairs = dict(entry.state_pairs)  # input -> output
        tables = {i: requantizer(entry.output(o), entry.input(i)) for i, o in entry.state_pairs}
        rng = np.random.default_rng(7)
        states = {i: np.zeros([batch, *entry.input(i).shape[1:]], np.int8) for i in pairs}
        for step in range(300):
            inputs = {n: states[n] if n in pairs else
                      rng.integers(-128, 128, [batch, *entry.input(n).shape[1:]]).astype(np.int8) for n in in_order}
            got = dict(zip(out_order, fused.run([inputs[n] for n in in_order])))
            want = dict(zip(out_order, plain.run([inputs[n] for n in in_order])))
            for i, o in pairs.items():
                handed = want[o] if tables[i] is None else tables[i](want[o])
                assert np.array_equal(got[o], handed), f"{name} step {step}: state {o} ({kernels}, batch {batch})"
                states[i] = got[o]
            for o in set(out_order) - set(pairs.values()):
                assert np.array_equal(got[o], want[o]), f"{name} step {step}: output {o}"


def test_the_predictor_on_litert_hands_over_in_the_graph_and_predicts_as_before(bundles, sine_values):
    """On LiteRT the predictor's states are handed over in the graph, and its predictions are, step for step, those
    of the same predictor handing them over with its table on the model as exported; the file is not touched."""
    from edgernn.runtime.backends.litert import LiteRTBackend

    for name, bundle, entry in _int8_with_a_table(bundles):
        before = bundle.read("tflite-int8")
        predictor = StreamingPredictor.load(bundle.path, "tflite-int8", backend="litert")
        assert all(handover is None for handover in predictor._handovers), name
        LiteRTBackend.can_hand_over = False  # the table path, as before the rewrite
        try:
            plain = StreamingPredictor.load(bundle.path, "tflite-int8", backend="litert")
        finally:
            LiteRTBackend.can_hand_over = True
        assert any(handover is not None for handover in plain._handovers), name
        values = [float(v) for v in sine_values[:300]]
        assert [predictor.step(v) for v in values] == [plain.step(v) for v in values], name
        assert bundle.read("tflite-int8") == before
