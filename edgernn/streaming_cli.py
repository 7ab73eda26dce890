"""The loop behind ``edgernn stream``: lines in, predictions out, state saved as the user asked.

Kept out of ``cli.py`` so the command stays thin, and free of TensorFlow: it imports only the runtime.

Durability with ``--state-file``: the state file records how many input lines were consumed, so a restart on
the same input file skips them. Printing to a pipe and saving a file cannot be one atomic act, so:
- to stdout, a prediction is printed only after the state that produced it is on disk (a kill in the
  microseconds between the two can drop that one line from the pipe, never the state);
- with ``--output FILE``, delivery is exactly once: each line is appended and fsynced *before* the state is
  saved with the file's new length, and a restart first truncates the file to the length the state records.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class StreamReport:
    steps: int = 0
    bad_lines: int = 0
    stopped_at: int | None = None  # line number of the bad line under --strict
    warned: bool = False  # the out-of-range warning is printed once


def _format(prediction: float) -> str:
    return "nan\n" if math.isnan(prediction) else f"{prediction:.9g}\n"


def stream(predictor, lines, out, err, state_file: Path | None, save_every: int, strict: bool,
           skip: int = 0, output_file: Path | None = None) -> StreamReport:
    """Feed ``lines`` through ``predictor``; write one prediction per value to ``out`` (or ``output_file``)."""
    report = StreamReport()
    consumed = skip
    sink = open(output_file, "a", encoding="utf-8") if output_file is not None else None
    try:
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
            if not report.warned and predictor.stats["out_of_range"][0]:
                report.warned = True
                low, high = predictor.stats["calibrated_range"]
                print(f"warning: line {number}: the input is outside the range the model was calibrated on "
                      f"(model units [{low:.3g}, {high:.3g}]); predictions may degrade", file=err, flush=True)
            save = state_file is not None and report.steps % save_every == 0
            if sink is not None:
                sink.write(_format(prediction))
                sink.flush()
                if save:
                    os.fsync(sink.fileno())
                    predictor.save_state(state_file, extra={"lines": number, "output_bytes": sink.tell()})
            else:
                if save:
                    predictor.save_state(state_file, extra={"lines": number})
                out.write(_format(prediction))
                out.flush()
        if state_file is not None and (report.steps % save_every != 0 or report.stopped_at):
            extra = {"lines": consumed}
            if sink is not None:
                sink.flush()
                os.fsync(sink.fileno())
                extra["output_bytes"] = sink.tell()
            predictor.save_state(state_file, extra=extra)
    finally:
        if sink is not None:
            sink.close()
    return report


def restore_output(output_file: Path, extra: dict) -> None:
    """Cut ``output_file`` back to the length the saved state vouches for (drops an uncommitted line)."""
    length = int(extra.get("output_bytes", 0))
    if output_file.exists() and output_file.stat().st_size > length:
        with open(output_file, "r+b") as handle:
            handle.truncate(length)


def open_lines(source: str | None):
    """Lines from a file path, or stdin for None/``-``."""
    if source in (None, "-"):
        return sys.stdin
    return open(source, encoding="utf-8", errors="replace")
