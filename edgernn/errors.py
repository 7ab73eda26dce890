"""All of edgernn's error types in one place (the runtime's own live in ``edgernn.runtime.errors``)."""

from edgernn.runtime.errors import BackendError, BundleError, EdgernnError, StateError


class DataError(EdgernnError):
    """A data source is missing, malformed or too small for the requested training."""


class ModelError(EdgernnError):
    """A Keras model cannot be trained, loaded or converted by edgernn (names the offending layer)."""


class ExportError(EdgernnError):
    """An export cannot be written (output exists, not writable, bad calibration data)."""


__all__ = [
    "BackendError",
    "BundleError",
    "DataError",
    "EdgernnError",
    "ExportError",
    "ModelError",
    "StateError",
]
