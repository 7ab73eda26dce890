"""SavedModel -> TFLite bytes for each TFLite variant, and the tensor specs the manifest records.

``CONVERTERS`` maps a variant's ``converter`` key (``edgernn.runtime.variants``) to its converter settings, the
only place that knows them:
- float32: plain conversion; float16: float16 weights; dynamic: int8 weights (one scale per tensor, so that
  tflite-runtime 2.14 loads it), float activations;
- int8: full integer with int8 input/output/state tensors, calibrated on real (x, state) pairs; weights with
  one scale per output channel (the converter's default) or, on request, one per tensor;
- int16x8: 16-bit activations and 8-bit weights, float input/output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgernn.runtime.backends import make_interpreter
from edgernn.runtime.manifest import SIGNATURE, TensorSpec
from edgernn.runtime.variants import VariantSpec
from edgernn.training.tf_import import import_tensorflow


def _float32(converter, tf, samples, int8_weights) -> None:
    """Nothing to set: the float graph as it is."""


def _float16(converter, tf, samples, int8_weights) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


def _dynamic(converter, tf, samples, int8_weights) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # no representative dataset: dynamic-range weights
    # one scale per weight tensor: per-channel hybrid weights make FULLY_CONNECTED version 12, which
    # tflite-runtime 2.14 cannot load; per-tensor ones are version 9 (measured on 50-unit SimpleRNN, GRU and LSTM:
    # NRMSE vs float 0.179 -> 0.188 %, 0.030 -> 0.037 %, 0.033 -> 0.028 %; files 10 % smaller)
    set_int8_weights(converter, "per-tensor")


def _int8(converter, tf, samples, int8_weights) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: iter(samples)  # dicts keyed by signature input names
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    set_int8_weights(converter, int8_weights)


def _int16x8(converter, tf, samples, int8_weights) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: iter(samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]


CONVERTERS = {"float32": _float32, "float16": _float16, "dynamic": _dynamic, "int8": _int8, "int16x8": _int16x8}


def configure(converter, spec: VariantSpec, samples: list[dict] | None, int8_weights: str = "per-channel") -> None:
    """Apply variant ``spec``'s settings to a ``TFLiteConverter``.

    ``int8_weights="per-tensor"``: one scale per int8 weight tensor. tflite-runtime 2.14's aarch64 build crashes
    in its optimized per-channel int8 FULLY_CONNECTED kernel (the runtime then falls back to its slower
    reference kernels); per-tensor files run on the optimized ones, at a small accuracy cost.
    """
    if spec.converter not in CONVERTERS:
        raise ValueError(f"{spec.name} is not a TFLite variant")
    if spec.calibrated and not samples:
        raise ValueError(f"{spec.name} needs calibration samples")
    CONVERTERS[spec.converter](converter, import_tensorflow(), samples, int8_weights)


def set_int8_weights(converter, int8_weights: str) -> None:
    """One scale per weight tensor instead of per output channel, for ``per-tensor`` (a private converter
    switch, kept here only)."""
    if int8_weights == "per-tensor":
        converter._experimental_disable_per_channel = True


def convert(saved_model: Path, spec: VariantSpec, samples: list[dict] | None = None,
            int8_weights: str = "per-channel") -> bytes:
    """Convert the SavedModel's ``SIGNATURE`` (``serving_default``) to a ``.tflite`` flatbuffer."""
    tf = import_tensorflow()
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model), signature_keys=[SIGNATURE])
    configure(converter, spec, samples, int8_weights)
    return converter.convert()


def tensor_specs(model_content: bytes) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The signature's inputs and outputs as manifest ``TensorSpec``s (names from the signature, not order)."""
    interpreter = make_interpreter(model_content, "litert")
    interpreter.allocate_tensors()
    runner = interpreter.get_signature_runner(SIGNATURE)

    def spec(name, detail):
        dtype = np.dtype(detail["dtype"]).name
        scale, zero_point = detail["quantization"]
        quantized = np.issubdtype(np.dtype(detail["dtype"]), np.integer)
        return TensorSpec(name, [int(d) for d in detail["shape"]], dtype,
                          float(scale) if quantized else None, int(zero_point) if quantized else None)

    inputs = [spec(n, d) for n, d in sorted(runner.get_input_details().items())]
    outputs = [spec(n, d) for n, d in sorted(runner.get_output_details().items())]
    return inputs, outputs
