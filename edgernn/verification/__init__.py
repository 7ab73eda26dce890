"""``edgernn verify``: what each variant costs in accuracy, measured the way the device runs it.

Each variant is stepped with its state carried over a long sequence (at least 10,000 steps by default) through
``StreamingPredictor`` and compared with the float model on the same inputs; the gate holds every variant to
its threshold on NRMSE vs float (% of the float output's range) and on drift.

The rooms: ``data`` (what to replay and the float model's answers), ``gate`` (the thresholds and the verdict of
one variant), ``run`` (``verify``: every variant on every backend), ``results`` (what comes out), ``table``
(how it is shown and stored).
"""

from edgernn.errors import DataError
from edgernn.verification.gate import DEFAULT_MAX_CLIPPED, DEFAULT_STEPS, parse_thresholds
from edgernn.verification.results import VariantResult, VerifyResult
from edgernn.verification.run import verify
from edgernn.verification.table import format_table, write_verify_json

__all__ = ["DEFAULT_MAX_CLIPPED", "DEFAULT_STEPS", "DataError", "VariantResult", "VerifyResult", "format_table",
           "parse_thresholds", "verify", "write_verify_json"]
