"""The host-side API's error types, re-exported: every class lives in ``edgernn.runtime.errors``."""

from edgernn.runtime.errors import BackendError, BundleError, DataError, EdgernnError, ExportError, ModelError, StateError

__all__ = [
    "BackendError",
    "BundleError",
    "DataError",
    "EdgernnError",
    "ExportError",
    "ModelError",
    "StateError",
]
