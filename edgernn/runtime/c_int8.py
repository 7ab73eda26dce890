"""A bundle's full-integer step model (``tflite-int8``) as self-contained C99: the .tflite graph's own integer
arithmetic, no interpreter, no float in the step.

Read from the variant's file (the schema reader that comes with ai-edge-litert), op by op: FULLY_CONNECTED, ADD,
SUB and MUL with TFLite's fixed-point requantization (``MultiplyByQuantizedMultiplier``, the multipliers computed
from the file's scales as TFLite's Prepare does), LOGISTIC and TANH as the 256-entry tables TFLite's optimized
kernels build, and the slices, splits and reshapes as copies. Any other op, dtype or option is refused with its
name: the C must compute what the file says or not exist. The reference kernels compute LOGISTIC and TANH in
fixed point instead of from a table, so a code may differ by one there (verify reports the agreement).

The step takes and returns int8 codes (``edgernn_step``, caller-owned buffers, the state order of the float C
step); a model of one value in and out also gets ``edgernn_step_one(z) -> y`` in model units (double), which
quantizes ``z``, steps the states kept in the library, hands each state over to the next step's quantization
with the same table the predictor would use, and dequantizes ``y``: the predictor's scalar path, moved into C.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from edgernn.errors import BackendError
from edgernn.runtime.manifest import SIGNATURE, state_output
from edgernn.runtime.quantization import requantize
from edgernn.runtime.tflite_signature import schema

FUNCTION, ONE_STREAM = "edgernn_step", "edgernn_step_one"
INT8_MIN, INT8_MAX = -128, 127
MAX_ELEMENTS = 1 << 16  # per tensor: every tensor is an array on the C step's stack (and indexed by uint16)
MAX_STACK = 1 << 20  # bytes of all of them together
DATA_TYPES = {name: np.dtype(name) for name in ("int8", "uint8", "int16", "int32", "int64", "float16", "float32")}
TABLES = {"TANH": np.tanh, "LOGISTIC": lambda v: np.float32(1) / (np.float32(1) + np.exp(-v))}

MBQM = """static inline int32_t mbqm(int32_t x, int32_t multiplier, int shift) {
  const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
  return rdbpot(srdhm(x * (1 << left), multiplier), right);
}
"""  # given only to a model that uses it: an unused static function is a warning (clang -Wunused-function)
PRELUDE = """#include <math.h>
#include <stdint.h>
#include <string.h>

/* TFLite's fixed-point helpers (gemmlowp), integer only */
static inline int32_t srdhm(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) return INT32_MAX;
  const int64_t ab = (int64_t)a * (int64_t)b;
  const int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
  return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}
static inline int32_t rdbpot(int32_t x, int exponent) {
  const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
  const int32_t remainder = x & mask, threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}
static inline int8_t clamp8(int32_t v, int32_t low, int32_t high) { return (int8_t)(v < low ? low : v > high ? high : v); }
"""


class Tensor(NamedTuple):
    index: int
    dtype: str  # lower case TensorType name
    shape: tuple[int, ...]
    size: int  # elements (the file's batch is 1)
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    data: np.ndarray | None  # constants only

    @property
    def scale(self) -> float:
        return self.scales[0]

    @property
    def zero_point(self) -> int:
        return self.zero_points[0]


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier``: ``real`` as a Q31 significand and a power-of-two exponent."""
    if real == 0.0:
        return 0, 0
    significand, shift = math.frexp(real)
    fixed = math.floor(significand * (1 << 31) + 0.5)  # std::round: half away from zero (positive here)
    if fixed == 1 << 31:
        fixed, shift = fixed // 2, shift + 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        return (1 << 31) - 1, 30
    return int(fixed), int(shift)


