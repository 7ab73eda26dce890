"""Untrusted bundles and state files, fuzzed: every malformed input ends in a one-line ``EdgernnError`` (or a
normal run), never another exception; through the CLI, exit 2 and one ``error:`` line, never a traceback.

Readers fuzzed: ``manifest.json`` (JSON-tree and raw-text mutations, loaded with every installed backend and
through ``edgernn verify``), ``weights.npz``, ``reference.npz`` and ``calibration.npz`` (byte mutations,
truncation, zero bytes, odd arrays; the manifest's hash updated so the parse is what is tested), saved predictor
states (arrays of the wrong dtype or shape, the meta JSON mutated), and model files (in a worker process).

Seeded (``derandomize``) and bounded for the default run; ``-m slow`` runs the long variants.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import strategies as st  # noqa: E402

from bundle_edit import copy_bundle, npz_arrays, npz_bytes, replace_file, run_cli  # noqa: E402
from json_fuzz import budgets, ends_cleanly, fuzz, mutate_text, mutate_tree  # noqa: E402
from edgernn.runtime import StreamingPredictor  # noqa: E402
from edgernn.runtime.backends import installed  # noqa: E402
from edgernn.runtime.bundle import Bundle  # noqa: E402
from edgernn.verification import verify  # noqa: E402
from runtime_env import EMULATED, FLOAT32, needs_interpreter, needs_spawn  # noqa: E402

no_floats_under_qemu = pytest.mark.skipif(EMULATED, reason="hypothesis' float strategy asserts under qemu-user")
pytestmark = pytest.mark.portable  # untrusted input's error paths: Python alone decides them


def _load_and_run(bundle, variant, backend):
    StreamingPredictor.load(bundle, variant, backend=backend).run(np.array([0.1, 0.2, np.nan, 0.3]))


@pytest.fixture(scope="module")
def sine_copy(bundles, tmp_path_factory):
    """A scratch copy of the sine bundle; ``_genuine`` restores it before each example."""
    return copy_bundle(bundles["sine"], tmp_path_factory.mktemp("fuzz") / "bundle")


def _genuine(scratch: Path, bundles) -> None:
    """Every file of the scratch bundle back to the genuine one's bytes (earlier examples damaged some)."""
    for path in bundles["sine"].iterdir():
        if path.is_file():
            (scratch / path.name).write_bytes(path.read_bytes())


# -- manifest -------------------------------------------------------------------------------------------------

BACKENDS = ["auto", *installed()]
FUZZED_VARIANTS = ["tflite-float32", "tflite-int8", "onnx-float32", "onnx-int8"]


def _manifest_case(sine_copy, bundles, data):
    _genuine(sine_copy, bundles)
    original = (bundles["sine"] / "manifest.json").read_text()
    if data.draw(st.booleans()):
        text = json.dumps(mutate_tree(data, json.loads(original)))
    else:
        text = mutate_text(data, original)
    (sine_copy / "manifest.json").write_text(text, encoding="utf-8", errors="surrogatepass")
    variant = data.draw(st.sampled_from(FUZZED_VARIANTS))
    backend = data.draw(st.sampled_from(BACKENDS))
    return ends_cleanly(lambda: _load_and_run(sine_copy, variant, backend))


@no_floats_under_qemu
@pytest.mark.parametrize("examples", budgets(200, 2000))
def test_manifest_mutations_end_cleanly(sine_copy, bundles, examples):
    fuzz(examples, lambda data: _manifest_case(sine_copy, bundles, data))


def _manifest_verify_case(sine_copy, bundles, data):
    _genuine(sine_copy, bundles)
    original = (bundles["sine"] / "manifest.json").read_text()
    (sine_copy / "manifest.json").write_text(json.dumps(mutate_tree(data, json.loads(original))))
    result = run_cli(["verify", str(sine_copy), "--reference", "stored", "--steps", "20", "--variants", FLOAT32,
                      "--backend", data.draw(st.sampled_from(BACKENDS))])
    return f"exit {result.exit_code}"


@no_floats_under_qemu
@pytest.mark.parametrize("examples", budgets(60, 500))
def test_manifest_mutations_through_verify(sine_copy, bundles, examples):
    fuzz(examples, lambda data: _manifest_verify_case(sine_copy, bundles, data))


# -- npz files ------------------------------------------------------------------------------------------------

ODD_DTYPES = ["float16", "float32", "float64", "int8", "int64", "uint8", "bool", "complex64", "U3", "S3", "V4",
              "datetime64[s]", [("a", "f4"), ("b", "i2")]]
