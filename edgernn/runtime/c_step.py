"""A bundle's float32 step model as self-contained C99: no interpreter, no malloc, weights as ``const`` arrays.

The same equations as ``edgernn.runtime.cells`` (Keras' SimpleRNN, GRU and LSTM cells, stacked, then the Dense
head), written out for one model: every size is a constant, so the compiler unrolls and vectorises what it can.
The step reads ``x`` ``[batch, F]`` and the states, and writes ``y`` ``[batch, K]`` and the next states
(caller-owned buffers, in ``ModelInfo.state_inputs`` order); standard library only, so a device can generate it.
A model of one value in and one out also gets ``edgernn_step_one(x) -> y`` over states kept in the library.
"""

from __future__ import annotations

import numpy as np

from edgernn.runtime.cell_table import CELLS
from edgernn.errors import BackendError

FUNCTION = "edgernn_step"
ONE_STREAM = "edgernn_step_one"  # one value of one stream, the states inside the library (models of F = K = 1)
# the arguments of tanhf and expf are clamped where the float result no longer moves (tanhf(10) is 1.0f, expf(88)
# is finite): the c backend's vector tanhf/expf (-ffast-math, libmvec) return NaN for huge ones, which an input
# at the predictor's +-1e6 limit makes; inside the clamps the results are the unclamped ones
C_ACTIVATIONS = {
    "tanh": "tanhf(v < -10.0f ? -10.0f : v > 10.0f ? 10.0f : v)",
    "sigmoid": "1.0f / (1.0f + expf(v < -88.0f ? 88.0f : v > 88.0f ? -88.0f : -v))",
    "relu": "(v > 0.0f ? v : 0.0f)",
    "linear": "v",
    "hard_sigmoid": "(v < -3.0f ? 0.0f : v > 3.0f ? 1.0f : v / 6.0f + 0.5f)",
}


def _array(name: str, values: np.ndarray) -> str:
    flat = np.asarray(values, dtype=np.float32).reshape(-1)
    if not np.isfinite(flat).all():
        raise BackendError(f"weight {name} holds NaN or inf: no C step for it")
    body = ",".join(f"{float(v):.9g}f" for v in flat)
    return f"static const float {name}[{flat.size}] = {{{body}}};"


def _activation(name: str, kind: str) -> str:
    if kind not in C_ACTIVATIONS:
        raise BackendError(f"activation {kind!r} has no C form here")
    return f"static float {name}(float v) {{ return {C_ACTIVATIONS[kind]}; }}"


def _matvec(out: str, vector: str, size: int, matrix: str, width: int, offset: int = 0, count: int | None = None) -> str:
    """``out[j] += sum_i vector[i] * matrix[i * width + offset + j]`` for j < count (row-major Keras kernels)."""
    count = width if count is None else count
    return (f"for (int i = 0; i < {size}; ++i) {{ const float v = {vector}[i]; const float *row = {matrix} + i * "
            f"{width} + {offset}; for (int j = 0; j < {count}; ++j) {out}[j] += v * row[j]; }}")


def _layer(i: int, layer, weights: dict, inputs: int, state_at: int) -> tuple[list[str], list[str]]:
    """Declarations and the body of layer ``i``: reads ``in`` (``inputs`` values), writes ``out`` (units)."""
    cell, units = CELLS[layer.cell], layer.units
    width = cell.gates * units
    prefix = f"L{i}"
    decls = [_array(f"{prefix}_K", weights[f"layer{i}/kernel"]),
             _array(f"{prefix}_U", weights[f"layer{i}/recurrent_kernel"]),
             _activation(f"{prefix}_act", layer.activation)]
    if cell.gated:
        decls.append(_activation(f"{prefix}_rec", layer.recurrent_activation))
    bias = weights.get(f"layer{i}/bias")
    split = bias is not None and np.asarray(bias).ndim == 2
    if bias is not None:
        decls.append(_array(f"{prefix}_B", bias))
    h_in, h_out = f"state_in[{state_at}] + b * {units}", f"state_out[{state_at}] + b * {units}"
    body = [f"{{ /* layer {i}: {layer.cell}, {units} units */",
            f"const float *h = {h_in}; float *hn = {h_out};",
            f"float z[{width}];",
            f"for (int j = 0; j < {width}; ++j) z[j] = {f'{prefix}_B[j]' if bias is not None else '0.0f'};",
            _matvec("z", "in", inputs, f"{prefix}_K", width)]
    if layer.cell == "simple_rnn":
        body += [_matvec("z", "h", units, f"{prefix}_U", width),
                 f"for (int j = 0; j < {units}; ++j) {{ hn[j] = {prefix}_act(z[j]); out[j] = hn[j]; }}"]
    elif layer.cell == "lstm":
        c_in, c_out = f"state_in[{state_at + 1}] + b * {units}", f"state_out[{state_at + 1}] + b * {units}"
        body += [_matvec("z", "h", units, f"{prefix}_U", width),
                 f"const float *c = {c_in}; float *cn = {c_out};",
                 f"for (int j = 0; j < {units}; ++j) {{",
                 f"  const float ig = {prefix}_rec(z[j]), fg = {prefix}_rec(z[{units} + j]);",
                 f"  const float og = {prefix}_rec(z[{3 * units} + j]);",
                 f"  cn[j] = fg * c[j] + ig * {prefix}_act(z[{2 * units} + j]);",
                 f"  hn[j] = og * {prefix}_act(cn[j]); out[j] = hn[j]; }}"]
    elif layer.cell == "gru" and layer.reset_after:
        recurrent_bias = f"{prefix}_B[{width} + j]" if split else "0.0f"
        body += [f"float r[{width}];",
                 f"for (int j = 0; j < {width}; ++j) r[j] = {recurrent_bias};",
                 _matvec("r", "h", units, f"{prefix}_U", width),
                 f"for (int j = 0; j < {units}; ++j) {{",
                 f"  const float zg = {prefix}_rec(z[j] + r[j]), rg = {prefix}_rec(z[{units} + j] + r[{units} + j]);",
                 f"  const float hh = {prefix}_act(z[{2 * units} + j] + rg * r[{2 * units} + j]);",
                 "  hn[j] = zg * h[j] + (1.0f - zg) * hh; out[j] = hn[j]; }"]
    elif layer.cell == "gru":
        body += [f"float zr[{2 * units}] = {{0}}; float rh[{units}]; float hc[{units}] = {{0}};",
                 _matvec("zr", "h", units, f"{prefix}_U", width, 0, 2 * units),
                 f"float zg[{units}];",
                 f"for (int j = 0; j < {units}; ++j) {{ zg[j] = {prefix}_rec(z[j] + zr[j]); "
                 f"rh[j] = {prefix}_rec(z[{units} + j] + zr[{units} + j]) * h[j]; }}",
                 _matvec("hc", "rh", units, f"{prefix}_U", width, 2 * units, units),
                 f"for (int j = 0; j < {units}; ++j) {{ const float hh = {prefix}_act(z[{2 * units} + j] + hc[j]); "
                 "hn[j] = zg[j] * h[j] + (1.0f - zg[j]) * hh; out[j] = hn[j]; }"]
    else:
        raise BackendError(f"no C form for the {layer.cell} cell")
    body.append("}")
    return decls, body


