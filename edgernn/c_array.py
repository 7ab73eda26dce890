"""``edgernn c-array``: a bundle's .tflite variant as C source for firmware (TensorFlow Lite Micro).

Three files: ``NAME.h`` (declarations, the tensor arena size TFLM needs, each tensor's position, shape and
quantization, the preprocessing), ``NAME.cc`` (the model bytes, 16-byte aligned; valid C and C++) and
``NAME_example.cc`` (a C++ step loop for TFLM with the state handed over by hand). The bytes are read through
the bundle's hash-checked reader, so the array is exactly the file the manifest names.
"""

from __future__ import annotations

import re
from pathlib import Path

from edgernn.errors import ExportError
from edgernn.runtime.atomic import write_bytes_atomically
from edgernn.runtime.backends import tensor_order
from edgernn.runtime.bundle import Bundle
from edgernn.runtime.tflite_signature import positions
from edgernn.runtime.variants import variant

BYTES_PER_LINE = 16


def _c_name(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]", "_", text)


def _array(content: bytes) -> str:
    rows = (", ".join(f"0x{b:02x}" for b in content[i:i + BYTES_PER_LINE])
            for i in range(0, len(content), BYTES_PER_LINE))
    return ",\n  ".join(rows)


def _tensor_lines(prefix: str, kind: str, specs, where: dict[str, int]) -> list[str]:
    lines = []
    for spec in specs:
        name = f"{prefix}_{kind}_{_c_name(spec.name).upper()}"
        lines.append(f"#define {name} {where[spec.name]}  /* {spec.name}: {spec.dtype} {spec.shape} */")
        if spec.scale is not None:
            lines.append(f"#define {name}_SCALE {spec.scale!r}f")
            lines.append(f"#define {name}_ZERO_POINT {spec.zero_point}")
    return lines


def write(bundle_dir, variant_name: str, out, name: str = "edgernn_model") -> list[Path]:
    """Write ``NAME.h``, ``NAME.cc`` and ``NAME_example.cc`` for ``variant_name`` into ``out`` (created).

    Raises:
        ExportError: not a .tflite variant, or an invalid C name; BundleError for a bad bundle.
    """
    if not re.fullmatch(r"[A-Za-z_][0-9A-Za-z_]*", name):
        raise ExportError(f"--name must be a C identifier, got {name!r}")
    if variant(variant_name).format != "tflite":
        raise ExportError(f"{variant_name} is not a TFLite variant: a C array is for TensorFlow Lite Micro")
    bundle = Bundle.open(bundle_dir)
    entry = bundle.variant(variant_name)
    content = bundle.read(variant_name)
    by_input, by_output = positions(content)
    tflm = entry.interpreters.get("tflm") or {}
    prefix = name.upper()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    header, source, example = out / f"{name}.h", out / f"{name}.cc", out / f"{name}_example.cc"
    files = {header: _header(name, prefix, entry, content, tflm, bundle.manifest, by_input, by_output),
             source: _source(name, header.name, entry, content),
             example: _example(name, prefix, header.name, entry)}
    for path, text in files.items():
        write_bytes_atomically(path, text.encode())
    return list(files)


def _header(name, prefix, entry, content, tflm, manifest, by_input, by_output) -> str:
    pre = manifest.preprocessing
    runs = tflm.get("runs")
    arena = tflm.get("arena_bytes")
    lines = [f"/* {entry.file} from an edgernn bundle (sha256 {entry.sha256}), {len(content)} bytes of flash.",
             f"   TFLM at export: {'runs' if runs else 'refused it: ' + tflm.get('reason', '') if runs is False else 'not checked'}. */",
             f"#ifndef {prefix}_H", f"#define {prefix}_H", "", "#include <stddef.h>", "",
             "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
             f"extern const unsigned char {name}[];", f"extern const size_t {name}_len;", "",
             "/* the smallest tensor arena TFLM allocates this model in, measured at export (0: not measured) */",
             f"#define {prefix}_ARENA_BYTES {arena if arena else 0}",
             "/* tensor positions in the model's input and output lists (TFLM addresses tensors by position) */",
             *_tensor_lines(prefix, "INPUT", entry.inputs, by_input),
             *_tensor_lines(prefix, "OUTPUT", entry.outputs, by_output),
             "/* raw units -> model input: ((value - last value, if DIFFERENCE) - OFFSET) / DIVISOR; the output is decoded",
             "   back the same way: output * DIVISOR + OFFSET (+ the last value, if DIFFERENCE) */",
             f"#define {prefix}_DIFFERENCE {int(pre.difference)}",
             f"#define {prefix}_OFFSET {pre.offset!r}", f"#define {prefix}_DIVISOR {pre.divisor!r}", "",
             "#ifdef __cplusplus", "}", "#endif", f"#endif  /* {prefix}_H */", ""]
    return "\n".join(lines)


