"""``.npz`` archives from untrusted bytes (bundle files, saved states): plain arrays only, bounded, one-line errors.

``np.load`` on damaged bytes raises far more than ValueError: EOFError for zero bytes, zipfile's errors for a
damaged archive, ``tokenize.TokenError``/SyntaxError from its header parser (an ``.npy`` header is a Python
literal), zlib errors, MemoryError for an absurd declared shape; a member that is not ``.npy`` comes back as raw
bytes, and pickled (object) arrays are refused only because ``allow_pickle=False``. Every reader of such bytes
goes through ``load``, which turns all of that into one ValueError line.
"""

from __future__ import annotations

import io
import tokenize
import zipfile
import zlib

import numpy as np

# what zipfile, zlib and numpy's .npy reader raise on damaged input (measured by the fuzz tests)
PARSE_ERRORS = (ValueError, OSError, EOFError, KeyError, IndexError, TypeError, AttributeError, NotImplementedError,
                RuntimeError, MemoryError, OverflowError, RecursionError, SyntaxError, tokenize.TokenError,
                zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error)


def load(content: bytes, max_unpacked: int) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` in ``content``, read without pickle.

    ``max_unpacked`` bounds the sum of the members' declared sizes, which zipfile enforces while it inflates, so
    a small file cannot unpack to gigabytes.

    Raises:
        ValueError: one line saying why ``content`` is not an ``.npz`` of plain arrays.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > max_unpacked:
            raise ValueError(f"unpacks to {unpacked} bytes (at most {max_unpacked})")
        with np.load(io.BytesIO(content), allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except PARSE_ERRORS as exc:
        text = str(exc).strip()
        raise ValueError(text.splitlines()[0][:160] if text else type(exc).__name__) from None
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray):  # a member that is not .npy comes back as raw bytes
            raise ValueError(f"{key!r} is not an array")
    return arrays
