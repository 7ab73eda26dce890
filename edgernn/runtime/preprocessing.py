"""The preprocessing pipeline that travels with a model: optional first differencing, then scaling.

Fitted on the training split at training time, stored in the model's metadata and the bundle's manifest, and
applied with numpy alone on the device, so every public entry point takes and returns raw units.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edgernn.runtime.options import SCALES
from edgernn.runtime.safe_json import finite_number



@dataclass(frozen=True)
class Preprocessing:
    """``model_input = (diff_or_raw - offset) / divisor``; the model's output is decoded the same way back.

    With ``difference`` the model sees ``x[t] - x[t-1]`` and predicts the next difference, so a stream must
    remember its last raw value (part of the predictor's state) and the first value of a stream yields no
    prediction.

    ``encode(value, last)``: raw value(s) (a float or a per-stream array) to model input(s), given each stream's
    previous raw value; ``decode(output, last)``: model output(s) back to raw next-value prediction(s), given each
    stream's latest raw value. Every other method is built on these two.
    """

    difference: bool = False
    scale: str = "none"
    offset: float = 0.0
    divisor: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Preprocessing":
        """Build from a manifest/metadata dict; raises ValueError (wrapped by callers) when malformed."""
        if not isinstance(data, dict):
            raise ValueError(f"preprocessing must be an object, got {type(data).__name__}")
        difference = data.get("difference", False)
        scale = data.get("scale", "none")
        offset = data.get("offset", 0.0)
        divisor = data.get("divisor", 1.0)
        if not isinstance(difference, bool):
            raise ValueError("preprocessing.difference must be true or false")
        if scale not in SCALES:
            raise ValueError(f"preprocessing.scale must be one of {', '.join(SCALES)}, got {scale!r}")
        for name, value in (("offset", offset), ("divisor", divisor)):
            if not finite_number(value):
                raise ValueError(f"preprocessing.{name} must be a finite number, got {value!r}")
        if divisor <= 0:
            raise ValueError(f"preprocessing.divisor must be positive, got {divisor!r}")
        return cls(difference, scale, float(offset), float(divisor))

    @property
    def lag(self) -> int:
        """How many raw values are consumed before the first model input exists."""
        return 1 if self.difference else 0

    def transform(self, values: np.ndarray) -> np.ndarray:
        """A whole raw series to model inputs; shorter by ``lag`` values."""
        values = np.asarray(values, dtype=np.float64)
        return self.encode(values[1:], values[:-1]) if self.difference else self.encode(values, None)

    def transform_rows(self, rows: np.ndarray) -> np.ndarray:
        """Each row a raw window ``[streams, raw_window]`` -> model inputs ``[streams, raw_window - lag]``."""
        return self.encode(rows[:, 1:], rows[:, :-1]) if self.difference else self.encode(rows, None)

    def __post_init__(self):
        # encode/decode as closures over the constants: the same arithmetic serves numpy arrays (many streams)
        # and Python floats (the one-stream hot path, where a method call with attribute look-ups costs more
        # than the arithmetic)
        offset, divisor = self.offset, self.divisor
        if self.difference:
            def encode(value, last):
                return (value - last - offset) / divisor

            def decode(output, last):
                return output * divisor + offset + last
        else:
            def encode(value, last):
                return (value - offset) / divisor

            def decode(output, last):
                return output * divisor + offset
        object.__setattr__(self, "encode", encode)
        object.__setattr__(self, "decode", decode)