def _srdhm(a: int, b: int) -> int:
    """``srdhm`` of the C prelude in Python integers (for tables built at generation time)."""
    if a == b == -(1 << 31):
        return (1 << 31) - 1
    ab = a * b
    ab += (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return abs(ab) >> 31 if ab >= 0 else -(abs(ab) >> 31)  # C's division: toward zero


def _rdbpot(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    remainder, threshold = x & mask, (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def _table(kind: str, source: Tensor, target: Tensor) -> np.ndarray:
    """TFLite's ``LUTPopulate`` of an activation, in float32 as it computes it: every input code's output code."""
    codes = np.arange(INT8_MIN, INT8_MAX + 1)
    with np.errstate(over="ignore"):
        real = np.float32(source.scale) * (codes - source.zero_point).astype(np.float32)
        moved = TABLES[kind](real.astype(np.float32)).astype(np.float32) * (np.float32(1) / np.float32(target.scale))
    rounded = np.where(moved >= 0, np.floor(moved + np.float32(0.5)), np.ceil(moved - np.float32(0.5)))
    return np.clip(rounded.astype(np.int64) + target.zero_point, INT8_MIN, INT8_MAX)


class Graph(NamedTuple):
    tensors: dict[int, Tensor]
    operators: list[tuple[str, list[int], list[int], object]]  # (op name, inputs, outputs, builtin options)
    inputs: dict[str, int]  # signature name -> tensor index
    outputs: dict[str, int]


def read_graph(content: bytes) -> Graph:
    """The int8 step model's tensors and ops from the .tflite bytes (object API of the schema reader)."""
    reader = schema()
    try:
        model = reader.ModelT.InitFromPackedBuf(content, 0)
        signature = next(s for s in model.signatureDefs or [] if s.signatureKey == SIGNATURE.encode())
        graph = model.subgraphs[signature.subgraphIndex]
        names = {value: name for name, value in vars(reader.BuiltinOperator).items() if not name.startswith("_")}
        types = {value: name.lower() for name, value in vars(reader.TensorType).items() if not name.startswith("_")}
        tensors = {i: _tensor(i, t, types, model.buffers, content) for i, t in enumerate(graph.tensors)}
        codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
        operators = [(names.get(codes[op.opcodeIndex], "CUSTOM"), [int(i) for i in op.inputs],
                      [int(i) for i in op.outputs], op.builtinOptions) for op in graph.operators]
        inputs = {i.name.decode(): int(i.tensorIndex) for i in signature.inputs}
        outputs = {o.name.decode(): int(o.tensorIndex) for o in signature.outputs}
    except StopIteration:
        raise BackendError(f"the int8 model has no {SIGNATURE!r} signature") from None
    except BackendError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged flatbuffer makes the generated reader raise any type
        raise BackendError(f"cannot read the int8 model for its C step: {type(exc).__name__}") from None
    return Graph(tensors, operators, inputs, outputs)


def _tensor(index: int, t, types: dict, buffers, content: bytes) -> Tensor:
    q = t.quantization
    scales = tuple(float(s) for s in (q.scale if q is not None and q.scale is not None else []))
    zero_points = tuple(int(z) for z in (q.zeroPoint if q is not None and q.zeroPoint is not None else []))
    dtype = types.get(t.type, "unknown")
    buffer = buffers[t.buffer] if 0 < t.buffer < len(buffers) else None
    data = None
    if buffer is not None and (buffer.data is not None or buffer.offset > 1):
        raw = bytes(buffer.data) if buffer.data is not None else content[buffer.offset:buffer.offset + buffer.size]
        if dtype not in DATA_TYPES:
            raise BackendError(f"tensor {index} holds {dtype} constants: the C step is for int8 models")
        data = np.frombuffer(raw, dtype=DATA_TYPES[dtype])
    shape = [int(d) for d in (t.shape if t.shape is not None else [])]
    size = int(np.prod(shape)) if shape else 1
    if any(d < 0 for d in shape) or size > MAX_ELEMENTS:
        raise BackendError(f"tensor {index} has shape {shape}: more than {MAX_ELEMENTS} values, or a negative size")
    if data is not None and data.size != size:
        raise BackendError(f"tensor {index} holds {data.size} values for its shape {shape}")
    if not all(math.isfinite(v) and v > 0 for v in scales) or not all(-128 <= z <= 127 for z in zero_points):
        raise BackendError(f"tensor {index} has a scale that is not a positive number or a zero point outside int8")
    return Tensor(index, dtype, tuple(shape), size, scales, zero_points, data)


def _array(name: str, ctype: str, values) -> str:
    flat = np.asarray(values).reshape(-1)
    return f"static const {ctype} {name}[{flat.size}] = {{{','.join(str(int(v)) for v in flat)}}};"


def _activation_range(options, out: Tensor) -> tuple[int, int]:
    """TFLite's ``CalculateActivationRangeQuantized`` for a fused activation (NONE, RELU, RELU6, RELU_N1_TO_1)."""
    kind = getattr(options, "fusedActivationFunction", 0) or 0
    def code(v):  # TfLiteRound: half away from zero
        ratio = float(np.float32(v) / np.float32(out.scale))
        return out.zero_point + int(math.copysign(math.floor(abs(ratio) + 0.5), ratio))
    ranges = {0: (INT8_MIN, INT8_MAX), 1: (max(INT8_MIN, code(0)), INT8_MAX),
              2: (max(INT8_MIN, code(-1)), min(INT8_MAX, code(1))), 3: (max(INT8_MIN, code(0)), min(INT8_MAX, code(6)))}
    if kind not in ranges:
        raise BackendError(f"fused activation {kind} has no C form here")
    return ranges[kind]


class Writer:
    """C text for one graph: constants (``decls``) and the per-row body, tensors as local int8 arrays."""

    def __init__(self, graph: Graph, lanes: int = 1):
        self.graph, self.decls, self.body, self.count, self.declared = graph, [], [], 0, set()
        self.lanes = lanes  # a FULLY_CONNECTED's outputs padded to a multiple of this (see ``fully_connected``)
        self.aliases: set[int] = set()  # tensors that are pointers into another tensor, not arrays of their own
        self.accumulators = 0  # bytes of the largest FULLY_CONNECTED's int32 sums (on the stack too)

    def name(self, index: int) -> str:
        return f"t{index}"

    def operand(self, index: int, size: int) -> str:
        """An element of operand ``index`` at ``j`` for an output of ``size`` elements (a scalar broadcast)."""
        t = self.graph.tensors[index]
        if t.data is not None and index not in self.declared:
            if t.dtype != "int8":
                raise BackendError(f"a constant {t.dtype} operand: the C step takes int8 ones only")
            self.declared.add(index)
            self.decls.append(_array(self.name(index), "int8_t", t.data))
        if t.size == size:
            return f"{self.name(index)}[j]"
        if t.size == 1:
            return f"{self.name(index)}[0]"
        raise BackendError(f"an operand of {t.size} values against {size}: no broadcast of that kind in the C step")

    def fully_connected(self, ins, out: Tensor, options) -> None:
        x, w = (self.graph.tensors[i] for i in ins[:2])
        rows = out.size
        bias = self.graph.tensors[ins[2]] if len(ins) > 2 and ins[2] >= 0 else None
        if (w.data is None or w.dtype != "int8" or any(w.zero_points) or getattr(options, "weightsFormat", 0)
                or w.size != rows * x.size or len(w.scales) not in (1, rows)):
            raise BackendError("a FULLY_CONNECTED whose weights are not constant symmetric int8 of its sizes")
        if bias is not None and (bias.data is None or bias.dtype != "int32" or bias.size != rows):
            raise BackendError("a FULLY_CONNECTED whose bias is not a constant int32 per output")
        bias = None if bias is None else bias.data
        weights = w.data.reshape(rows, x.size).astype(np.int64)
        folded = (np.zeros(rows, np.int64) if bias is None else bias.astype(np.int64)) - x.zero_point * weights.sum(1)
        scales = w.scales if len(w.scales) == rows else w.scales * rows
        pairs = [quantize_multiplier(x.scale * s / out.scale) for s in scales]
        k, (low, high) = self._next(), _activation_range(options, out)
        # the sums padded with zero weights to whole vectors (``lanes`` on a host): no scalar tail per input (150
        # outputs of a 50-unit GRU: 6 left over from each 16-lane pass, a third of its step); unpadded in firmware
        padded = rows if rows < self.lanes else -(-rows // self.lanes) * self.lanes
        self.accumulators = max(self.accumulators, 4 * padded)
        columns = np.zeros((x.size, padded), np.int64)
        columns[:, :rows] = weights.T
        # requantized in one rounding (LiteRT's FULLY_CONNECTED does: bit-equal to its reference kernels, tested);
        # the weights stored input-major ([I][O]): each input adds its column to every output's sum, a loop the
        # compiler vectorises across outputs (one dot product per output would end in a horizontal sum each)
        self.decls += [_array(f"FC{k}_W", "int8_t", columns),
                       _array(f"FC{k}_B", "int32_t", np.concatenate([folded, np.zeros(padded - rows, np.int64)])),
                       _array(f"FC{k}_M", "int64_t", [m for m, _ in pairs]),  # mbqm1 per channel, as 64-bit
                       _array(f"FC{k}_R", "int64_t", [1 << (30 - s) for _, s in pairs]),  # lanes: vectorised
                       _array(f"FC{k}_T", "int64_t", [31 - s for _, s in pairs])]
        self.body.append(
            f"{{ int32_t acc[{padded}]; memcpy(acc, FC{k}_B, sizeof acc); for (int i = 0; i < {x.size}; ++i) {{ "
            f"const int32_t v = {self.name(x.index)}[i]; const int8_t *w = FC{k}_W + i * {padded}; "
            f"for (int o = 0; o < {padded}; ++o) acc[o] += v * w[o]; }} "
            f"for (int o = 0; o < {rows}; ++o) {self.name(out.index)}[o] = clamp8((int32_t)(((int64_t)acc[o] * FC{k}_M[o] + "
            f"FC{k}_R[o]) >> FC{k}_T[o]) + {out.zero_point}, {low}, {high}); }}")

    def add_or_sub(self, ins, out: Tensor, options, op: str) -> None:
        """TFLite's int8 ADD (and SUB: input 2's multiplier negated, then added): each operand's code shifted left
        20 and rescaled (a table of its 256 codes: the same integers as computing them per element, three times
        fewer 64-bit multiplies), summed, rescaled."""
        a, b = (self.graph.tensors[i] for i in ins)
        twice = 2.0 * max(a.scale, b.scale)
        mo, so = quantize_multiplier(twice / ((1 << 20) * out.scale))
        if so > 0:  # TFLite's Prepare refuses an output multiplier of 1 or more (QuantizeMultiplierSmallerThanOneExp)
            raise BackendError(f"an {op} whose output scale is below 2**-20 of its inputs'")
        low, high = _activation_range(options, out)
        k, terms = self._next(), []
        for side, t, sign in (("A", a, 1), ("B", b, -1 if op == "SUB" else 1)):
            m, s = quantize_multiplier(t.scale / twice)
            if t.size not in (out.size, 1) or t.dtype != "int8":
                raise BackendError(f"an {op} operand of {t.size} {t.dtype} values against {out.size}")
            table = [_rdbpot(_srdhm(int(c - t.zero_point) << 20, sign * m), -s) for c in range(INT8_MIN, INT8_MAX + 1)]
            at = "j" if t.size == out.size else "0"
            if t.data is not None:  # a constant operand: its scaled values, not its codes
                self.decls.append(_array(f"ADD{k}{side}", "int32_t", [table[int(c) - INT8_MIN] for c in t.data]))
                terms.append(f"ADD{k}{side}[{at}]")
            else:
                self.decls.append(_array(f"ADD{k}{side}", "int32_t", np.roll(table, 128)))
                terms.append(f"ADD{k}{side}[(uint8_t){self.name(t.index)}[{at}]]")
        self.body.append(
            f"for (int j = 0; j < {out.size}; ++j) {self.name(out.index)}[j] = clamp8(rdbpot(srdhm({terms[0]} + "
            f"{terms[1]}, {mo}), {-so}) + {out.zero_point}, {low}, {high});")

    def mul(self, ins, out: Tensor, options) -> None:
        a, b = (self.graph.tensors[i] for i in ins)
        m, s = quantize_multiplier(a.scale * b.scale / out.scale)
        if 255 * 255 << max(s, 0) >= 1 << 31:  # mbqm's x * (1 << shift) would overflow int32
            raise BackendError("a MUL whose output scale is too small for 32-bit requantization")
        low, high = _activation_range(options, out)
        ea, eb = self.operand(a.index, out.size), self.operand(b.index, out.size)
        self.body.append(
            f"for (int j = 0; j < {out.size}; ++j) {self.name(out.index)}[j] = clamp8(mbqm((int32_t)({ea} - "
            f"({a.zero_point})) * (int32_t)({eb} - ({b.zero_point})), {m}, {s}) + {out.zero_point}, {low}, {high});")

    def table(self, kind: str, ins, out: Tensor) -> None:
        if self.graph.tensors[ins[0]].size != out.size:
            raise BackendError(f"a {kind} of {self.graph.tensors[ins[0]].size} values into {out.size}")
        k = self._next()
        self.decls.append(_array(f"LUT{k}", "int8_t", np.roll(_table(kind, self.graph.tensors[ins[0]], out), 128)))
        self.body.append(f"for (int j = 0; j < {out.size}; ++j) "
                         f"{self.name(out.index)}[j] = LUT{k}[(uint8_t){self.name(ins[0])}[j]];")

    def requantize(self, ins, out: Tensor) -> None:
        x = self.graph.tensors[ins[0]]
        m, s = quantize_multiplier(x.scale / out.scale)
        if x.size != out.size or 255 << max(s, 0) >= 1 << 31:
            raise BackendError("a QUANTIZE that changes the size, or with a scale too small for 32-bit arithmetic")
        self.body.append(f"for (int j = 0; j < {out.size}; ++j) {self.name(out.index)}[j] = clamp8(mbqm("
                         f"(int32_t){self.name(x.index)}[j] - ({x.zero_point}), {m}, {s}) + {out.zero_point}, "
                         f"{INT8_MIN}, {INT8_MAX});")

    def gather(self, source: Tensor, out: Tensor, picked: np.ndarray) -> None:
        """``out`` = elements ``picked`` of ``source`` (same quantization): a copy, contiguous or by index."""
        if (source.scales, source.zero_points) != (out.scales, out.zero_points):
            raise BackendError("a slice or split that changes quantization: no C form here")
        picked = picked.reshape(-1)
        if picked.size != out.size:
            raise BackendError(f"a slice or split of {picked.size} values into a tensor of {out.size}")
        if picked.size and np.array_equal(picked, np.arange(picked[0], picked[0] + picked.size)):
            # contiguous: a pointer into the source, nothing copied (no op writes a tensor another one produced)
            self.aliases.add(out.index)
            self.body.append(f"const int8_t *{self.name(out.index)} = {self.name(source.index)} + {int(picked[0])};")
            return
        k = self._next()
        self.decls.append(_array(f"IDX{k}", "uint16_t", picked))
        self.body.append(f"for (int j = 0; j < {picked.size}; ++j) "
                         f"{self.name(out.index)}[j] = {self.name(source.index)}[IDX{k}[j]];")

    def _next(self) -> int:
        self.count += 1
        return self.count


def _slice(graph: Graph, ins, options) -> np.ndarray:
    """The source indices a STRIDED_SLICE picks (constant begin, end and strides; no ellipsis or new axes)."""
    source = graph.tensors[ins[0]]
    begin, end, strides = (graph.tensors[i].data for i in ins[1:4])
    if begin is None or end is None or strides is None or options.ellipsisMask or options.newAxisMask \
            or getattr(options, "offset", False):
        raise BackendError("a STRIDED_SLICE with computed bounds, an ellipsis, new axes or offsets: no C form here")
    picks = []
    for k in range(len(source.shape)):
        if options.shrinkAxisMask >> k & 1:
            picks.append(int(begin[k]))
        else:
            start = None if options.beginMask >> k & 1 else int(begin[k])
            stop = None if options.endMask >> k & 1 else int(end[k])
            picks.append(slice(start, stop, int(strides[k])))
    return np.arange(source.size).reshape(source.shape)[tuple(picks)]


def _emit(writer: Writer, op: str, ins: list[int], outs: list[int], options) -> None:
    tensors = writer.graph.tensors
    for index in [ins[0], *outs] if op != "SPLIT" else [ins[1], *outs]:
        if tensors[index].dtype != "int8":
            raise BackendError(f"{op} on a {tensors[index].dtype} tensor: the C step is for int8 models")
    out = tensors[outs[0]]
    if op == "FULLY_CONNECTED":
        writer.fully_connected(ins, out, options)
    elif op in ("ADD", "SUB"):
        writer.add_or_sub(ins, out, options, op)
    elif op == "MUL":
        writer.mul(ins, out, options)
    elif op in TABLES:
        writer.table(op, ins, out)
    elif op == "QUANTIZE":
        writer.requantize(ins, out)
    elif op in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"):
        writer.gather(tensors[ins[0]], out, np.arange(tensors[ins[0]].size))
    elif op == "STRIDED_SLICE":
        writer.gather(tensors[ins[0]], out, _slice(writer.graph, ins, options))
    elif op == "SPLIT":
        axis, source = tensors[ins[0]].data, tensors[ins[1]]
        if axis is None or axis.size != 1:
            raise BackendError("a SPLIT along a computed axis: no C form here")
        parts = np.split(np.arange(source.size).reshape(source.shape), len(outs), axis=int(axis[0]))
        for index, part in zip(outs, parts):
            writer.gather(source, tensors[index], part)
    else:
        raise BackendError(f"the int8 model holds a {op} op, which the C step does not implement")


def int8_source(content: bytes, entry, info, one_stream: bool = True, lanes: int = 1) -> str:
    """The C99 source of the int8 variant ``content`` (its manifest ``entry``, the model's ``ModelInfo``; with
    ``ONE_STREAM`` for a model of one value in and out unless ``one_stream`` is off; ``lanes``: the int32 sums
    of a vector register, a host's: its weights padded to whole vectors, for speed over size).

    The file is untrusted: anything it holds that the C could not compute exactly as TFLite does, or that would
    make the C read or write outside its arrays, is refused (BackendError, one line), never generated."""
    graph = read_graph(content)
    try:
        return _source(graph, entry, info, one_stream, lanes)
    except BackendError:
        raise
    except (KeyError, IndexError, ValueError, TypeError, AttributeError, ZeroDivisionError, OverflowError) as exc:
        raise BackendError(f"the int8 model cannot be written as C: its graph is damaged or unusual "
                           f"({type(exc).__name__})") from None


def _check_signature(graph: Graph, entry, order: list[str], units: dict) -> None:
    """The step's inputs and outputs are the manifest's, int8 and of its sizes: the C copies exactly that many."""
    missing = [n for n in ["x", *order] if n not in graph.inputs] + \
        [n for n in ["y", *map(state_output, order)] if n not in graph.outputs]
    if missing:
        raise BackendError(f"the int8 model's signature lacks {', '.join(missing)}")
    sizes = {"x": int(np.prod(entry.input("x").shape[1:])), "y": int(np.prod(entry.output("y").shape[1:])),
             **{n: units[n] for n in order}, **{state_output(n): units[n] for n in order}}
    for name, size in sizes.items():
        tensor = graph.tensors[graph.inputs.get(name, graph.outputs.get(name))]
        if tensor.size != size or tensor.dtype != "int8" or tensor.data is not None:
            raise BackendError(f"the int8 model's {name} is {tensor.dtype} of {tensor.size} values, not int8 of {size}")


def _source(graph: Graph, entry, info, one_stream: bool, lanes: int) -> str:
    order = [name for name, _ in info.state_inputs()]
    units = dict(info.state_inputs())
    _check_signature(graph, entry, order, units)
    writer = Writer(graph, lanes)
    for op, ins, outs, options in graph.operators:
        _emit(writer, op, ins, outs, options)
    tensors = graph.tensors
    x, y = tensors[graph.inputs["x"]], tensors[graph.outputs["y"]]
    bound = [f"const int8_t *{writer.name(graph.inputs['x'])} = x;"]
    bound += [f"const int8_t *{writer.name(graph.inputs[n])} = state_in[{k}];" for k, n in enumerate(order)]
    inputs = set(graph.inputs.values())
    written = dict.fromkeys(i for _, _, outs, _ in graph.operators for i in outs
                            if i not in inputs and i not in writer.aliases)
    local = [f"int8_t {writer.name(i)}[{tensors[i].size}];" for i in written]
    if sum(tensors[i].size for i in written) + writer.accumulators > MAX_STACK:
        raise BackendError(f"the int8 model's tensors need more than {MAX_STACK} bytes of stack")
    copies = [f"memcpy(y, {writer.name(y.index)}, {y.size});"]
    copies += [f"memcpy(state_out[{k}], {writer.name(graph.outputs[state_output(n)])}, {units[n]});"
               for k, n in enumerate(order)]
    states = len(order)
    offsets = np.concatenate([[0], np.cumsum([units[n] for n in order])]).astype(int).tolist()
    lines = ["/* generated by edgernn from a bundle's tflite-int8 file: its integer step, no interpreter */",
             PRELUDE, *([MBQM] if any("mbqm(" in line for line in writer.body) else []), *writer.decls, "",
             f"int edgernn_features(void) {{ return {x.size}; }}",
             f"int edgernn_outputs(void) {{ return {y.size}; }}",
             f"int edgernn_states(void) {{ return {states}; }}", "",
             "static void edgernn_row(const int8_t *x, const int8_t *const *state_in, int8_t *y, "
             "int8_t *const *state_out)", "{", *bound, *local, *writer.body, *copies, "}", "",
             f"void {FUNCTION}(int batch, const int8_t *x, const int8_t *const *state_in, int8_t *y, "
             "int8_t *const *state_out)", "{",
             f"const int8_t *in[{states}]; int8_t *out[{states}];",
             "for (int b = 0; b < batch; ++b) {",
             *[f"in[{k}] = state_in[{k}] + b * {units[n]}; out[{k}] = state_out[{k}] + b * {units[n]};"
               for k, n in enumerate(order)],
             f"edgernn_row(x + b * {x.size}, in, y + b * {y.size}, out);", "}", "}", ""]
    if x.size == 1 and y.size == 1 and one_stream:
        lines += _one_stream(entry, order, offsets)
    return "\n".join(lines) + "\n"


def handover(entry, order: list[str], offsets: list[int], target: str, source: str) -> list[str]:
    """C that hands each state of ``source`` (the step's int8 outputs) over to ``target`` in the next step's
    quantization: a copy where the two are equal, else the table ``requantize`` makes (the predictor's own)."""
    lines = []
    for k, name in enumerate(order):
        codes = np.arange(INT8_MIN, INT8_MAX + 1)
        mapped = requantize(codes, entry.output(state_output(name)), entry.input(name))
        at, size = offsets[k], offsets[k + 1] - offsets[k]
        if np.array_equal(mapped, codes):
            lines.append(f"memcpy({target} + {at}, {source} + {at}, {size});")
        else:
            lines += [_array(f"HAND{k}", "int8_t", np.roll(mapped, 128)),
                      f"for (int j = 0; j < {size}; ++j) {target}[{at} + j] = HAND{k}[(uint8_t){source}[{at} + j]];"]
    return lines


def quantize_x(entry, z: str, x: str) -> list[str]:
    """C that quantizes the double ``z`` into the int8 ``x`` as the predictor does (half to even, saturated)."""
    spec = entry.input("x")
    return [f"double q_{x} = rint({z} / {spec.scale!r} + {spec.zero_point});",
            f"q_{x} = q_{x} < {INT8_MIN} ? {INT8_MIN} : q_{x} > {INT8_MAX} ? {INT8_MAX} : q_{x};",
            f"const int8_t {x} = (int8_t)q_{x};"]


def dequantize_y(entry, y: str) -> str:
    """The C expression of the int8 ``y`` dequantized as the predictor does (a double)."""
    spec = entry.output("y")
    return f"(double)((int32_t){y} - ({spec.zero_point})) * {spec.scale!r}"


def _one_stream(entry, order: list[str], offsets: list[int]) -> list[str]:
    """``ONE_STREAM``: ``z`` (model units) quantized as the predictor does, one step over the states kept here,
    each handed over to the next step's quantization, ``y`` dequantized."""
    total, count = offsets[-1], len(order)
    pointers = ", ".join(f"{{0}} + {offset}" for offset in offsets[:-1])
    return [f"static int8_t edgernn_one[{total}];",
            "void *edgernn_one_states(void) { return edgernn_one; }",
            f"double {ONE_STREAM}(double z)", "{", *quantize_x(entry, "z", "x"),
            f"int8_t y; int8_t next[{total}];",
            f"const int8_t *in[{count}] = {{{pointers.format('edgernn_one')}}};",
            f"int8_t *out[{count}] = {{{pointers.format('next')}}};",
            "edgernn_row(&x, in, &y, out);", *handover(entry, order, offsets, "edgernn_one", "next"),
            f"return {dequantize_y(entry, 'y')};", "}"]
