"""What runs where, known at export: for each variant, which interpreters load it, recorded in the manifest.

Which interpreters are recorded, and for which formats, comes from the backend table (rows marked ``recorded``,
and each backend class's ``formats``); how each is checked:
- by default (``litert``, ``onnxruntime``, any new one), and ``tflm``: the model is loaded by the interpreter
  itself where it is installed at export (TFLM also measures the tensor arena the model needs: a
  microcontroller's RAM); where it is not, the pairing is recorded as unchecked.
- ``tflite-runtime`` (2.14, numpy<2, so never beside the exporting TensorFlow): the operator versions in the file
  against the highest ones tflite-runtime 2.14 loads, measured by loading probe models
  (``benchmarks/op_versions.py``: each operator's version rewritten, loaded one by one), not read from its source.
"""

from __future__ import annotations

import importlib.util

from edgernn.runtime import backends
from edgernn.errors import BackendError
from edgernn.runtime.manifest import MAX_REASON_CHARS
from edgernn.runtime.variants import VariantSpec

# highest operator versions tflite-runtime 2.14.0 (x86_64) resolves, for the operators edgernn's models use
# (SimpleRNN/GRU/LSTM step models, unrolled window models, every variant): benchmarks/op_versions.py, 2026-11-25
TFLITE_RUNTIME_2_14 = {
    "ADD": 5, "DEQUANTIZE": 5, "FILL": 4, "FULLY_CONNECTED": 10, "LOGISTIC": 3, "MUL": 7, "PACK": 4,
    "QUANTIZE": 3, "SHAPE": 1, "SPLIT": 4, "STRIDED_SLICE": 8, "SUB": 5, "TANH": 3, "TRANSPOSE": 6, "UNPACK": 4,
}


def operators(content: bytes) -> dict[str, int]:
    """The builtin operators of a ``.tflite`` file and the highest version of each (from the flatbuffer)."""
    from ai_edge_litert import schema_py_generated as schema

    names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    model = schema.Model.GetRootAs(content, 0)
    found = {}
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
        found[name] = max(found.get(name, 0), code.Version())
    return found


def float_weights_only(content: bytes) -> bool:
    """Whether no tensor of the file is int8: a dynamic-range model whose weights all stayed float (the converter
    quantizes only weight tensors of 1,024 values or more)."""
    from ai_edge_litert import schema_py_generated as schema

    graph = schema.Model.GetRootAs(content, 0).Subgraphs(0)
    return all(graph.Tensors(i).Type() != schema.TensorType.INT8 for i in range(graph.TensorsLength()))


def _tflite_runtime(content: bytes) -> dict:
    used = operators(content)
    too_new = [f"{op} version {version} (it loads up to {TFLITE_RUNTIME_2_14[op]})"
               for op, version in used.items() if op in TFLITE_RUNTIME_2_14 and version > TFLITE_RUNTIME_2_14[op]]
    unknown = [op for op in used if op not in TFLITE_RUNTIME_2_14]
    if too_new:
        return {"runs": False, "reason": f"tflite-runtime 2.14 lacks {', '.join(too_new)}"}
    if unknown:
        return {"runs": None, "reason": f"not measured for tflite-runtime 2.14: {', '.join(unknown)}"}
    return {"runs": True, "reason": "operator versions within tflite-runtime 2.14's"}


def _loaded_by(backend: str, content: bytes, entry) -> dict:
    """Load the model with ``backend`` (installed here), one stream."""
    from edgernn.runtime.backends import backend_class

    try:
        backend_class(backend)(content, entry, 1)
    except BackendError as exc:
        return {"runs": False, "reason": str(exc)}
    return {"runs": True, "reason": "loaded at export"}


# why TFLM refuses what it refuses (its own message only says that allocation failed): the variant table's
# ``tflm_lacks``, or this
TFLM_RUNTIME_FILL = ("TFLM cannot run a window model: its zero initial state is built at run time (SHAPE -> FILL) "
                     "and TFLM's FILL needs constant dims; export a streaming model for TFLM")


def fill_with_runtime_dims(content: bytes) -> bool:
    """Whether the model has a FILL whose dims input is computed at run time (no constant data), as the unrolled
    window model's zero initial state (SHAPE -> FILL) is: TFLM prepares FILL only from constant dims."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(content, 0)
    codes = [max(model.OperatorCodes(i).BuiltinCode(), model.OperatorCodes(i).DeprecatedBuiltinCode())
             for i in range(model.OperatorCodesLength())]
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            if codes[op.OpcodeIndex()] != schema.BuiltinOperator.FILL or op.InputsLength() == 0:
                continue
            buffer = model.Buffers(graph.Tensors(op.Inputs(0)).Buffer())
            if buffer.DataLength() == 0 and buffer.Size() == 0:
                return True
    return False


def tflm_check(content: bytes, entry, spec: VariantSpec) -> dict:
    """Load the model with TFLM (installed here) and measure its arena, or say in words why TFLM refuses it."""
    outcome = _loaded_by("tflm", content, entry)
    if outcome["runs"]:
        from edgernn.runtime.backends.tflm import arena_bytes

        outcome["arena_bytes"] = arena_bytes(content)
    else:
        said = outcome["reason"].replace(f"tflm cannot load {entry.file}: ", "")
        if spec.tflm_lacks:
            outcome["reason"] = f"{spec.tflm_lacks} ({said})"
        elif fill_with_runtime_dims(content):
            outcome["reason"] = f"{TFLM_RUNTIME_FILL} ({said})"
        else:
            outcome["reason"] = said
    return outcome


# the interpreters not checked by loading the file with themselves (the default): (package needed to check, how)
SPECIAL_CHECKS = {
    "tflite-runtime": (None, lambda content, entry, spec: _tflite_runtime(content)),
    "tflm": ("tflite_micro", tflm_check),
}


def check_of(name: str):
    """(the package that must be installed to check, how) for recorded interpreter ``name``."""
    if name in SPECIAL_CHECKS:
        return SPECIAL_CHECKS[name]
    package = next(row.package for row in backends.BACKEND_TABLE if row.name == name)
    return package, lambda content, entry, spec: _loaded_by(name, content, entry)


def format_interpreters(model_format: str) -> tuple[str, ...]:
    """The recorded interpreters that run ``model_format`` files, in table order (each backend class's
    ``formats``: importing its module needs none of its packages)."""
    return tuple(name for name in backends.INTERPRETERS if model_format in backends.formats_of(name))


def interpreters(spec: VariantSpec, content: bytes, entry) -> dict[str, dict]:
    """Interpreter -> ``{"runs": True/False/None (unchecked), "reason": ..., ["arena_bytes": ...]}``."""
    found = {}
    for name in format_interpreters(spec.format):
        package, check = check_of(name)
        if package is not None and importlib.util.find_spec(package) is None:
            found[name] = {"runs": None, "reason": f"not checked: {package} was not installed at export"}
        else:
            found[name] = check(content, entry, spec)
        found[name]["reason"] = " ".join(found[name]["reason"].split())[:MAX_REASON_CHARS]  # what the manifest takes
    return found
