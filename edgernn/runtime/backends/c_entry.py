"""The c backend's fused one-stream step called as a CPython builtin function instead of through ctypes.

A ctypes call costs ~0.4 us (converting its arguments through libffi), a builtin one ~0.06: a fifth of a 50-unit
GRU step. Where this Python's headers are installed (``python3-dev``; a virtualenv sees its base's), a second,
small translation unit is linked into the step's library: ``step_one(z)`` converts the Python float to the step's
real type and back exactly as ctypes does, so predictions are the same either way. Without the headers, or when
that unit does not compile, the library is built without it and ctypes calls the step. Standard library only.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sysconfig
from pathlib import Path

# MODULE is replaced by the library's own name (its cache key), REAL by the step's real type
TEMPLATE = r"""#define PY_SSIZE_T_CLEAN
#include <Python.h>

REAL edgernn_step_one(REAL z);

static PyObject *step_one(PyObject *self, PyObject *value)
{
  (void)self;
  const double z = PyFloat_AsDouble(value);
  if (z == -1.0 && PyErr_Occurred()) return NULL;
  return PyFloat_FromDouble((double)edgernn_step_one((REAL)z));
}

static PyMethodDef methods[] = {{"step_one", step_one, METH_O, "one step of the stream kept in the library"},
                                {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "MODULE", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_MODULE(void) { return PyModule_Create(&module); }
"""


def headers() -> str | None:
    """The directory holding this Python's ``Python.h``, or None when its headers are not installed."""
    include = sysconfig.get_paths().get("include")
    return include if include and Path(include, "Python.h").is_file() else None


def wrapper(real: str) -> str | None:
    """The wrapper's source for a step of ``real`` (``double``, ``float``), or None without the headers."""
    return TEMPLATE.replace("REAL", real) if headers() else None


def module_name(library: Path) -> str:
    """The wrapper's module name in the library cached as ``library`` (its key: one name per source)."""
    return f"edgernn_step_{library.stem}"


def load(path: str, name: str):
    """``step_one`` of the library at ``path``, which ctypes has loaded (the same file: the same states), or None
    when it was built without the wrapper."""
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    try:
        return importlib.util.module_from_spec(spec).step_one
    except (ImportError, AttributeError):
        return None
