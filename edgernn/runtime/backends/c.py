"""The step model as C (float32: ``edgernn.runtime.c_step``; tflite-int8: ``edgernn.runtime.c_int8``), compiled by the
system C compiler and called through ctypes (one stream's step as a CPython builtin where the headers are:
``c_entry``): no interpreter at all.

The compiled library is cached per source (``EDGERNN_CACHE``, else ``$XDG_CACHE_HOME/edgernn`` or
``~/.cache/edgernn``), not in the bundle: a bundle may be read-only or signed, and its file list is closed. Each
library is stored with the sha256 it had when compiled and checked against it before it is loaded; a library
whose bytes changed since is refused (one line), never loaded, since ctypes runs whatever a library holds.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import secrets
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path

import numpy as np

from edgernn.runtime.backends import c_entry
from edgernn.runtime.c_int8 import int8_source
from edgernn.runtime.c_step import FUNCTION, ONE_STREAM, c_source
from edgernn.errors import BackendError, CannotRunHere
from edgernn.runtime.manifest import Mode
from edgernn.runtime.file_digest import sha256_file
from edgernn.runtime.variants import variant

# -ffast-math lets the compiler call libm's vector expf/tanhf (glibc's libmvec): the gated cells' activations,
# most of a GRU or LSTM step (benchmarks/c_step.md). It is given to the compile only: at link time GCC before 13
# adds crtfastmath.o, which turns on flush-to-zero for the whole process, numpy included. The inputs it sees are
# finite (the predictor clips them) and so are the weights (``c_step`` refuses others).
FLAGS = ("-std=c99", "-O3", "-ffast-math", "-Wall", "-Wextra", "-Werror", "-fPIC")
# the int8 step has no transcendental function to speed up, and its one-stream entry must round z exactly as the
# predictor does: no -ffast-math, no fused multiply-add
INT8_FLAGS = ("-std=c99", "-O3", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror", "-fPIC")
LINKS = (("-shared", "-lmvec", "-lm"), ("-shared", "-lm"))  # with libmvec where there is one, else libm alone
# on x86-64 the baseline is 2003's SSE2: the CPU's own vector width (AVX2, AVX-512) is 25-35 % of a gated step.
# Tried first, dropped when the compiler refuses it; aarch64's baseline already has NEON, so it is not tried there
# (nor under emulation, where a cross compiler would read the host's CPU)
NATIVE = ("-march=native",) if platform.machine().lower() in ("x86_64", "amd64") else ()
COMPILE_SECONDS = 120
LANES = 16  # the int8 step's sums padded to whole vectors of this many int32s (AVX-512; NEON takes 4 at a time)


def compiler() -> str | None:
    """The C compiler: ``$CC``, else the first of cc, gcc, clang on the PATH."""
    named = os.environ.get("CC")
    if named:
        return shutil.which(named)
    return next(filter(None, map(shutil.which, ("cc", "gcc", "clang"))), None)


def available() -> bool:
    return compiler() is not None


def cache_dir() -> Path:
    base = os.environ.get("EDGERNN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "edgernn")
    return Path(base) / "c"


def library_bytes(source: str, flags: tuple[str, ...] = FLAGS, real: str | None = None) -> tuple[bytes, Path]:
    """The compiled library of ``source`` (compiled with ``flags``) (its bytes, checked against the hash recorded
    when it was compiled) and where it is cached; compiled into the cache first when it is not there. ``real``:
    the one-stream step's type, to link ``c_entry``'s wrapper in where this Python's headers are."""
    cc = compiler()
    if cc is None:
        raise CannotRunHere("the c backend needs a C compiler and none was found (cc, gcc, clang or $CC): install "
                           "one (Debian/Raspberry Pi OS: apt install gcc)")
    wrapper = c_entry.wrapper(real) if real and f"{ONE_STREAM}(" in source else None  # a step of one value
    python = [wrapper, c_entry.headers(), sysconfig.get_config_var("EXT_SUFFIX")] if wrapper else []
    key = hashlib.sha256("\0".join([source, os.path.realpath(cc), *flags, *NATIVE, *map(" ".join, LINKS),
                                    this_cpu(), *map(str, python)]).encode()).hexdigest()[:32]
    directory = cache_dir()
    library, recorded = directory / f"{key}.so", directory / f"{key}.so.sha256"
    if wrapper:
        wrapper = wrapper.replace("MODULE", c_entry.module_name(library))
    try:
        if not (library.exists() and recorded.exists()):
            _compile(cc, source, flags, directory, library, recorded, wrapper)
        data, digest = library.read_bytes(), recorded.read_text().strip()
    except OSError as exc:
        raise CannotRunHere(f"cannot compile the C step into {directory}: {exc.strerror or exc}") from None
    if hashlib.sha256(data).hexdigest() != digest:
        raise BackendError(f"the cached C library {library} changed since it was compiled (tampered or damaged): "
                           "delete it and it is compiled again")
    return data, library