def c_source(info, weights: dict, one_stream: bool = True) -> str:
    """The C99 source of ``info``'s streaming step model (``ModelInfo``) from the bundle's float ``weights``
    (with ``ONE_STREAM`` for a model of one value in and out, unless ``one_stream`` is off: firmware keeps the
    states in a struct of its own)."""
    if getattr(info.mode, "value", info.mode) != "streaming":
        raise BackendError("the C step is for streaming models (a window model re-runs its window every value)")
    features = int(np.asarray(weights["layer0/kernel"]).shape[0])
    outputs = int(np.asarray(weights["head/bias"]).shape[0])
    decls, body, inputs, state_at = [], [], features, 0
    widest = max([features, *(layer.units for layer in info.layers)])
    for i, layer in enumerate(info.layers):
        layer_decls, layer_body = _layer(i, layer, weights, inputs, state_at)
        decls += layer_decls
        body += layer_body + [f"for (int j = 0; j < {layer.units}; ++j) in[j] = out[j];"]
        inputs, state_at = layer.units, state_at + len(layer.state_names)
    decls += [_array("HEAD_K", weights["head/kernel"]), _array("HEAD_B", weights["head/bias"])]
    head = [f"float *yb = y + b * {outputs};",
            f"for (int j = 0; j < {outputs}; ++j) yb[j] = HEAD_B[j];",
            _matvec("yb", "in", inputs, "HEAD_K", outputs)]
    lines = ["/* generated by edgernn from a bundle's float weights: the float32 step model, no interpreter */",
             "#include <math.h>", "", *decls, "",
             f"int edgernn_features(void) {{ return {features}; }}",
             f"int edgernn_outputs(void) {{ return {outputs}; }}",
             f"int edgernn_states(void) {{ return {state_at}; }}", "",
             f"void {FUNCTION}(int batch, const float *x, const float *const *state_in, float *y, "
             "float *const *state_out)", "{",
             "for (int b = 0; b < batch; ++b) {",
             f"float in[{widest}]; float out[{widest}];",
             f"for (int j = 0; j < {features}; ++j) in[j] = x[b * {features} + j];",
             *body, *head, "}", "}", "", *(_one_stream(info, features, outputs) if one_stream else []), ""]
    return "\n".join(lines)


def _one_stream(info, features: int, outputs: int) -> list[str]:
    """``ONE_STREAM``: one value in, one out, the states kept in the library's own memory (each loaded copy has its
    own) and stepped in place, so a call hands nothing but a float across. In place is safe: every layer reads
    all of a state before it writes any of it, but for the same element. None for other shapes."""
    if features != 1 or outputs != 1:
        return []
    sizes = [units for layer in info.layers for units in [layer.units] * len(layer.state_names)]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int).tolist()
    pointers = ", ".join(f"edgernn_one + {offset}" for offset in offsets)
    return [f"static float edgernn_one[{sum(sizes)}];",
            "float *edgernn_one_states(void) { return edgernn_one; }",
            f"float {ONE_STREAM}(float x)", "{",
            f"const float *in[{len(sizes)}] = {{{pointers}}}; float *out[{len(sizes)}] = {{{pointers}}};",
            f"float y; {FUNCTION}(1, &x, in, &y, out); return y;", "}"]
