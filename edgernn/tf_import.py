"""Import TensorFlow and Keras quietly, on first use only, and silence converter chatter.

TensorFlow 2.21 prints oneDNN and CUDA-probing lines from C++ at import time, before ``TF_CPP_MIN_LOG_LEVEL``
is read by absl, and its converters print calibration details straight to file descriptor 2; they say nothing
useful to our users. ``silenced_stderr`` points descriptor 2 at /dev/null for such a block (Python-level errors
still propagate as exceptions with their messages).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings


@contextlib.contextmanager
def silenced_stderr():
    """Discard everything written to stderr (C++ and Python) inside the block; ``EDGERNN_DEBUG`` keeps it."""
    if os.environ.get("EDGERNN_DEBUG"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    root = logging.getLogger()
    level = root.level
    try:
        with open(os.devnull, "w") as devnull, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            root.setLevel(logging.ERROR)
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        root.setLevel(level)
        os.close(saved)


def import_tensorflow():
    """Return the ``tensorflow`` module, imported with its start-up noise silenced."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with silenced_stderr():
        import tensorflow
        import keras  # noqa: F401  (its first import also probes devices)
    return tensorflow


def import_keras():
    """Return the ``keras`` module (Keras 3), importing TensorFlow quietly first."""
    import_tensorflow()
    import keras

    return keras