def this_cpu() -> str:
    """This machine's CPU as -march=native sees it (its instruction sets), part of a cached library's key: a
    library compiled on another CPU (a home directory two machines share) is compiled again, never run with
    instructions this one may lack."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return platform.machine()
    keys = ("flags", "features", "model name", "cpu part", "cpu implementer")
    described = {line.strip() for line in text.splitlines() if line.split(":")[0].strip().lower() in keys}
    return "\n".join([platform.machine(), *sorted(described)])


def _compile(cc: str, source: str, flags: tuple[str, ...], directory: Path, library: Path, recorded: Path,
             wrapper: str | None = None) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        src, obj, out = (Path(scratch) / name for name in ("step.c", "step.o", "step.so"))
        src.write_text(source)
        if not (NATIVE and _run([cc, *flags, *NATIVE, "-c", "-o", str(obj), str(src)], cc, check=False)):
            _run([cc, *flags, "-c", "-o", str(obj), str(src)], cc)
        objects = [str(obj)]
        if wrapper:  # the CPython entry (c_entry): left out, not an error, when it does not compile here
            entry_src, entry_obj = Path(scratch) / "entry.c", Path(scratch) / "entry.o"
            entry_src.write_text(wrapper)
            if _run([cc, "-O2", "-fPIC", f"-I{c_entry.headers()}", "-c", "-o", str(entry_obj), str(entry_src)], cc,
                    check=False):
                objects.append(str(entry_obj))
        *preferred, last = LINKS
        if not any(_run([cc, "-o", str(out), *objects, *links], cc, check=False) for links in preferred):
            _run([cc, "-o", str(out), *objects, *last], cc)
        digest = sha256_file(out)
        os.replace(out, library)  # the library first, then its hash: a library without one is compiled again
        (Path(scratch) / "hash").write_text(digest + "\n")
        os.replace(Path(scratch) / "hash", recorded)


def _run(command: list[str], cc: str, check: bool = True) -> bool:
    """Run the compiler; False when it fails and ``check`` is off, else a one-line CannotRunHere."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=COMPILE_SECONDS)
    except subprocess.TimeoutExpired:
        raise CannotRunHere(f"the C compiler {cc} took more than {COMPILE_SECONDS} s") from None
    if result.returncode == 0:
        return True
    if not check:
        return False
    first = next((line for line in result.stderr.splitlines() if "error" in line), result.stderr.strip())
    raise CannotRunHere(f"the C step did not compile with {cc}: {first[:300] or f'exit {result.returncode}'}")


def load_private(data: bytes, library: Path) -> tuple[ctypes.CDLL, object]:
    """Load the checked bytes from a private copy under a name never used before (the loader reuses a library
    already loaded under the same name), removed once loaded: what runs is what was hashed, and a cached file
    changed later, even in place, cannot change a library already running. The copy goes beside the cache, not
    to /tmp, which may be mounted noexec. Also returns its CPython ``step_one`` (``c_entry``), None without."""
    try:
        with tempfile.TemporaryDirectory(dir=library.parent) as scratch:
            copy = Path(scratch) / f"{secrets.token_hex(8)}-{library.name}"
            copy.write_bytes(data)
            loaded = ctypes.CDLL(str(copy))
            return loaded, c_entry.load(str(copy), c_entry.module_name(library))
    except OSError as exc:
        raise BackendError(f"cannot load the C library {library}: {exc}") from None


