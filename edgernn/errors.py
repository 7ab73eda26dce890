"""Every error class of edgernn, device side and host side, and the exit codes they map to.

Every error edgernn raises on bad input is an ``EdgernnError`` with a one-line message; the CLI turns it into
``error: <message>`` and its ``exit_code`` without a traceback (``edgernn.cli.exit_codes`` is the one place that maps
any exception to an exit code). Standard library only: the device imports it; the host-side classes cost nothing
here. ``edgernn.errors`` re-exports them for users of the host-side API.
"""

EXIT_OK = 0
EXIT_CHECK_FAILED = 1  # a check failed: verify's gate, stream --strict; nothing else uses it
EXIT_USAGE = 2  # usage or input error: bad option, bad file, bad bundle, missing optional dependency
EXIT_INTERNAL = 3  # a bug in edgernn: one line saying so; --debug shows the traceback
EXIT_INTERRUPTED = 130  # Ctrl-C


class EdgernnError(ValueError):
    """Base class: bad input or a failed check, described in one line."""

    exit_code = EXIT_USAGE


class BundleError(EdgernnError):
    """A bundle (directory, manifest, model file) is missing, malformed, tampered with or unsafe."""


class StateError(EdgernnError):
    """A saved predictor state is unreadable or belongs to another model or variant."""


class BackendError(EdgernnError):
    """No interpreter can run the requested variant, or the interpreter rejected the model."""


class CannotRunHere(BackendError):
    """This machine cannot run the backend (a C compiler missing or failing, a cache it cannot write): a
    preference list (``--backend c,numpy``) moves on to the next. A tampered cache or a damaged model is not
    this: it stops whichever backend was asked for."""


class IncompatibleError(BackendError):
    """The export recorded that this interpreter cannot load this variant's file (verify shows INCOMPATIBLE)."""


class MissingDependency(EdgernnError):
    """An optional package this command needs is not installed (names the extra to install)."""


class BusyError(EdgernnError):
    """Another process holds the lock on a target (exit code 2: the user started two writers)."""


class HeaderMismatch(EdgernnError):
    """The line service's input header names other columns (or another order) than the model reads."""



class BadPayload(EdgernnError):
    """An MQTT message that is not a reading (the bridge counts and logs it, naming its topic; never fatal)."""


# the host side's (training, export)
class DataError(EdgernnError):
    """A data source is missing, malformed or too small for the requested training."""


class ModelError(EdgernnError):
    """A Keras model cannot be trained, loaded or converted by edgernn (names the offending layer)."""


class ExportError(EdgernnError):
    """An export cannot be written (output exists, not writable, bad calibration data)."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's message cut to one line of at most ``limit`` characters (its type name if it has none):
    third-party messages go after a file name in edgernn's one-line errors."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]


def quoted(text: str, limit: int = 40) -> str:
    """``repr`` of a piece of user input for an error message, shortened: a cell can be megabytes long."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"
