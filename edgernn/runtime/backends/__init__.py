"""Interpreters behind one small protocol; the predictor never knows which one it drives.

``BACKEND_TABLE`` is the one list of backends: a new backend is its module (a class following ``Backend``, an
``available()`` check, ``BACKEND = TheClass``) plus one row here (and, if it needs a package, an extra in
``pyproject.toml``). ``auto`` picks the first installed row marked ``auto`` that runs the variant. Everything else
that names backends derives from the rows: the CLI's choices, the interpreters a manifest may record and export
checks (``INTERPRETERS``), the extra named when a package is missing (``EXTRAS``). Standard library only.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol

from edgernn.errors import BackendError, CannotRunHere, IncompatibleError

if TYPE_CHECKING:  # numpy and the manifest only for the annotations: the CLI reads BACKENDS without numpy
    import numpy as np

    from edgernn.runtime.manifest import ModelInfo, VariantEntry
    from edgernn.runtime.variants import VariantSpec


@dataclass(frozen=True)
class BackendInfo:
    """One row of the backend table."""

    name: str  # its spelling everywhere (--backend, verify and bench tables)
    module: str  # the module holding ``BACKEND`` and ``available()``
    package: str | None  # the package it imports (None: always there)
    extra: str | None  # the extra of ``pyproject.toml`` that installs it
    auto: bool  # ``auto`` may choose it (tflm, numpy and tensorflow only when named)
    recorded: bool  # an interpreter of its own: export records, per variant, whether it loads the file
    caveat: str = ""  # said after the install command

    @property
    def install(self) -> str:
        """How to get it, for people."""
        if self.extra is None:
            return self.caveat or f"{self.package or self.name} is always installed"
        return f"pip install 'edgernn[{self.extra}]'" + (f" ({self.caveat})" if self.caveat else "")


BACKEND_TABLE = (
    BackendInfo("litert", "edgernn.runtime.backends.litert", "ai_edge_litert", "litert", True, True),
    BackendInfo("tflite-runtime", "edgernn.runtime.backends.tflite_runtime", "tflite_runtime", "tflite", True, True,
                "tflite-runtime 2.14 needs numpy<2"),
    BackendInfo("onnxruntime", "edgernn.runtime.backends.onnxruntime", "onnxruntime", "onnx", True, True),
    BackendInfo("tflm", "edgernn.runtime.backends.tflm", "tflite_micro", "tflm", False, True,
                "tflite-micro: Linux x86_64, Python 3.11"),
    BackendInfo("numpy", "edgernn.runtime.backends.numpy", "numpy", None, False, False),
    BackendInfo("c", "edgernn.runtime.backends.c", None, None, False, False,
                "needs a C compiler (cc, gcc or clang; Debian: apt install gcc)"),
    BackendInfo("tensorflow", "edgernn.runtime.backends.tensorflow", "tensorflow", "train", False, False),
)
BACKENDS = tuple(row.name for row in BACKEND_TABLE)
INTERPRETERS = tuple(row.name for row in BACKEND_TABLE if row.recorded)  # what a manifest's record may name
EXTRAS = {row.package: row.extra for row in BACKEND_TABLE if row.extra}  # package -> the extra installing it
_ROWS = {row.name: row for row in BACKEND_TABLE}


class Backend(Protocol):
    """One loaded model, batch ``streams``: arrays in ``tensor_order``, one invoke per call.

    Positional lists rather than dicts: the step is on the hot path, and the order is fixed at load.
    """

    name: ClassVar[str]
    formats: ClassVar[tuple[str, ...]]  # the model formats it runs ("tflite", "onnx")
    float32_only: ClassVar[bool]  # runs float32 variants only (it computes from the float weights)
    # (optional) a float32-only backend that also runs the variant of int8 tensors throughout from its file (c)
    integer_io: ClassVar[bool]
    needs_weights: ClassVar[bool]  # wants the bundle's float weights as ``weights``
    note: str | None  # one line for the user when it runs the model other than the usual way, else None

    def __init__(self, content: bytes, entry: VariantEntry, batch: int = 1, weights: dict | None = None,
                 model_info: ModelInfo | None = None) -> None:
        """Load the model bytes (already hash-checked) for ``batch`` streams; raise BackendError (one line)."""

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]: ...


def _module(name: str):
    return importlib.import_module(_ROWS[name].module)


def formats_of(name: str) -> tuple[str, ...]:
    """The model formats backend ``name`` runs (its class's ``formats``; its module imports, its package need not)."""
    return _module(name).BACKEND.formats


def computes_from_weights(name: str) -> bool:
    """Whether backend ``name`` computes the float step from the bundle's weights (numpy, c) rather than running
    the variant's file in an interpreter."""
    return _module(name).BACKEND.needs_weights


def backend_class(name: str):
    """The backend class for ``name``; raises BackendError naming the extra when its package is missing."""
    if name not in _ROWS:
        raise BackendError(f"unknown backend {name!r}; choose from auto, {', '.join(BACKENDS)}")
    module = _module(name)
    if not module.available():
        raise BackendError(f"backend {name!r} is not installed: {_ROWS[name].install}")
    return module.BACKEND


def make_interpreter(content: bytes, backend: str = "litert", kernels: str = "xnnpack", num_threads: int = 1):
    """A TFLite interpreter over ``content`` (like pycoral's ``make_interpreter``), not yet allocated.

    Args:
        content: the ``.tflite`` bytes (the caller has checked them: ``Bundle.read``).
        backend: whose interpreter: ``litert`` (ai-edge-litert), ``tflite-runtime`` or ``tensorflow``.
        kernels: ``xnnpack`` (the default delegate over the builtin kernels), ``builtin`` (the optimized builtin
            kernels alone) or ``reference`` (TFLite's plain C++ kernels).
        num_threads: 1 by default: one step is microseconds, threads only add hand-over cost.

    Raises:
        BackendError: the backend is unknown, not installed, or not a TFLite interpreter.
    """
    cls = backend_class(backend)
    if not hasattr(cls, "open_interpreter"):  # a TFLiteBackend (not imported here: it needs numpy)
        raise BackendError(f"backend {backend!r} does not run .tflite models")
    return cls.open_interpreter(content, kernels, num_threads)


def runs(cls, spec: VariantSpec) -> bool:
    """Whether backend class ``cls`` can run variant ``spec``."""
    return spec.format in cls.formats and (spec.float32 or not cls.float32_only
                                           or (spec.integer_io and getattr(cls, "integer_io", False)))


def choose(name: str, spec: VariantSpec, entry=None):
    """The backend class for variant ``spec``: ``auto`` resolved, or an explicit choice checked.

    ``entry`` (the variant's manifest entry): an interpreter the export recorded as unable to load this file is
    never chosen by ``auto``, and named explicitly it is refused with the recorded reason. ``name`` may be a
    comma-separated preference list (``c,litert``): the first that runs the variant here, else the first's error.
    """
    if "," in name:
        return load(name, spec, entry, lambda cls: cls)[0]
    refused = entry.refused_by if entry is not None else (lambda backend: None)
    if name == "auto":
        for row in BACKEND_TABLE:
            if (row.auto and _module(row.name).available() and runs(_module(row.name).BACKEND, spec)
                    and refused(row.name) is None):
                return _module(row.name).BACKEND
        candidates = [row for row in BACKEND_TABLE if row.auto and spec.format in _module(row.name).BACKEND.formats]
        installed_but_refused = [f"{row.name} ({refused(row.name)})" for row in candidates
                                 if _module(row.name).available() and refused(row.name) is not None]
        if installed_but_refused:
            raise IncompatibleError(f"{spec.name} is incompatible with the interpreters here, as recorded at export: "
                                    f"{'; '.join(installed_but_refused)}")
        numpy_hint = " (or --backend numpy)" if spec.float32 else ""
        raise BackendError(f"no interpreter for .{spec.format} models is installed: "
                           f"{' or '.join(row.install for row in candidates)}{numpy_hint}")
    cls = backend_class(name)
    if not runs(cls, spec):
        if spec.format in cls.formats:
            raise BackendError(f"the {name} backend runs float32 variants only, not {spec.name}")
        raise BackendError(f"backend {name!r} cannot run .{spec.format} models")
    if refused(name) is not None:
        raise IncompatibleError(f"{spec.name} is incompatible with {name}: {refused(name)}")
    return cls


def load(name: str, spec: VariantSpec, entry, make):
    """``(make(cls), notes)`` for the backend ``name`` names (a name, ``auto`` or a preference list).

    In a list, a backend that is not installed, cannot run the variant, was refused at export, or cannot run on
    this machine when loaded (``CannotRunHere``: a C compiler that fails) gives way to the next, each said in
    ``notes``; any other load failure (a tampered cache, a model an interpreter rejects) is raised, so that a
    list never hides damage. None left: the first one's error.
    """
    if "," not in name:
        return make(choose(name, spec, entry)), []
    errors, tried = [], set()
    for each in (part.strip() for part in name.split(",") if part.strip()):
        try:
            cls = choose(each, spec, entry)
        except BackendError as exc:  # not installed, cannot run the variant, refused at export
            errors.append((each, exc))
            continue
        if cls in tried:  # ``litert,auto``: auto names litert again
            continue
        tried.add(cls)
        try:
            loaded = make(cls)
        except CannotRunHere as exc:
            errors.append((each, exc))
            continue
        return loaded, [f"{failed} did not run {spec.name} ({exc}); running on {cls.name}" for failed, exc in errors]
    raise errors[0][1] if errors else BackendError("--backend names no backend")


def installed() -> list[str]:
    """Names of the backends that can be used on this machine (numpy always; tensorflow if importable)."""
    return [row.name for row in BACKEND_TABLE if _module(row.name).available()]
