"""The one place where the kind of an error decides the exit code and the one line the user sees.

0 success, 1 a check failed (returned by the commands themselves), 2 usage or input error, 3 an internal error.
Untrusted input must never reach 3: each reader turns what its parser raises into an ``EdgernnError`` at its own
boundary; what still arrives here unclassified is a bug, and says so.
"""

from __future__ import annotations

from edgernn.runtime.backends import EXTRAS as BACKEND_EXTRAS
from edgernn.errors import EXIT_INTERNAL, EXIT_USAGE, EdgernnError

# optional packages -> the extra that installs them: the host side's, and every backend's (from its table)
EXTRAS = {"keras": "train", "tf2onnx": "train", "onnx": "train", "matplotlib": "train", **BACKEND_EXTRAS}


def missing_extra(exc: BaseException) -> str | None:
    """The extra to install when ``exc`` is an import of one of edgernn's optional packages, else None."""
    if isinstance(exc, ImportError) and exc.name:
        return EXTRAS.get(exc.name.split(".")[0])
    return None


def classify(exc: BaseException) -> tuple[int, str]:
    """(exit code, one-line message) for an exception that ended a command."""
    if isinstance(exc, EdgernnError):
        return exc.exit_code, _one_line(str(exc))
    extra = missing_extra(exc)
    if extra is not None:
        return EXIT_USAGE, (f"this needs {exc.name.split('.')[0]}, which is not installed: "
                            f"pip install 'edgernn[{extra}]'")
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return EXIT_USAGE, _one_line(f"{exc.strerror or exc}{where}")
    text = _one_line(str(exc)) or "(no message)"
    return EXIT_INTERNAL, (f"internal error: {type(exc).__name__}: {text[:300]} -- this is a bug in edgernn; "
                           "run with --debug for the traceback and report it")


def _one_line(text: str) -> str:
    return " ".join(text.split())
