"""Errors shared by the device runtime and the host side.

Every error edgernn raises on bad input is an ``EdgernnError`` with a one-line message; the CLI turns it into
``error: <message>`` and its ``exit_code`` (2: usage or input error) without a traceback.
"""


class EdgernnError(ValueError):
    """Base class: bad input or a failed check, described in one line."""

    exit_code = 2


class BundleError(EdgernnError):
    """A bundle (directory, manifest, model file) is missing, malformed, tampered with or unsafe."""


class StateError(EdgernnError):
    """A saved predictor state is unreadable or belongs to another model or variant."""


class BackendError(EdgernnError):
    """No interpreter can run the requested variant, or the interpreter rejected the model."""
