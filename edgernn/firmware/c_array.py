"""``edgernn c-array``: a bundle's .tflite variant as C source for firmware (TensorFlow Lite Micro).

Three files: ``NAME.h`` (declarations, the tensor arena size TFLM needs, each tensor's position, shape and
quantization, the preprocessing), ``NAME.cc`` (the model bytes, 16-byte aligned; valid C and C++) and
``NAME_example.cc`` (a C++ step loop for TFLM with the state handed over by hand). The bytes are read through
the bundle's hash-checked reader, so the array is exactly the file the manifest names.

The manifest is untrusted input: no string of it reaches the C text (the variant name comes from the variant
table, tensor names pass through ``_c_name``, the sha256 is checked hex), and the model's numbers (tensor
positions, scales, zero points) are read from the .tflite file itself. The arena is measured with TFLM where it
is installed. The three files are written as a set: staged beside ``--out``, then moved in.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from pathlib import Path

from edgernn.firmware.c_names import STANDARD_NAMES
from edgernn.runtime.atomic import fsync_directory, fsync_tree, remove_stale, replace_directory, temp_dir_beside
from edgernn.runtime.backends import installed
from edgernn.runtime.backends.io_order import tensor_order
from edgernn.runtime.bundle import Bundle, bundle_around
from edgernn.errors import BackendError, ExportError
from edgernn.runtime.manifest import MAX_ARENA_BYTES, Mode
from edgernn.runtime.tflite_signature import signature_tensors
from edgernn.runtime.variants import variant

BYTES_PER_LINE = 16
MAX_NAME = 64
# C11 and C++17 keywords (and C23's new ones): a --name that is one does not compile
KEYWORDS = frozenset("""
auto break case char const continue default do double else enum extern float for goto if inline int long register
restrict return short signed sizeof static struct switch typedef union unsigned void volatile while _Alignas _Alignof
_Atomic _Bool _Complex _Generic _Imaginary _Noreturn _Static_assert _Thread_local alignas alignof and and_eq asm bitand
bitor bool catch char8_t char16_t char32_t class compl concept consteval constexpr constinit const_cast co_await
co_return co_yield decltype delete dynamic_cast explicit export false friend mutable namespace new noexcept not not_eq
nullptr operator or or_eq private protected public reinterpret_cast requires static_assert static_cast template this
thread_local throw true try typeid typename using virtual wchar_t xor xor_eq nullptr_t typeof typeof_unqual
""".split())
# what the generated files themselves declare or use (the example's globals and main()'s locals): --name must
# not shadow or redefine them. The macros are all NAME.upper() + "_...", longer than NAME: they cannot clash.
GENERATED_NAMES = frozenset("""
tensor_arena CopyState model resolver interpreter reading tflite TfLiteTensor kTfLiteOk kTfLiteInt8
""".split())


def check_name(name: str) -> None:
    """``--name`` must make code that compiles: a C identifier, at most ``MAX_NAME`` characters, not a keyword,
    reserved identifier, standard or generated name.

    Raises:
        ExportError: why it cannot be used (one line).
    """
    shown = repr(name[:MAX_NAME + 10]) + ("..." if len(name) > MAX_NAME + 10 else "")
    if not re.fullmatch(r"[A-Za-z_][0-9A-Za-z_]*", name, flags=re.ASCII):
        raise ExportError(f"--name must be a C identifier (letters, digits, _; not starting with a digit), got {shown}")
    if len(name) > MAX_NAME:
        raise ExportError(f"--name must be at most {MAX_NAME} characters, got {len(name)}")
    if name in KEYWORDS:
        raise ExportError(f"--name {name!r} is a C or C++ keyword")
    if name.startswith("_") or "__" in name:  # the array is a global: a leading _ is reserved there too
        raise ExportError(f"--name {name!r} is reserved in C and C++ (a global's leading _, or __ anywhere)")
    if name in STANDARD_NAMES:
        raise ExportError(f"--name {name!r} is a name of the C or C++ standard library")
    if name in GENERATED_NAMES:
        raise ExportError(f"--name {name!r} clashes with a name the generated files use")


def _c_name(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]", "_", text, flags=re.ASCII)


def _c_float(value, suffix: str = "f") -> str:
    """A C floating literal: ``repr`` of the float (always a ``.`` or an exponent: ``1.0``, ``1e-05``) plus
    ``suffix`` (``f`` for float, empty for double)."""
    number = float(value)
    if not math.isfinite(number):
        raise ExportError(f"cannot write {value!r} as a C number")
    text = repr(number)
    if "." not in text and "e" not in text:
        text += ".0"
    return text + suffix


def _array(content: bytes) -> str:
    rows = (", ".join(f"0x{b:02x}" for b in content[i:i + BYTES_PER_LINE])
            for i in range(0, len(content), BYTES_PER_LINE))
    return ",\n  ".join(rows)


def _refusal(spec, entry, manifest, content) -> str | None:
    """Why TFLM cannot run this variant (checked from the file and the variant table, then the manifest's
    record), else None."""
    from edgernn.exporting.compat import TFLM_RUNTIME_FILL, fill_with_runtime_dims, float_weights_only

    if spec.format != "tflite":
        return f"{spec.name} is not a TFLite variant: a C array is for TensorFlow Lite Micro"
    if manifest.model.mode is Mode.WINDOW or fill_with_runtime_dims(content):
        return TFLM_RUNTIME_FILL
    if spec.tflm_lacks and not (spec.hybrid and float_weights_only(content)):
        return spec.tflm_lacks
    if manifest.columns.lag > 1:
        return (f"the model is differenced over a season of {manifest.columns.lag} rows, and the generated C does "
                "not keep a stream's past season yet (train with --season none for firmware)")
    columns = manifest.columns
    if columns.one_value() is None and columns.univariate:
        return ("the model's one value is decoded from a seasonal or smoothed baseline, and the generated C keeps "
                "no past season: train with --season none for firmware")
    if columns.one_value() is None:
        return (f"the model has {len(columns.inputs)} input column(s) and {len(columns.outputs)} output(s), each "
                "with its own scaling and decoding, and the generated C encodes one value in and decodes one out "
                "(F = K = H = 1): per-column C is not generated yet")
    recorded = entry.refused_by("tflm")
    return f"TFLM refused it at export: {recorded}" if recorded else None


def _arena(spec, entry, content) -> int:
    """The arena TFLM needs: measured here when tflite-micro is installed, else the manifest's (bounded by its
    parser), else an error: a firmware cannot be built around an unknown arena."""
    if "tflm" in installed():
        from edgernn.exporting.compat import tflm_check

        record = tflm_check(content, entry, spec)
        if not record["runs"]:
            raise ExportError(f"{spec.name} does not run on TFLM: {record['reason']}")
        return record["arena_bytes"]
    tflm = entry.interpreters.get("tflm") or {}
    arena = tflm.get("arena_bytes")
    if tflm.get("runs") is True and isinstance(arena, int) and 0 < arena <= MAX_ARENA_BYTES:
        return arena
    raise ExportError("the tensor arena size is unknown (not measured at export) and tflite-micro is not installed "
                      "to measure it: pip install 'edgernn[tflm]'")


def render(bundle_dir, variant_name: str, name: str = "edgernn_model") -> dict[str, str]:
    """The three files' names -> their text, for ``variant_name`` of the bundle.

    Raises:
        ExportError: an unusable ``name``, a variant TFLM cannot run, an unknown arena; BundleError for a bad
            bundle; BackendError for a .tflite file whose signature cannot be read.
    """
    check_name(name)
    spec = variant(variant_name)
    if spec.format != "tflite":
        raise ExportError(f"{variant_name} is not a TFLite variant: a C array is for TensorFlow Lite Micro")
    bundle = Bundle.open(bundle_dir)
    entry = bundle.variant(variant_name)
    content = bundle.read(variant_name)
    try:  # a damaged file whose hash was updated: named, one line, before anything else parses it
        by_input, by_output = signature_tensors(content)
    except BackendError as exc:
        raise ExportError(f"{entry.file} is not a readable .tflite step model ({exc})") from None
    reason = _refusal(spec, entry, bundle.manifest, content)
    if reason:
        raise ExportError(f"{variant_name} cannot be a C array for TFLM: {reason}")
    in_order, out_order = tensor_order(entry)
    if sorted(by_input) != sorted(in_order) or sorted(by_output) != sorted(out_order):
        raise ExportError(f"{variant_name}: the model's tensors do not match the manifest's")
    arena = _arena(spec, entry, content)
    prefix = name.upper()
    header = f"{name}.h"
    return {header: _header(name, prefix, spec.name, entry.sha256, content, arena, bundle.manifest.columns.one_value(),
                            by_input, by_output),
            f"{name}.cc": _source(name, prefix, header, spec.name, content),
            f"{name}_example.cc": _example(name, prefix, header, spec.name, entry, by_input, by_output)}


def write(bundle_dir, variant_name: str, out, name: str = "edgernn_model", force: bool = False) -> list[Path]:
    """Write ``NAME.h``, ``NAME.cc`` and ``NAME_example.cc`` for ``variant_name`` into ``out`` as a set.

    Every check runs before anything is written; the files are staged in a directory beside ``out`` and then
    renamed in (``out`` itself is renamed into place when it is new), so an error leaves ``out`` as it was.

    Raises:
        ExportError: see ``render``; ``out`` inside a bundle; a target file that exists (without ``force``) or is
            a directory; a file that cannot be written (naming the user's path).
    """
    texts = render(bundle_dir, variant_name, name)
    out = Path(out)
    _check_out(out, Path(bundle_dir), list(texts), force)
    return _place(out, {file: text.encode() for file, text in texts.items()})


def _check_out(out: Path, bundle: Path, files: list[str], force: bool) -> None:
    place = bundle_around(out, bundle)
    if place is not None:
        raise ExportError(f"--out {out} is inside a bundle directory ({place}): write the C files elsewhere")
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} exists and is not a directory")
    for file in files:
        target = out / file
        if target.is_dir():
            raise ExportError(f"{target} is a directory")
        if (target.exists() or target.is_symlink()) and not force:
            raise ExportError(f"{target} exists: --force replaces it")


def _place(out: Path, files: dict[str, bytes]) -> list[Path]:
    """Stage ``files`` beside ``out`` and move them in (see ``write``); on error remove what this call made."""
    missing = [p for p in (out, *out.parents) if not p.exists()]  # directories this call creates, deepest first
    targets = [out / file for file in files]
    moved: list[Path] = []
    staging = None
    current = None
    try:
        for directory in reversed(missing[1:]):
            current = directory
            directory.mkdir()
        current = out
        remove_stale(out)
        staging = temp_dir_beside(out)
        for file, content in files.items():
            current = out / file
            (staging / file).write_bytes(content)
        fsync_tree(staging)
        if missing and missing[0] == out:
            replace_directory(staging, out, replace=False)  # the new directory appears with its three files
            staging = None
        else:
            for target in targets:
                current = target
                existed = target.exists() or target.is_symlink()
                os.replace(staging / target.name, target)
                if not existed:
                    moved.append(target)
            fsync_directory(out)
    except OSError as exc:
        for target in moved:
            target.unlink(missing_ok=True)
        if missing and missing[0] == out and staging is None and out.is_dir():
            shutil.rmtree(out, ignore_errors=True)
        for directory in missing[1:]:
            try:
                directory.rmdir()
            except OSError:
                break
        raise ExportError(f"cannot write {current}: {exc.strerror or exc}") from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return targets


def _tensor_lines(prefix: str, kind: str, tensors) -> list[str]:
    lines = []
    for tensor_name, tensor in sorted(tensors.items(), key=lambda item: item[1].position):
        macro = f"{prefix}_{kind}_{_c_name(tensor_name).upper()}"
        shape = "x".join(str(d) for d in tensor.shape)
        lines.append(f"#define {macro} {tensor.position}  /* {_c_name(tensor.dtype)} [{shape}] */")
        if tensor.scale is not None:
            lines.append(f"#define {macro}_SCALE {_c_float(tensor.scale)}")
            lines.append(f"#define {macro}_ZERO_POINT {int(tensor.zero_point)}")
    return lines


def _header(name, prefix, variant_name, sha256, content, arena, one, by_input, by_output) -> str:
    """``one``: the model's ``OneValue`` (F = K = H = 1), its numbers as C macros."""
    lines = [f"/* {variant_name} of an edgernn bundle (sha256 {sha256}), {len(content)} bytes of flash.",
             "   Positions, scales and zero points are read from the model file itself. */",
             f"#ifndef {prefix}_H", f"#define {prefix}_H", "", "#include <stddef.h>", "",
             "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
             f"extern const unsigned char {name}[];", f"extern const size_t {name}_len;", "",
             "/* the smallest tensor arena TFLM allocates this model in */",
             f"#define {prefix}_ARENA_BYTES {int(arena)}",
             "/* tensor positions in the model's input and output lists (TFLM addresses tensors by position) */",
             *_tensor_lines(prefix, "INPUT", by_input),
             *_tensor_lines(prefix, "OUTPUT", by_output),
             "/* raw units -> model input: ((value - last value, if DIFFERENCE) - OFFSET) / DIVISOR; the output to",
             "   raw units: output * OUTPUT_DIVISOR + OUTPUT_OFFSET (+ the last value, if RELATIVE) */",
             f"#define {prefix}_DIFFERENCE {int(bool(one.difference))}",
             f"#define {prefix}_OFFSET {_c_float(one.numbers[0], '')}",
             f"#define {prefix}_DIVISOR {_c_float(one.numbers[1], '')}",
             f"#define {prefix}_OUTPUT_OFFSET {_c_float(one.numbers[2], '')}",
             f"#define {prefix}_OUTPUT_DIVISOR {_c_float(one.numbers[3], '')}",
             f"#define {prefix}_RELATIVE {int(bool(one.relative))}",
             "", "#ifdef __cplusplus", "}", "#endif", f"#endif  /* {prefix}_H */", ""]
    return "\n".join(lines)


def _source(name, prefix, header, variant_name, content) -> str:
    aligned = f"{prefix}_ALIGNED"
    return "\n".join([
        f'/* {variant_name} of an edgernn bundle: see {header} */', f'#include "{header}"', "",
        "/* TFLM wants the model 16-byte aligned: C++11 alignas, C11 _Alignas, else the GNU attribute (C99) */",
        "#if defined(__cplusplus) && __cplusplus >= 201103L", f"#define {aligned} alignas(16)",
        "#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L", f"#define {aligned} _Alignas(16)",
        "#elif defined(__GNUC__) || defined(__clang__)", f"#define {aligned} __attribute__((aligned(16)))",
        "#else", '#error "no way known to align the model array to 16 bytes with this compiler"', "#endif", "",
        '#ifdef __cplusplus', 'extern "C" {', '#endif',
        f"{aligned} const unsigned char {name}[] = {{", f"  {_array(content)}", "};",
        f"const size_t {name}_len = {len(content)};", '#ifdef __cplusplus', '}', '#endif',
        f"#undef {aligned}", ""])


def _order(tensors) -> str:
    return ", ".join(f"{_c_name(n)} ({t.position})" for n, t in sorted(tensors.items(), key=lambda i: i[1].position))


def _example(name, prefix, header, variant_name, entry, by_input, by_output) -> str:
    handover = "\n".join(
        f"    CopyState(interpreter.output({prefix}_OUTPUT_{_c_name(o).upper()}), "
        f"interpreter.input({prefix}_INPUT_{_c_name(i).upper()}));" for i, o in entry.state_pairs)
    return f"""// A TensorFlow Lite Micro step loop for {variant_name} (a sketch: add your op resolver's ops and I/O).
// The state (the recurrent layers' hidden states) is handed from the outputs back to the inputs after each
// invoke; copy it before the next invoke, which may reuse the outputs' memory.
// Tensors by position: inputs {_order(by_input)}; outputs {_order(by_output)}.
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
    // interpreter.output({prefix}_OUTPUT_Y)->data... is the next-value prediction (to raw units with
    // {prefix}_OUTPUT_DIVISOR/{prefix}_OUTPUT_OFFSET, plus the last reading if {prefix}_RELATIVE)
  }}
}}
"""
