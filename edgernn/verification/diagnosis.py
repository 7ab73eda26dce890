"""Where a full-integer variant's error comes from: TensorFlow's QuantizationDebugger, tensor by tensor.

Rebuilds the step model from the bundle's reference ``.keras`` (hash-checked bytes, ``safe_mode=True``), re-runs
int8 calibration on the bundle's calibration sample (hash-checked, checked as an array), and compares every quantized tensor with its float twin on the same
(x, state) samples. The figure per tensor is its RMSE in quantization steps (RMSE / scale): a tensor far
above 0.3 steps is where the precision goes. Host only (needs TensorFlow).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgernn.runtime.bundle import Bundle
from edgernn.runtime.backends import make_interpreter
from edgernn.runtime.manifest import SIGNATURE
from edgernn.runtime.variants import variant
from edgernn.runtime.quiet import silenced_stderr

SAMPLES = 300


@dataclass
class TensorError:
    op: str
    tensor: str
    rmse: float
    scale: float

    @property
    def steps(self) -> float:
        """RMSE in quantization steps."""
        return self.rmse / self.scale if self.scale else float("inf")


def diagnose(bundle, variant_name: str) -> list[TensorError]:
    """Per-tensor quantization error of a diagnosable variant (``VariantSpec.diagnosable``), worst first."""
    from edgernn.exporting import tflite
    from edgernn.exporting.inspect import inspect_model
    from edgernn.exporting.step_model import device_model_and_samples, write_saved_model
    from edgernn.training.reference import reference_model
    from edgernn.training.tf_import import import_tensorflow

    tf = import_tensorflow()
    bundle = Bundle.open(bundle)
    manifest = bundle.manifest
    spec = variant(variant_name)
    model, _ = reference_model(bundle)
    inspected = inspect_model(model, lag=manifest.preprocessing.lag)
    z = bundle.calibration_inputs()[:SAMPLES]
    device_model, samples = device_model_and_samples(inspected, z)
    with tempfile.TemporaryDirectory() as scratch, silenced_stderr():
        saved = write_saved_model(device_model, Path(scratch) / "saved_model")
        interpreter = make_interpreter(tflite.convert(saved, variant("tflite-float32")), "litert")
        order = [d["name"].split(f"{SIGNATURE}_")[-1].split(":")[0]
                 for d in sorted(interpreter.get_input_details(), key=lambda d: d["index"])]
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=[SIGNATURE])
        entry = manifest.variants.get(variant_name)
        weights = entry.converter.get("int8_weights", "per-channel") if entry else "per-channel"
        tflite.configure(converter, spec, samples, weights)  # as the bundle's file was converted
        # the debugger compares float and quantized tensors itself: it takes float inputs and outputs
        converter.inference_input_type = converter.inference_output_type = tf.float32
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=lambda: ([s[name] for name in order] for s in samples))
        debugger.run()
        import io

        dump = io.StringIO()
        debugger.layer_statistics_dump(dump)
    rows = []
    lines = dump.getvalue().strip().splitlines()
    header = lines[0].split(",")
    for line in lines[1:]:
        cells = dict(zip(header, line.split(",", len(header) - 1)))
        rows.append(TensorError(cells["op_name"], cells["tensor_name"],
                                float(np.sqrt(float(cells["mean_squared_error"]))), float(cells["scale"])))
    return sorted(rows, key=lambda r: -r.steps)
