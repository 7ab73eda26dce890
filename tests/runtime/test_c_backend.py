"""The C backend: the float32 step model and the tflite-int8 one generated as C99, compiled by the system
compiler, run through ctypes.

Real compilers, real libraries, checked against the numpy cell equations (float32) and TFLite's reference
kernels running the same file (int8); what can go wrong around a compiler (none, a failing one, a cached library
changed after it was built) is one line and exit 2, never a crash.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from edgernn.runtime import StreamingPredictor
from edgernn.runtime.backends import c as c_backend
from edgernn.runtime.bundle import Bundle
from edgernn.runtime.backends.c import CBackend
from edgernn.runtime.c_int8 import int8_source
from edgernn.runtime.c_step import c_source
from edgernn.runtime.cell_table import CELLS
from edgernn.errors import BackendError
from edgernn.runtime.manifest import Mode, state_output
from runtime_env import bundle_of_cell, needs_spawn

needs_cc = pytest.mark.skipif(not c_backend.available(), reason="no C compiler (cc, gcc, clang or $CC) here")
pytestmark = needs_cc


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test compiles into its own cache: what one test does to a library no other test loads."""
    monkeypatch.setenv("EDGERNN_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("streams", [1, 3])
@pytest.mark.parametrize("cell", list(CELLS))
def test_c_step_equals_the_numpy_cells(bundles, sine_values, cell, streams):
    """Every cell, one stream and several: within 1e-5 of the range of the numpy equations, state carried."""
    bundle = bundle_of_cell(bundles, cell)
    values = np.stack([sine_values * (1 + 0.1 * k) for k in range(streams)], axis=1) if streams > 1 else sine_values
    reference = StreamingPredictor.load(bundle, "tflite-float32", backend="numpy", streams=streams).run(values)
    out = StreamingPredictor.load(bundle, "tflite-float32", backend="c", streams=streams).run(values)
    finite = np.isfinite(reference)
    assert np.array_equal(finite, np.isfinite(out))
    assert np.max(np.abs(out[finite] - reference[finite])) <= 1e-5 * np.ptp(reference[finite])


@pytest.mark.parametrize("variant", ["tflite-float32", "tflite-int8"])
@pytest.mark.parametrize("cell", list(CELLS))
def test_the_fused_one_stream_step_equals_the_batch_step_and_keeps_its_state_apart(bundles, sine_values, cell,
                                                                                   variant, tmp_path):
    """One stream of one value takes the fused C call (its states in the library's memory, stepped in place;
    int8: the value quantized and each state handed over in C): bit-equal to the batch C step (two equal
    streams, quantized and handed over by the predictor), two predictors interleaved do not share a state, and
    state, save/load, restore and reset see and set the states the fused step uses."""
    bundle = bundle_of_cell(bundles, cell)
    if variant == "tflite-int8":
        pytest.importorskip("ai_edge_litert", reason="the int8 C step reads the .tflite with ai-edge-litert's schema")
    values = sine_values[:600]
    first = StreamingPredictor.load(bundle, variant, backend="c")
    second = StreamingPredictor.load(bundle, variant, backend="c")
    assert first._fused is not None  # the path under test
    batch = StreamingPredictor.load(bundle, variant, backend="c", streams=2).run(np.stack([values] * 2, 1))
    together = [(first.step(v), second.step(w)) for v, w in zip(values, values[::-1])]
    expected = batch[:, 0]
    np.testing.assert_array_equal(np.array([a for a, _ in together]), expected)
    np.testing.assert_array_equal(np.array([b for _, b in together]),
                                  StreamingPredictor.load(bundle, variant, backend="c").run(values[::-1]))
    first.reset()
    first.run(values[:300])
    hidden = [name for name, _ in first.manifest.model.state_inputs()]
    assert all(np.any(first.state[name] != 0) for name in hidden)
    first.save_state(tmp_path / "s.npz")
    resumed = StreamingPredictor.load(bundle, variant, backend="c")
    resumed.load_state(tmp_path / "s.npz")
    np.testing.assert_array_equal(resumed.run(values[300:]), expected[300:])
    second.restore_state(first.state, 300)
    np.testing.assert_array_equal(second.run(values[300:]), expected[300:])
    first.reset()
    np.testing.assert_array_equal(first.run(values), expected)


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_the_source_compiles_warning_free_as_c99(bundles, compiler, tmp_path):
    """-std=c99 -Wall -Wextra -Werror -pedantic, under each compiler there is (a cell of each kind, float32 and
    int8)."""
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} is not installed here")
    for cell in CELLS:
        bundle = Bundle.open(bundle_of_cell(bundles, cell))
        sources = {"float32": c_source(bundle.manifest.model, bundle.weights())}
        if "tflite-int8" in bundle.manifest.variants:
            sources["int8"] = _int8_source_of(bundle)
        for kind, text in sources.items():
            source = tmp_path / f"{cell}-{kind}.c"
            source.write_text(text)
            result = subprocess.run([compiler, "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O2", "-c",
                                     str(source), "-o", str(tmp_path / f"{cell}-{kind}.o")], capture_output=True,
                                    text=True, timeout=120)
            assert result.returncode == 0, result.stderr