ODD_SHAPES = [(), (0,), (1,), (3,), (3, 3), (2, 0, 5), (1,) * 8, (16, 16), (50,), (4000,)]


def _odd_array(data) -> np.ndarray:
    dtype = np.dtype(data.draw(st.sampled_from(ODD_DTYPES)))
    shape = data.draw(st.sampled_from(ODD_SHAPES))
    fill = data.draw(st.sampled_from(["zeros", "ones", "nan", "inf", "huge"]))
    array = np.zeros(shape, dtype)
    if dtype.kind in "fc" and array.size:
        array[...] = {"zeros": 0, "ones": 1, "nan": np.nan, "inf": -np.inf, "huge": 1e30 if dtype.itemsize > 2 else 6e4}[fill]
    return array


def _mutated_npz(data, arrays: dict[str, np.ndarray], content: bytes) -> bytes:
    """Damaged bytes, or a well-formed .npz of damaged arrays."""
    how = data.draw(st.sampled_from(["bytes", "truncated", "empty", "garbage", "arrays", "arrays", "arrays"]))
    if how == "bytes":
        damaged = bytearray(content)
        for _ in range(data.draw(st.sampled_from([1, 2, 8, 64]))):
            damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
        return bytes(damaged)
    if how == "truncated":
        return content[: data.draw(st.integers(0, len(content) - 1))]
    if how == "empty":
        return b""
    if how == "garbage":
        return data.draw(st.binary(max_size=300))
    arrays = dict(arrays)
    keys = sorted(arrays)
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from(keys))
        edit = data.draw(st.sampled_from(["drop", "add", "dtype", "shape", "odd", "non-finite"]))
        if edit == "drop":
            arrays.pop(key, None)
        elif edit == "add":
            arrays[data.draw(st.sampled_from(["extra", "layer1/kernel", "layer0/bias/x", "meta"]))] = _odd_array(data)
        elif key in arrays and edit == "dtype":
            dtype = data.draw(st.sampled_from(ODD_DTYPES[:8]))
            try:
                with warnings.catch_warnings():  # lossy casts (complex, overflow, NaN to int) are the point
                    warnings.simplefilter("ignore")
                    arrays[key] = arrays[key].astype(dtype)
            except (ValueError, TypeError):  # e.g. text to float: this edit does not apply
                pass
        elif key in arrays and edit == "shape":
            arrays[key] = np.resize(arrays[key], data.draw(st.sampled_from(ODD_SHAPES)))
        elif key in arrays and edit == "non-finite" and arrays[key].size and arrays[key].dtype.kind == "f":
            arrays[key] = arrays[key].copy()
            arrays[key].flat[data.draw(st.integers(0, arrays[key].size - 1))] = data.draw(
                st.sampled_from([np.nan, np.inf, -np.inf]))
        else:
            arrays[key] = _odd_array(data)
    return npz_bytes(**arrays)


def _read_as_consumer(bundle: Path, role: str) -> None:
    """What reads each file: the numpy backend, verify on a device, the int8 diagnosis' calibration read."""
    if role == "weights":
        _load_and_run(bundle, FLOAT32, "numpy")
    elif role == "reference_data":
        verify(bundle, reference="stored", variants=FLOAT32, steps=30, diagnose=False)
    else:
        Bundle.open(bundle).calibration_inputs()


def _npz_case(sine_copy, bundles, data, role):
    original = bundles["sine"] / {"weights": "weights.npz", "reference_data": "reference.npz",
                                  "calibration": "calibration.npz"}[role]
    _genuine(sine_copy, bundles)
    replace_file(sine_copy, role, _mutated_npz(data, npz_arrays(bundles["sine"], role), original.read_bytes()))
    return ends_cleanly(lambda: _read_as_consumer(sine_copy, role))


NPZ_ROLES = ["weights", "reference_data", "calibration"]


@pytest.mark.parametrize("examples", budgets(200, 2000))
@pytest.mark.parametrize("role", NPZ_ROLES)
def test_npz_mutations_end_cleanly(sine_copy, bundles, role, examples):
    fuzz(examples, lambda data: _npz_case(sine_copy, bundles, data, role))


