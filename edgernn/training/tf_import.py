"""Import TensorFlow and Keras quietly, on first use only, and silence converter chatter.

TensorFlow 2.21 prints oneDNN and CUDA-probing lines from C++ at import time, before ``TF_CPP_MIN_LOG_LEVEL``
is read by absl, and its converters print calibration details straight to file descriptor 2; they say nothing
useful to our users. ``silenced_stderr`` points descriptor 2 at /dev/null for such a block (Python-level errors
still propagate as exceptions with their messages).
"""

from __future__ import annotations

import os
import sys

from edgernn.runtime.quiet import silenced_stderr


def import_tensorflow():
    """Return the ``tensorflow`` module, imported with its start-up noise silenced."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with silenced_stderr():
        import tensorflow
        import keras  # noqa: F401  (its first import also probes devices)
    # "triggered tf.function retracing": a model per candidate (train --budget) is expected, not a user's problem
    tensorflow.get_logger().setLevel("ERROR")
    return tensorflow


def import_keras():
    """Return the ``keras`` module (Keras 3), importing TensorFlow quietly first."""
    import_tensorflow()
    import keras

    return keras