def _int8_source_of(bundle: Bundle) -> str:
    pytest.importorskip("ai_edge_litert", reason="the int8 C step reads the .tflite with ai-edge-litert's schema")
    return int8_source(bundle.read("tflite-int8"), bundle.variant("tflite-int8"), bundle.manifest.model)


def _int8_streaming_bundles(bundles) -> dict:
    found = {name: Bundle.open(path) for name, path in sorted(bundles.every().items())}
    return {name: b for name, b in found.items()
            if b.manifest.model.mode is Mode.STREAMING and "tflite-int8" in b.manifest.variants}


def test_the_int8_c_step_is_bit_equal_to_the_tflite_reference_kernels(bundles):
    """Every streaming int8 bundle here (one value and several, each cell, stacked layers, per-tensor weights,
    differenced): 300 steps of random int8 inputs and states, four rows a call, through the C step and through
    LiteRT's reference kernels on the same file: every output and state code equal."""
    interpreter = pytest.importorskip("ai_edge_litert.interpreter")
    chosen = _int8_streaming_bundles(bundles)
    assert chosen, "no streaming bundle with tflite-int8 here"
    rng = np.random.default_rng(0)
    for name, bundle in chosen.items():
        entry, info = bundle.variant("tflite-int8"), bundle.manifest.model
        content = bundle.read("tflite-int8")
        step = CBackend(content, entry, 4, model_info=info)
        reference = interpreter.Interpreter(model_content=content, experimental_op_resolver_type=(
            interpreter.OpResolverType.BUILTIN_REF)).get_signature_runner("serving_default")
        order = [n for n, _ in entry.state_pairs]
        sizes = {n: entry.input(n).shape[1] for n in ["x", *order]}
        for _ in range(75):
            inputs = {n: rng.integers(-128, 128, (4, sizes[n]), dtype=np.int8) for n in ["x", *order]}
            got = step.run([inputs[n] for n in ["x", *order]])
            for row in range(4):
                want = reference(**{n: v[row:row + 1] for n, v in inputs.items()})
                for k, output in enumerate(["y", *(state_output(n) for n in order)]):
                    np.testing.assert_array_equal(got[k][row], want[output][0], err_msg=f"{name} {output}")


