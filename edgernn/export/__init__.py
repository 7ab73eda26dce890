"""Host side: Keras model -> step models -> TFLite/ONNX variants -> a bundle.

``edgernn.export`` is both this subpackage and, as the issue's API promises, a function:
``edgernn.export("model.keras", "bundle")``. A module subclass with ``__call__`` gives both without renaming
the package; the call forwards to ``edgernn.export.bundle.export``.
"""

import sys
import types


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from edgernn.export.bundle import export

        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
