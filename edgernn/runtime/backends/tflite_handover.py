"""An int8 model's state hand-over run inside the interpreter: the same model with DEQUANTIZE and QUANTIZE ops
after each state output whose quantization is not its state input's, so that ``run`` returns every state ready
for the next step.

A tanh state leaves the model at scale 1/128 while its input was calibrated to the real states (export keeps that
model when it is the more accurate one), so every step requantizes the state. In Python that is a table lookup,
0.6-0.8 us a step, a third of a 50-unit invoke: the int8 step cost 1.4x the float32 one on LiteRT although its
invoke is the cheaper. As two ops it is part of the invoke. Through float, not one QUANTIZE from int8 to int8:
XNNPACK's int8-to-int8 kernel rounds its own way (one code off on about 5 % of a state's elements), its
float-to-int8 one to nearest. A pair is fused only when a probe of every code, run by the same kernels,
gives exactly the predictor's table: the step is the same step, faster, or it is not rewritten.

The rewrite is of the bytes in memory, after the bundle's hash check; the file is untouched (the c backend, TFLM
and firmware read it as exported). Where the schema reader or ``flatbuffers`` is missing, or the model is not
one this understands, nothing is rewritten and the predictor hands the states over itself, as before.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from edgernn.runtime.manifest import SIGNATURE
from edgernn.runtime.quantization import requantizer
from edgernn.runtime.quiet import silenced_stderr


class Quantization(NamedTuple):
    scale: float
    zero_point: int


def fused(content: bytes, entry, interpreter) -> tuple[bytes, set[str]] | None:
    """``(the model with each fusible state output handed over in the graph, their output names)``, or None when
    no pair is fusible here. ``interpreter(bytes)``: an interpreter with the backend's kernels (for the probe)."""
    needing = _needing(entry)
    if not needing:
        return None
    try:
        import flatbuffers
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        return None
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(content, 0))
        signature = next(s for s in model.signatureDefs if s.signatureKey.decode() == SIGNATURE)
        graph = model.subgraphs[signature.subgraphIndex]
        outputs = {t.name.decode(): t for t in signature.outputs}
        handed = set()
        for name_in, name_out, table in needing:
            stored = graph.tensors[outputs[name_out].tensorIndex].quantization
            source = Quantization(float(stored.scale[0]), int(stored.zeroPoint[0]))
            if _exact(interpreter, schema, flatbuffers, source, entry.input(name_in), table):
                _hand_over(model, graph, schema, outputs[name_out], entry.input(name_in))
                handed.add(name_out)
        return (_packed(model, schema, flatbuffers, len(content) + 4096), handed) if handed else None
    except Exception:  # noqa: BLE001 - untrusted bytes make the flatbuffer reader raise any type (struct.error...)
        return None  # not a model this rewrite understands: the predictor's table hands the states over


def _needing(entry) -> list[tuple[str, str, object]]:
    """(state input, state output, the predictor's table) of each int8 pair whose hand-over moves a code."""
    pairs = []
    for name_in, name_out in entry.state_pairs:
        spec_in, spec_out = entry.input(name_in), entry.output(name_out)
        int8 = np.dtype(spec_in.dtype) == np.int8 == np.dtype(spec_out.dtype)
        table = requantizer(spec_out, spec_in) if int8 else None
        if table is not None:
            pairs.append((name_in, name_out, table))
    return pairs


def _exact(interpreter, schema, flatbuffers, source, target, table) -> bool:
    """Whether the two ops from ``source`` to ``target``, run by these kernels, map every int8 code as the
    predictor's ``table`` does."""
    codes = np.arange(-128, 128, dtype=np.int8).reshape(1, -1)
    model = schema.ModelT()
    model.version, model.buffers, model.operatorCodes = 3, [schema.BufferT()], []
    graph = schema.SubGraphT()
    graph.tensors = [_tensor(schema, [1, 256], schema.TensorType.INT8, b"codes", source),
                     _tensor(schema, [1, 256], schema.TensorType.FLOAT32, b"values", None),
                     _tensor(schema, [1, 256], schema.TensorType.INT8, b"handed", target)]
    graph.inputs, graph.outputs, graph.operators = [0], [2], []
    model.subgraphs = [graph]
    _append_pair(model, graph, schema, 0, 1, 2)
    try:
        probe = interpreter(_packed(model, schema, flatbuffers, 4096))
        with silenced_stderr():  # the XNNPACK delegate announces itself at the first invoke
            probe.allocate_tensors()
            probe.set_tensor(probe.get_input_details()[0]["index"], codes)
            probe.invoke()
        got = probe.get_tensor(probe.get_output_details()[0]["index"])
    except Exception:  # noqa: BLE001 - kernels that cannot run the probe: no rewrite
        return False
    return bool(np.array_equal(got, table(codes)))


def _hand_over(model, graph, schema, output, target) -> None:
    """The signature's ``output`` re-pointed at its tensor dequantized and quantized as ``target``."""
    source = output.tensorIndex
    shape, name = graph.tensors[source].shape, graph.tensors[source].name
    graph.tensors += [_tensor(schema, shape, schema.TensorType.FLOAT32, name + b"/value", None),
                      _tensor(schema, shape, schema.TensorType.INT8, name + b"/handed_over", target)]
    handed = len(graph.tensors) - 1
    _append_pair(model, graph, schema, source, handed - 1, handed)
    graph.outputs = [handed if index == source else index for index in graph.outputs]
    output.tensorIndex = handed


def _append_pair(model, graph, schema, codes: int, values: int, handed: int) -> None:
    """DEQUANTIZE ``codes`` -> ``values`` (float32), QUANTIZE ``values`` -> ``handed``."""
    for builtin, version, source, target in ((schema.BuiltinOperator.DEQUANTIZE, 2, codes, values),
                                             (schema.BuiltinOperator.QUANTIZE, 1, values, handed)):
        op = schema.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = _opcode(model, schema, builtin, version), [source], [target]
        graph.operators.append(op)


def _opcode(model, schema, builtin: int, version: int) -> int:
    """The index of the model's operator code for ``builtin`` (at least ``version``), added if it has none."""
    for index, opcode in enumerate(model.operatorCodes):
        if max(opcode.builtinCode, opcode.deprecatedBuiltinCode) == builtin:
            opcode.version = max(opcode.version, version)
            return index
    opcode = schema.OperatorCodeT()
    opcode.builtinCode = opcode.deprecatedBuiltinCode = builtin
    opcode.version = version
    model.operatorCodes.append(opcode)
    return len(model.operatorCodes) - 1


def _tensor(schema, shape, kind: int, name: bytes, quantization):
    """A schema tensor without data (buffer 0), quantized per tensor when ``quantization`` is given."""
    tensor = schema.TensorT()
    tensor.shape, tensor.type, tensor.buffer, tensor.name = list(shape), kind, 0, name
    if quantization is not None:
        tensor.quantization = schema.QuantizationParametersT()
        tensor.quantization.scale = [float(quantization.scale)]
        tensor.quantization.zeroPoint = [int(quantization.zero_point)]
    return tensor


def _packed(model, schema, flatbuffers, size: int) -> bytes:
    builder = flatbuffers.Builder(size)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
