"""Silence native libraries' chatter on stderr (TFLite delegate banners, converter calibration logs).

They print from C++ straight to file descriptor 2, out of reach of Python's logging; ``silenced_stderr``
points descriptor 2 at /dev/null for a block. Python-level errors still propagate as exceptions with their
messages, and ``EDGERNN_DEBUG=1`` keeps everything.
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
