"""One variant: its file's bytes and its manifest entry, made from the device model and its calibration samples.

What is converted how is the converter table of the variant's format (``tflite.CONVERTERS``,
``onnx_export.CONVERTERS``), keyed by ``VariantSpec.converter``; this module runs it and records the result.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgernn.exporting import compat, onnx_export, state_ranges, tflite
from edgernn.runtime.manifest import VariantEntry
from edgernn.runtime.quantization import bounds, is_quantized
from edgernn.runtime.variants import VariantSpec, variant
from edgernn.training.tf_import import silenced_stderr


@dataclass
class Source:
    """What every variant of one export is made from."""

    inspected: object  # edgernn.exporting.inspect.InspectedModel
    device_model: object  # the Keras step (or unrolled window) model
    saved_model: Path  # the same, as a SavedModel with the SIGNATURE endpoint (the TFLite converter's input)
    samples: list[dict]  # calibration samples: {x, h0, ...} from real data
    z: np.ndarray  # the calibration model inputs
    int8_weights: str  # tflite-int8's weight scales (tflite.INT8_WEIGHTS)
    headroom: float = 0.0  # the calibrated input range widened by this share of its span (samples carry it)
    _onnx_float: bytes | None = field(default=None, repr=False)

    def onnx_float(self) -> bytes:
        """The float ONNX model, converted once for every ONNX variant."""
        if self._onnx_float is None:
            with silenced_stderr():
                self._onnx_float = onnx_export.to_onnx(self.device_model)
        return self._onnx_float


def _versions(packages) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


def convert(spec: VariantSpec, source: Source) -> tuple[bytes, VariantEntry]:
    """The variant's file bytes and its manifest entry (tensors, converter record, notes, input limits)."""
    info = source.inspected.info
    if spec.format == "tflite":
        content, inputs, outputs, notes, converter = _tflite(spec, source)
    else:
        content, inputs, outputs, notes, converter = _onnx(spec, source)
    entry = VariantEntry(spec.name, spec.file_name, spec.format, hashlib.sha256(content).hexdigest(), len(content),
                         inputs, outputs, info.state_pairs(), converter, notes,
                         input_limits(next(t for t in inputs if t.name == "x")))
    entry.interpreters = compat.interpreters(spec, content, entry)
    return content, entry


def _tflite(spec: VariantSpec, source: Source):
    with silenced_stderr():
        content = tflite.convert(source.saved_model, spec, source.samples, source.int8_weights)
        inputs, outputs = tflite.tensor_specs(content)
    converter = _versions(("tensorflow", "keras"))
    if spec.calibrated and source.headroom:
        converter["input_headroom"] = f"{source.headroom:g}"
    notes = ""
    if spec.hybrid:
        converter["int8_weights"] = "per-tensor"  # tflite._dynamic's: what tflite-runtime 2.14 loads
        if compat.float_weights_only(content):
            notes = ("its weights stayed float32: the converter quantizes only weight tensors of 1,024 values or "
                     "more, and this model has none; this variant is the float32 model")
    if spec.integer_io:
        converter["int8_weights"] = source.int8_weights
        if source.inspected.info.state_inputs():
            content, inputs, outputs, notes = _best_state_calibration(spec, source, (content, inputs, outputs))
    return content, inputs, outputs, notes, converter


def _onnx(spec: VariantSpec, source: Source):
    with silenced_stderr():
        content = onnx_export.CONVERTERS[spec.converter](source.onnx_float())
    onnx_export.check_self_contained(content, spec.name)
    inputs, outputs = onnx_export.tensor_specs(content)
    converter = {**_versions(("tensorflow", "tf2onnx", "onnx", "onnxruntime")), "opset": onnx_export.OPSET,
                 **onnx_export.SETTINGS.get(spec.converter, {})}
    return content, inputs, outputs, "", converter


def _best_state_calibration(spec: VariantSpec, source: Source, real):
    """Build the variant with its state inputs calibrated over the activation's range too; keep the better one
    (``edgernn.exporting.state_ranges`` says why both)."""
    from edgernn.runtime.backends import choose

    info = source.inspected.info
    with silenced_stderr():
        full_content = tflite.convert(source.saved_model, spec, state_ranges.full_range_samples(source.samples, info),
                                      source.int8_weights)
        full = (full_content, *tflite.tensor_specs(full_content))
    backend_class = choose("auto", variant(spec.name))
    evaluation = state_ranges.evaluation_inputs(source.z)
    errors = []
    for content, inputs, outputs in (real, full):
        entry = VariantEntry(spec.name, "", spec.format, "", len(content), inputs, outputs, info.state_pairs())
        errors.append(state_ranges.stream_nrmse(backend_class(content, entry, 1), entry, info,
                                                source.inspected.weights, evaluation))
    keep = 0 if errors[0] <= errors[1] else 1
    label = ("real states", "full activation range")
    notes = (f"state inputs calibrated on {label[keep]}: NRMSE vs float over {evaluation.size} steps "
             f"{errors[0]:.3f}% (real states) vs {errors[1]:.3f}% (full activation range)")
    return (*(real, full)[keep], notes)


def input_limits(spec) -> list[float] | None:
    """What an integer input tensor can represent, in model-input units (None for float inputs)."""
    if not is_quantized(spec):
        return None
    low, high = bounds(spec)
    return [spec.scale * (low - spec.zero_point), spec.scale * (high - spec.zero_point)]