def test_what_the_int8_c_step_cannot_express_is_refused_in_one_line(bundles):
    """A 16-bit model is not an int8 one: refused naming the op and tensor type, never C that computes something else;
    and the c backend is not offered for it."""
    from edgernn.runtime.backends import runs
    from edgernn.runtime.variants import variant

    bundle = next((b for b in _int8_streaming_bundles(bundles).values()
                   if "tflite-int16x8" in b.manifest.variants), None)
    if bundle is None:
        pytest.skip("no bundle with tflite-int16x8 here")
    pytest.importorskip("ai_edge_litert")
    with pytest.raises(BackendError, match=r"(float32|int16)\b.*int8") as refused:
        int8_source(bundle.read("tflite-int16x8"), bundle.variant("tflite-int16x8"), bundle.manifest.model)
    assert "\n" not in str(refused.value)
    assert runs(CBackend, variant("tflite-int8")) and not runs(CBackend, variant("tflite-int16x8"))
    assert not runs(CBackend, variant("tflite-dynamic"))


def test_a_cached_library_is_used_again_and_a_changed_one_refused(bundles, tmp_path):
    bundle = bundles["sine"]
    first = StreamingPredictor.load(bundle, "tflite-float32", backend="c")
    [library] = (tmp_path / "cache" / "c").glob("*.so")
    built = library.stat().st_mtime_ns
    StreamingPredictor.load(bundle, "tflite-float32", backend="c")
    assert library.stat().st_mtime_ns == built  # from the cache, not compiled again
    data = bytearray(library.read_bytes())
    data[len(data) // 2] ^= 0xFF
    library.write_bytes(bytes(data))
    from edgernn.errors import BackendError

    with pytest.raises(BackendError, match="changed since it was compiled"):
        StreamingPredictor.load(bundle, "tflite-float32", backend="c")
    assert np.isfinite(first.step(0.5))  # a library already loaded keeps working


@needs_spawn
@pytest.mark.parametrize("compiler, message", [
    ("/nonexistent/cc", "needs a C compiler"),
    ("false", "did not compile with"),
], ids=["no-compiler", "compile-error"])
def test_compiler_trouble_is_one_line_and_exit_2(bundles, tmp_path, compiler, message):
    result = subprocess.run([sys.executable, "-m", "edgernn", "stream", str(bundles["sine"]), "--backend", "c",
                             "--variant", "tflite-float32"], input="0.1\n0.2\n", capture_output=True, text=True,
                            timeout=120, env={**__import__("os").environ, "CC": compiler,
                                              "EDGERNN_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr and result.stdout == ""


@needs_spawn
def test_a_preference_list_gives_way_when_the_c_step_does_not_compile(bundles, tmp_path):
    """``--backend c,numpy``: a C compiler that fails hands the stream to numpy, said in one note line (a review
    found the list fell back only when a backend was missing, not when it failed to load)."""
    env = {**__import__("os").environ, "CC": "false", "EDGERNN_CACHE": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "edgernn", "stream", str(bundles["sine"]), "--variant", "tflite-float32"]
    listed = subprocess.run([*command, "--backend", "c,numpy"], input="0.1\n0.2\n", capture_output=True,
                            text=True, timeout=120, env=env)
    alone = subprocess.run([*command, "--backend", "numpy"], input="0.1\n0.2\n", capture_output=True, text=True,
                           timeout=120, env=env)
    assert listed.returncode == 0 and listed.stdout == alone.stdout != "", listed.stderr
    assert "note: c did not run tflite-float32 (the C step did not compile with" in listed.stderr
    assert "running on numpy" in listed.stderr and "Traceback" not in listed.stderr


@needs_spawn
def test_a_tampered_cached_library_is_refused_by_stream_never_loaded(bundles, tmp_path):
    env = {**__import__("os").environ, "EDGERNN_CACHE": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "edgernn", "stream", str(bundles["sine"]), "--backend", "c", "--variant",
               "tflite-float32"]
    assert subprocess.run(command, input="0.1\n", capture_output=True, text=True, timeout=120, env=env).returncode == 0
    [library] = (tmp_path / "cache" / "c").glob("*.so")
    library.write_bytes(b"\x7fELF not a library any more")
    result = subprocess.run(command, input="0.1\n", capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2 and "changed since it was compiled" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    # a preference list gives way on a machine that cannot run c, never on damage (a review found it did)
    listed = [*command[:command.index("--backend") + 1], "c,numpy", *command[command.index("--backend") + 2:]]
    result = subprocess.run(listed, input="0.1\n", capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2 and "changed since it was compiled" in result.stderr, result.stderr
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1


def _crafted(content: bytes, change) -> bytes:
    """``content`` with ``change`` applied to its unpacked flatbuffer (the schema's object API), packed again."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(content, 0)
    change(model.subgraphs[0], model, schema)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _tensor_named(graph, name: str) -> int:
    return next(i for i, t in enumerate(graph.tensors) if name in t.name.decode())


def _resize(graph, index, shape):
    graph.tensors[index].shape = np.array(shape, dtype=np.int32)


CRAFTED = {
    "a state output of the wrong size": lambda g, m, s: _resize(g, g.outputs[0], [1, 64]),
    "a tensor of 16 million values": lambda g, m, s: [_resize(g, o, [1, 1 << 24]) for o in g.operators[-2].outputs],
    "weights shorter than their shape": lambda g, m, s: setattr(
        m.buffers[g.tensors[g.operators[0].inputs[1]].buffer], "data", np.zeros(3, np.uint8)),
    "a scale of zero": lambda g, m, s: setattr(g.tensors[g.operators[0].outputs[0]].quantization, "scale",
                                               np.zeros(1, np.float32)),
    "an op it has no C for": lambda g, m, s: [setattr(code, "builtinCode", s.BuiltinOperator.EXP)
                                              for code in m.operatorCodes if code.builtinCode == s.BuiltinOperator.TANH],
    "an op input that is no tensor": lambda g, m, s: setattr(g.operators[-2], "inputs", np.array([999], np.int32)),
}


@pytest.mark.parametrize("change", list(CRAFTED))
def test_a_crafted_int8_file_is_refused_in_one_line_never_compiled_out_of_bounds(change):
    """The .tflite is untrusted: sizes that do not add up, huge tensors, bad scales, unknown ops and dangling
    indices are refused before any C exists (one line), so no generated step reads or writes outside its arrays."""
    pytest.importorskip("ai_edge_litert")
    from make_bundles import COMMITTED

    bundle = Bundle.open(COMMITTED / "sine")
    content = _crafted(bundle.read("tflite-int8"), CRAFTED[change])
    with pytest.raises(BackendError) as refused:
        int8_source(content, bundle.variant("tflite-int8"), bundle.manifest.model)
    assert "\n" not in str(refused.value) and str(refused.value)


@pytest.mark.parametrize("variant", ["tflite-float32", "tflite-int8"])
def test_the_one_stream_step_is_a_cpython_call_where_the_headers_are_and_the_same_through_ctypes(
        bundles, sine_values, variant, monkeypatch):
    """Where this Python's headers are, the fused step is linked in as a builtin function (a fifth of a GRU
    step less than a ctypes call); without them ctypes calls it: the predictions are bit-equal either way."""
    import ctypes

    from edgernn.runtime.backends import c_entry

    if variant == "tflite-int8":
        pytest.importorskip("ai_edge_litert", reason="the int8 C step reads the .tflite with ai-edge-litert's schema")
    if c_entry.headers() is None:
        pytest.skip("this Python's headers are not installed (python3-dev): ctypes only")
    values = sine_values[:300]
    builtin = StreamingPredictor.load(bundles["sine"], variant, backend="c")
    assert type(builtin._fused).__name__ == "builtin_function_or_method"
    monkeypatch.setattr(c_entry, "headers", lambda: None)
    through_ctypes = StreamingPredictor.load(bundles["sine"], variant, backend="c")
    assert isinstance(through_ctypes._fused, ctypes._CFuncPtr)
    np.testing.assert_array_equal(builtin.run(values), through_ctypes.run(values))
