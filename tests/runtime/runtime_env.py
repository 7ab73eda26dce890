"""What this runtime environment can do, for the runtime tests to adapt (and skip honestly) across the full,
runtime-only and emulated aarch64 environments."""

import os

import pytest

from edgernn.runtime.backends import computes_from_weights, installed

TFLITE = bool({"litert", "tflite-runtime"} & set(installed()))
# variants this machine can run: TFLite where a TFLite interpreter is installed, else ONNX
FLOAT32 = "tflite-float32" if TFLITE else "onnx-float32"
INT8 = "tflite-int8" if TFLITE else "onnx-int8"
# under qemu-user without binfmt the emulated Python cannot start a copy of itself (sys.executable)
CAN_SPAWN = os.environ.get("EDGERNN_NO_SPAWN") != "1"
needs_spawn = pytest.mark.skipif(not CAN_SPAWN, reason="cannot start a Python subprocess here (emulation)")
needs_tflite = pytest.mark.skipif(not TFLITE, reason="no TFLite interpreter installed")
# FLOAT32 and INT8 above run on any installed interpreter; with none (numpy alone) tests that stream them skip
INTERPRETERS = [name for name in installed() if not computes_from_weights(name)]  # not numpy, not c
needs_interpreter = pytest.mark.skipif(not INTERPRETERS, reason="no interpreter installed: pip install "
                                       "'edgernn[litert]' (or [tflite], [onnx]) to run the variants")
# qemu-user emulation (the CI's aarch64 stage sets this): hypothesis' float generation trips an internal
# assertion there, and fuzzing manifests is platform-independent Python, already run natively
EMULATED = os.environ.get("EDGERNN_EMULATED") == "1"


def bundle_of_cell(bundles, cell: str):
    """A streaming bundle of one value in and out (plain, or blended into persistence) whose layers are all ``cell`` (tests parametrize over the cell table, so a
    new cell shows up as a test that skips, naming it, until a bundle of it is made)."""
    from edgernn.runtime.manifest import Mode
    from edgernn.runtime.manifest_reader import read_manifest

    for name, bundle in sorted(bundles.every().items()):
        manifest = read_manifest(bundle)
        one_value = manifest.columns.univariate and manifest.columns.lag <= 1
        if (manifest.model.mode is Mode.STREAMING and one_value
                and {layer.cell for layer in manifest.model.layers} == {cell}):
            return bundle
    pytest.skip(f"no streaming bundle of {cell} cells here (tests/make_bundles.py makes one per cell)")
