"""What this runtime environment can do, for the runtime tests to adapt (and skip honestly) across the full,
runtime-only and emulated aarch64 environments."""

import os

import pytest

from edgernn.runtime.backends import installed

TFLITE = bool({"litert", "tflite-runtime"} & set(installed()))
# variants this machine can run: TFLite where a TFLite interpreter is installed, else ONNX
FLOAT32 = "tflite-float32" if TFLITE else "onnx-float32"
INT8 = "tflite-int8" if TFLITE else "onnx-int8"
# under qemu-user without binfmt the emulated Python cannot start a copy of itself (sys.executable)
CAN_SPAWN = os.environ.get("EDGERNN_NO_SPAWN") != "1"
needs_spawn = pytest.mark.skipif(not CAN_SPAWN, reason="cannot start a Python subprocess here (emulation)")
needs_tflite = pytest.mark.skipif(not TFLITE, reason="no TFLite interpreter installed")
# qemu-user emulation (the CI's aarch64 stage sets this): hypothesis' float generation trips an internal
# assertion there, and fuzzing manifests is platform-independent Python, already run natively
EMULATED = os.environ.get("EDGERNN_EMULATED") == "1"
KNOWN_CRASH = "tflite-runtime crashed"


def xfail_known_crash(message: str) -> None:
    """tflite-runtime 2.14's aarch64 build segfaults running some int8 models that litert and its own x86
    build run (a 2-layer LSTM; a batch of 8 streams); the fork probe turns that into a BackendError."""
    import platform

    if KNOWN_CRASH in message and platform.machine() == "aarch64":
        pytest.xfail("tflite-runtime 2.14 on aarch64 crashes running this int8 model (see README)")
