"""Import TensorFlow and Keras quietly, on first use only.

TensorFlow 2.21 prints oneDNN and CUDA-probing lines from C++ at import time, before ``TF_CPP_MIN_LOG_LEVEL``
is read by absl; they say nothing useful to our users, so file descriptor 2 is pointed at /dev/null for the
duration of the import (Python-level errors still propagate as exceptions).
"""

from __future__ import annotations

import os
import sys


def import_tensorflow():
    """Return the ``tensorflow`` module, imported with its start-up noise silenced."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                import tensorflow
                import keras  # noqa: F401  (its first import also probes devices)
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)
    return tensorflow


def import_keras():
    """Return the ``keras`` module (Keras 3), importing TensorFlow quietly first."""
    import_tensorflow()
    import keras

    return keras
