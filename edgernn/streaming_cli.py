"""The loop behind ``edgernn stream``: lines in, predictions out, state saved as the user asked.

Kept out of ``cli.py`` so the command stays thin, and free of TensorFlow: it imports only the runtime.
With ``save_every=1`` each prediction is printed only after the state that produced it (and the count of
input lines consumed) is on disk; a restart on the same input file skips the lines already consumed.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class StreamReport:
    steps: int = 0
    bad_lines: int = 0
    stopped_at: int | None = None  # line number of the bad line under --strict


def stream(predictor, lines, out, err, state_file: Path | None, save_every: int, strict: bool,
           skip: int = 0) -> StreamReport:
    """Feed ``lines`` (an iterable of text lines) through ``predictor``; print one prediction per value."""
    report = StreamReport()
    consumed = 0
    for number, line in enumerate(lines, start=1):
        if number <= skip:
            continue
        text = line.strip()
        consumed = number
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            report.bad_lines += 1
            print(f"line {number}: {text[:40]!r} is not a number; skipped", file=err, flush=True)
            if strict:
                report.stopped_at = number
                break
            continue
        prediction = predictor.step(value)
        report.steps += 1
        if state_file is not None and report.steps % save_every == 0:
            predictor.save_state(state_file, extra={"lines": number})
        out.write("nan\n" if math.isnan(prediction) else f"{prediction:.9g}\n")
        out.flush()
    if state_file is not None and report.steps % save_every != 0:
        predictor.save_state(state_file, extra={"lines": consumed})
    return report


def open_lines(source: str | None):
    """Lines from a file path, or stdin for None/``-``."""
    if source in (None, "-"):
        return sys.stdin
    return open(source, encoding="utf-8", errors="replace")