class CBackend:
    name = "c"
    formats = ("tflite", "onnx")  # float32 variants of either format: the same weights
    float32_only = True
    integer_io = True  # and the variant of int8 tensors throughout (tflite-int8), from its own file
    needs_weights = True
    streaming_only = True  # a window model re-runs its window: not generated
    note = None

    def __init__(self, content: bytes, entry, batch: int = 1, weights=None, model_info=None):
        if model_info.mode is not Mode.STREAMING:
            raise BackendError("the c backend runs streaming models only (a window model re-runs its window)")
        self.hands_over = variant(entry.name).integer_io  # its one-stream step hands the int8 states over itself
        if self.hands_over:
            self._dtype, self._ctype, self._real = np.int8, ctypes.c_int8, ctypes.c_double
            source = library_bytes(int8_source(content, entry, model_info, lanes=LANES), INT8_FLAGS, "double")
        else:
            self._dtype, self._ctype, self._real = np.float32, ctypes.c_float, ctypes.c_float
            source = library_bytes(c_source(model_info, weights), real="float")
        self._lib, self._entry = load_private(*source)
        try:
            self._step = getattr(self._lib, FUNCTION)
        except AttributeError:
            raise BackendError(f"the C library for this model has no {FUNCTION}") from None
        self._step.restype = None
        self._step.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        self._features, self._outputs = self._lib.edgernn_features(), self._lib.edgernn_outputs()
        model_order = [name for name, _ in model_info.state_inputs()]
        self._units = [units for _, units in model_info.state_inputs()]
        self._to_model = [[i for i, _ in entry.state_pairs].index(name) for name in model_order]
        self._from_model = [model_order.index(i) for i, _ in entry.state_pairs]
        self._in_pointers = (ctypes.c_void_p * len(model_order))()
        self._out_pointers = (ctypes.c_void_p * len(model_order))()
        self._held = (None, 0)  # the last x array seen and its address (held, so its id cannot be reused)
        self.step_one, self.one_states = self._one_stream(entry)

    def _one_stream(self, entry):
        """The fused one-stream step (a float in, a float out) and its states as numpy views of the library's
        memory, in the bundle's state-pair order; (None, None) for a model of several values in or out."""
        try:
            step, states = getattr(self._lib, ONE_STREAM), getattr(self._lib, "edgernn_one_states")
        except AttributeError:
            return None, None
        step.restype, step.argtypes = self._real, [self._real]
        step = self._entry or step  # the same function, called as a CPython builtin where it was linked in
        states.restype, states.argtypes = ctypes.c_void_p, []
        memory = (self._ctype * sum(self._units)).from_address(states())
        views, at, size = [], 0, np.dtype(self._dtype).itemsize
        for units in self._units:
            views.append(np.ndarray((1, units), self._dtype, memory, at * size))
            at += units
        return step, [views[m] for m in self._from_model]

    # Finding an array's address through numpy (``.ctypes.data``) costs more than the whole step; arrays this
    # backend returns are built on ctypes buffers, whose address is cheap, and the predictor feeds them back.

    def _buffer(self, shape: tuple[int, int]) -> tuple[np.ndarray, int]:
        memory = (self._ctype * (shape[0] * shape[1]))()
        return np.ndarray(shape, self._dtype, memory), ctypes.addressof(memory)

    def _address(self, array, shape: tuple[int, int], keep: list) -> int:
        """The address of ``array`` as a C-contiguous ``shape`` of the step's dtype (a copy made and kept when it
        is not)."""
        base = getattr(array, "base", None)
        if isinstance(base, ctypes.Array) and array.shape == shape and array.dtype == self._dtype:
            return ctypes.addressof(base)  # one of ours, whole (a view's base is the ndarray, not the buffer)
        if array is self._held[0]:
            return self._held[1]
        copy = np.ascontiguousarray(array, dtype=self._dtype)
        if copy.size != shape[0] * shape[1]:
            raise BackendError(f"an input holds {copy.size} values; the C step takes {shape[0]} x {shape[1]}")
        keep.append(copy)
        address = copy.ctypes.data
        if copy is array:
            self._held = (array, address)
        return address

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x = inputs[0]
        batch = x.shape[0] if getattr(x, "ndim", 0) else 1
        keep: list = []
        x_address = self._address(x, (batch, self._features), keep)
        new = []
        for k, (index, units) in enumerate(zip(self._to_model, self._units)):
            self._in_pointers[k] = self._address(inputs[1 + index], (batch, units), keep)
            array, self._out_pointers[k] = self._buffer((batch, units))
            new.append(array)
        y, y_address = self._buffer((batch, self._outputs))
        self._step(batch, x_address, self._in_pointers, y_address, self._out_pointers)
        return [y, *(new[i] for i in self._from_model)]


BACKEND = CBackend
