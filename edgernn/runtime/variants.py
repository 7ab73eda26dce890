"""The variant table: every exported variant and what each part of edgernn needs to know about it, in one place.

A new variant is one entry here; a new kind of quantization also its converter settings (``edgernn/exporting/tflite.py``
or ``edgernn/exporting/onnx_export.py``, keyed by ``VariantSpec.converter``). What export, compat and c-array do
differently for a variant keys on its flags (calibrated, integer_io, hybrid, tflm_lacks), never on its name or
converter; the CLI's choices, the manifest's validation, verify's gate, bench and the tests all read this table.
Standard library only: the device (and the CLI's --help) reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgernn.errors import BundleError


@dataclass(frozen=True)
class VariantSpec:
    """One variant. ``name`` is its spelling everywhere (CLI, manifest, verify, bench)."""

    name: str
    format: str  # the file format and which interpreters can run it: "tflite" or "onnx"
    converter: str  # the export settings it is made with (see the module doc)
    float32: bool  # the float model's own numbers: gated on max error too, runnable by the numpy backend
    max_nrmse: float  # verify's default gate: NRMSE vs the float model, % of its output range
    calibrated: bool  # full-integer: export calibrates it on real (x, state) pairs
    diagnosable: bool  # a failing verify runs TensorFlow's QuantizationDebugger on it
    quantized: str  # what is quantized, for people (help, README)
    integer_io: bool = False  # int8 input, output and state tensors: --int8-weights applies, state calibration chosen
    hybrid: bool = False  # int8 weights, float activations: the converter may leave small weight tensors float
    tflm_lacks: str = ""  # why TensorFlow Lite Micro cannot run it ("": TFLM-runnable where the model allows)

    @property
    def file_name(self) -> str:
        return f"{self.name}.{self.format}"


VARIANTS = {spec.name: spec for spec in (
    VariantSpec("tflite-float32", "tflite", "float32", True, 0.001, False, False, "nothing"),
    VariantSpec("tflite-float16", "tflite", "float16", False, 0.5, False, False, "weights to float16",
                tflm_lacks="TFLM has no float16 weights (DEQUANTIZE from float16)"),
    VariantSpec("tflite-dynamic", "tflite", "dynamic", False, 2.0, False, False,
                "weights to int8 (tensors of 1,024 weights or more), float activations", hybrid=True,
                tflm_lacks="TFLM has no hybrid kernels (float activations with int8 weights)"),
    VariantSpec("tflite-int8", "tflite", "int8", False, 2.0, True, True,
                "everything; int8 input, output and state tensors", integer_io=True),
    VariantSpec("tflite-int16x8", "tflite", "int16x8", False, 1.0, True, False,
                "16-bit activations, 8-bit weights"),
    VariantSpec("onnx-float32", "onnx", "onnx-float32", True, 0.001, False, False, "nothing"),
    VariantSpec("onnx-int8", "onnx", "onnx-dynamic", False, 2.0, False, False,
                "8-bit weights, activations quantized per call (onnxruntime dynamic)"),
)}
ALL_VARIANTS = tuple(VARIANTS)
DEFAULT_VARIANT = "tflite-int8"  # what stream, c-array, the predictor and the demo run unless told otherwise
FORMATS = tuple(dict.fromkeys(spec.format for spec in VARIANTS.values()))
FLOAT32_MAX_ABS_OF_RANGE = 1e-4  # float32 variants: max |error| within this share of the float output's range


def variant(name: str) -> VariantSpec:
    """The spec of a variant name; BundleError (one line, listing the names) for anything else."""
    spec = VARIANTS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise BundleError(f"unknown variant {name!r}; choose from {', '.join(ALL_VARIANTS)}")
    return spec


def parse_variants(text: str | list | tuple | None) -> list[str]:
    """``"all"``/None, or a comma-separated list (or sequence) of variant names, validated and de-duplicated."""
    if text is None or text == "all":
        return list(ALL_VARIANTS)
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else list(text)
    unknown = [str(n) for n in names if n not in VARIANTS]
    if unknown or not names:
        raise BundleError(f"unknown variant {', '.join(unknown) or '(none)'}; choose from {', '.join(ALL_VARIANTS)}")
    return list(dict.fromkeys(names))
