"""A ``.tflite`` file's ``serving_default`` signature read from the flatbuffer: which position in the model's
input and output lists each of our tensor names has. Interpreters that address tensors by position (TFLM, the
C array for firmware) need it; the schema reader comes with ai-edge-litert or tflite-micro, whichever is here."""

from __future__ import annotations

from typing import NamedTuple

from edgernn.errors import BackendError
from edgernn.runtime.manifest import SIGNATURE


def schema():
    """The generated flatbuffer reader of the TFLite schema (ai-edge-litert's, else tflite-micro's)."""
    try:
        from ai_edge_litert import schema_py_generated

        return schema_py_generated
    except ImportError:
        try:
            from tflite_micro.runtime import schema_fb
        except ImportError:
            raise BackendError("reading a .tflite file's signature needs ai-edge-litert or tflite-micro: pip install "
                               "'edgernn[litert]'") from None
        return schema_fb


class TensorInfo(NamedTuple):
    """One signature tensor as the file itself declares it (the C array trusts the file, not the manifest)."""

    position: int  # in the model's input (or output) list
    dtype: str  # the schema's TensorType name, lower case: "int8", "float32"...
    shape: tuple[int, ...]
    scale: float | None  # per-tensor quantization; None when the tensor has none
    zero_point: int | None


def _tensor(reader, graph, index: int, position: int) -> TensorInfo:
    tensor = graph.Tensors(index)
    types = {value: name.lower() for name, value in vars(reader.TensorType).items() if not name.startswith("_")}
    shape = tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
    quantization = tensor.Quantization()
    scale = zero_point = None
    if quantization is not None and quantization.ScaleLength() == 1 and quantization.ZeroPointLength() == 1:
        scale, zero_point = float(quantization.Scale(0)), int(quantization.ZeroPoint(0))
    return TensorInfo(position, types.get(tensor.Type(), "unknown"), shape, scale, zero_point)


def signature_tensors(content: bytes) -> tuple[dict[str, TensorInfo], dict[str, TensorInfo]]:
    """Our tensor names -> what the file says of each (position, dtype, shape, quantization): inputs, outputs."""
    reader = schema()
    try:
        model = reader.Model.GetRootAs(content, 0)
        signature = next((model.SignatureDefs(i) for i in range(model.SignatureDefsLength())
                          if model.SignatureDefs(i).SignatureKey() == SIGNATURE.encode()), None)
        if signature is None:
            raise BackendError(f"the model has no {SIGNATURE!r} signature")
        graph = model.Subgraphs(signature.SubgraphIndex())
        inputs = [graph.Inputs(i) for i in range(graph.InputsLength())]
        outputs = [graph.Outputs(i) for i in range(graph.OutputsLength())]
        found = []
        for count, item, order in ((signature.InputsLength(), signature.Inputs, inputs),
                                   (signature.OutputsLength(), signature.Outputs, outputs)):
            found.append({item(i).Name().decode(): _tensor(reader, graph, item(i).TensorIndex(),
                                                           order.index(item(i).TensorIndex()))
                          for i in range(count)})
    except BackendError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged flatbuffer makes the generated reader raise any type
        raise BackendError(f"cannot read the model's signature: {type(exc).__name__}") from None
    return found[0], found[1]


def positions(content: bytes) -> tuple[dict[str, int], dict[str, int]]:
    """Our tensor names -> their positions in the model's input list and in its output list."""
    by_input, by_output = signature_tensors(content)
    return ({name: t.position for name, t in by_input.items()}, {name: t.position for name, t in by_output.items()})
