"""The one number grammar of every reading and every data cell: train's CSV cells, stream's lines and rows, the
MQTT bridge's payloads.

Python's ``float`` accepts more than a sensor or a spreadsheet means by a number: ``1_000`` (a digit separator)
and digits of other scripts (``１２``, ``١٢``). Those are refused: a value silently read as a thousand, or a
full-width 12, would train or drive a model on something nobody wrote. What remains is ASCII decimal with an
optional sign, point and exponent, plus ``inf``/``nan`` spellings (each caller says what those mean).
"""

from __future__ import annotations


def strict_float(text: str) -> float:
    """``float(text)`` for plain ASCII numbers; raises ValueError for ``1_000``, non-ASCII digits or anything
    else ``float`` refuses."""
    if not text.isascii() or "_" in text:
        raise ValueError(text)
    return float(text)