def _source(name, header, entry, content) -> str:
    return "\n".join([
        f'/* {entry.file}: see {header} */', f'#include "{header}"', "",
        "#if defined(__cplusplus)", "#define EDGERNN_ALIGNED alignas(16)", "#else",
        "#define EDGERNN_ALIGNED _Alignas(16)", "#endif", "",
        '#ifdef __cplusplus', 'extern "C" {', '#endif',
        f"EDGERNN_ALIGNED const unsigned char {name}[] = {{", f"  {_array(content)}", "};",
        f"const size_t {name}_len = {len(content)};", '#ifdef __cplusplus', '}', '#endif', ""])


def _example(name, prefix, header, entry) -> str:
    inputs, outputs = tensor_order(entry)
    pairs = [(i, o) for i, o in entry.state_pairs]
    handover = "\n".join(
        f"    CopyState(interpreter.output({prefix}_OUTPUT_{_c_name(o).upper()}), "
        f"interpreter.input({prefix}_INPUT_{_c_name(i).upper()}));" for i, o in pairs)
    return f"""// A TensorFlow Lite Micro step loop for {entry.file} (a sketch: add your op resolver's ops and I/O).
// The state (the recurrent layers' hidden states) is handed from the outputs back to the inputs after each
// invoke; copy it before the next invoke, which may reuse the outputs' memory.
#include <cmath>
#include <cstring>
#include "{header}"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

alignas(16) static uint8_t tensor_arena[{prefix}_ARENA_BYTES];

static void CopyState(const TfLiteTensor* from, TfLiteTensor* to) {{
  // an int8 state output and the next step's state input can have different scales: requantize (round half to
  // even, saturate), as edgernn's runtime does; otherwise the bytes are the state
  if (from->type == kTfLiteInt8 && (from->params.scale != to->params.scale ||
                                    from->params.zero_point != to->params.zero_point)) {{
    for (size_t i = 0; i < from->bytes; ++i) {{
      float real = from->params.scale * (from->data.int8[i] - from->params.zero_point);
      long q = lrintf(real / to->params.scale) + to->params.zero_point;
      to->data.int8[i] = static_cast<int8_t>(q < -128 ? -128 : q > 127 ? 127 : q);
    }}
    return;
  }}
  std::memcpy(to->data.raw, from->data.raw, from->bytes);
}}

int main() {{
  const tflite::Model* model = tflite::GetModel({name});
  static tflite::MicroMutableOpResolver<16> resolver;  // add the ops the model uses: FullyConnected, Add, Tanh...
  tflite::MicroInterpreter interpreter(model, resolver, tensor_arena, sizeof(tensor_arena));
  if (interpreter.AllocateTensors() != kTfLiteOk) return 1;
  for (;;) {{
    float reading = 0.0f;  // your sensor here, encoded with {prefix}_OFFSET/{prefix}_DIVISOR, quantized if int8
    (void)reading;
    // interpreter.input({prefix}_INPUT_X)->data... = the encoded reading
    if (interpreter.Invoke() != kTfLiteOk) return 2;
{handover}
    // interpreter.output({prefix}_OUTPUT_Y)->data... is the next-value prediction (decode it back to raw units)
  }}
}}
// tensors in positional order: inputs {inputs}, outputs {outputs}
"""