def test_npz_mutations_through_the_cli(bundles, tmp_path):
    """A few damaged files through ``edgernn stream``/``verify``: exit 2, one line (``run_cli`` checks)."""
    bundle = copy_bundle(bundles["sine"], tmp_path / "bundle")
    original = (bundle / "weights.npz").read_bytes()
    for cut in (0, 1, 22, len(original) // 2, len(original) - 1):
        replace_file(bundle, "weights", original[:cut])
        result = run_cli(["stream", str(bundle), "--variant", FLOAT32, "--backend", "numpy"])
        assert result.exit_code == 2 and "weights.npz" in result.stderr
    replace_file(bundle, "reference_data", npz_bytes(inputs=np.zeros((5, 5)), outputs=np.zeros(5)))
    result = run_cli(["verify", str(bundle), "--reference", "stored"])
    assert result.exit_code == 2 and "reference.npz has shapes (5, 5) and (5,)" in result.stderr


# -- state files ----------------------------------------------------------------------------------------------

def _mutated_state(data, content: bytes) -> bytes:
    arrays = npz_arrays_from_bytes(content)
    how = data.draw(st.sampled_from(["npz", "npz", "meta", "meta"]))
    if how == "npz":
        return _mutated_npz(data, arrays, content)
    meta = str(arrays["meta"])
    if data.draw(st.booleans()):
        text = json.dumps(mutate_tree(data, json.loads(meta)))
    else:
        text = mutate_text(data, meta)
    arrays["meta"] = data.draw(st.sampled_from([np.array(text), np.array([text, text]), np.array(text.encode(
        "utf-8", "surrogatepass"))]))
    return npz_bytes(**arrays)


def npz_arrays_from_bytes(content: bytes) -> dict[str, np.ndarray]:
    import io

    with np.load(io.BytesIO(content)) as archive:
        return {key: archive[key] for key in archive.files}


@pytest.fixture(scope="module")
def saved_states(bundles, tmp_path_factory):
    """A state saved mid-stream for a streaming and a window bundle: (bundle, variant, file bytes)."""
    states = {}
    for name in ("sine", "window"):
        predictor = StreamingPredictor.load(bundles[name], FLOAT32)
        predictor.run(np.sin(np.arange(30) / 5.0))
        path = tmp_path_factory.mktemp("state") / "state.npz"
        predictor.save_state(path, extra={"input": {"line": 30}})
        states[name] = (bundles[name], path.read_bytes())
    return states


def _state_case(saved_states, tmp_path_factory, data):
    bundle, content = saved_states[data.draw(st.sampled_from(sorted(saved_states)))]
    path = tmp_path_factory.getbasetemp() / "fuzzed-state.npz"
    path.write_bytes(_mutated_state(data, content))
    predictor = StreamingPredictor.load(bundle, FLOAT32)

    def resume():
        predictor.load_state(path)
        predictor.run(np.array([0.3, np.nan, 0.5, 0.1, 0.2] * 3))

    return ends_cleanly(resume)


@no_floats_under_qemu
@pytest.mark.parametrize("examples", budgets(200, 2000))
@needs_interpreter
def test_state_file_mutations_end_cleanly(saved_states, tmp_path_factory, examples):
    fuzz(examples, lambda data: _state_case(saved_states, tmp_path_factory, data))


@needs_interpreter
def test_damaged_state_through_the_cli(saved_states, tmp_path):
    bundle, content = saved_states["sine"]
    state = tmp_path / "state.npz"
    arrays = npz_arrays_from_bytes(content)
    for damaged in (content[: len(content) // 2], b"", npz_bytes(**{**arrays, "state/h0": arrays["state/h0"].astype(
            np.float64)}), npz_bytes(**{**arrays, "meta": np.array("[" * 100_000 + "]" * 100_000)})):
        state.write_bytes(damaged)
        result = run_cli(["stream", str(bundle), "--variant", FLOAT32, "--state-file", str(state)])
        assert result.exit_code == 2 and "state file" in result.stderr and "--reset-state" in result.stderr


# -- model files ----------------------------------------------------------------------------------------------

@needs_spawn
@pytest.mark.parametrize("variant", ["tflite-float32", "tflite-int8", "onnx-float32"])
def test_model_byte_mutations_end_cleanly(bundles, tmp_path, variant):
    fmt = variant.split("-")[0]
    if (fmt == "onnx" and "onnxruntime" not in installed()) or (
            fmt == "tflite" and not {"litert", "tflite-runtime"} & set(installed())):
        pytest.skip(f"no interpreter for {fmt} here")
    worker = Path(__file__).with_name("fuzz_model_bytes.py")
    result = subprocess.run([sys.executable, str(worker), str(bundles["sine"]), variant, "150", "7",
                             str(tmp_path / "scratch")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"worker died (code {result.returncode}): {result.stderr[-500:]}"
    outcomes = json.loads(result.stdout.strip().splitlines()[-1])
    assert sum(outcomes.values()) == 150
    assert not [k for k in outcomes if k.startswith("OTHER")], outcomes
