"""A ``.tflite`` file's ``serving_default`` signature read from the flatbuffer: which position in the model's
input and output lists each of our tensor names has. Interpreters that address tensors by position (TFLM, the
C array for firmware) need it; the schema reader comes with ai-edge-litert or tflite-micro, whichever is here."""

from __future__ import annotations

from edgernn.runtime.errors import BackendError
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


def positions(content: bytes) -> tuple[dict[str, int], dict[str, int]]:
    """Our tensor names -> their positions in the model's input list and in its output list."""
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
        by_input = {signature.Inputs(i).Name().decode(): inputs.index(signature.Inputs(i).TensorIndex())
                    for i in range(signature.InputsLength())}
        by_output = {signature.Outputs(i).Name().decode(): outputs.index(signature.Outputs(i).TensorIndex())
                     for i in range(signature.OutputsLength())}
    except BackendError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged flatbuffer makes the generated reader raise any type
        raise BackendError(f"cannot read the model's signature: {type(exc).__name__}") from None
    return by_input, by_output
