"""The preprocessing pipeline that travels with a model: optional first differencing, then scaling.

Fitted on the training split at training time, stored in the model's metadata and the bundle's manifest, and
applied with numpy alone on the device, so every public entry point takes and returns raw units.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edgernn.runtime.safe_json import finite_number

SCALES = ("standard", "minmax", "none")


@dataclass(frozen=True)
class Preprocessing:
    """``model_input = (diff_or_raw - offset) / divisor``; the model's output is decoded the same way back.

    With ``difference`` the model sees ``x[t] - x[t-1]`` and predicts the next difference, so a stream must
    remember its last raw value (part of the predictor's state) and the first value of a stream yields no
    prediction.
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
        base = np.diff(values) if self.difference else values
        return (base - self.offset) / self.divisor

    def transform_rows(self, rows: np.ndarray) -> np.ndarray:
        """Each row a raw window ``[streams, raw_window]`` -> model inputs ``[streams, raw_window - lag]``."""
        base = np.diff(rows, axis=1) if self.difference else rows
        return (base - self.offset) / self.divisor

    def encode(self, value, last):
        """One raw value (scalar or per-stream array) to a model input, given the stream's previous raw value."""
        base = value - last if self.difference else value
        return (base - self.offset) / self.divisor

    def decode(self, output, last):
        """A model output back to a raw next-value prediction, given the stream's latest raw value."""
        raw = output * self.divisor + self.offset
        return raw + last if self.difference else raw
