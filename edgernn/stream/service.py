"""The loop behind ``edgernn stream``: lines in, predictions out, state saved as the user asked, nothing lost.

The CLI's ``stream`` command only calls ``run``; everything a restart resumes is decided here. Free of
TensorFlow: it imports only the runtime and the stream's readers and sinks.

What survives a restart (``--state-file``):
- the hidden state, tied to the exact model file and quantization that produced it;
- the input position, only for a regular file and only in that same file (``readers``): a FIFO, a pipe or
  a replaced file is read from where it stands, never skipped;
- with ``--out FILE``, the committed length and tail of that same file (``sinks``): each prediction is
  appended and fsynced before the state that produced it is saved, so a restart after ``kill -9`` cuts back only
  an uncommitted line, whose input (from a file) comes again: exactly once. What others appended is never cut.
To stdout, with a save at a step, the prediction is printed after the save (a kill between the two can drop
that one line from a pipe, never the state). A reader closing stdout ends the run: saved, exit 0, quietly.

The state file is locked while a process uses it (under every name: ``locking``), and so is the output file.
No file the run writes may lie inside the bundle, and a state is never written over a file that is not one.
SIGTERM, SIGINT and SIGHUP finish the line in hand, save, and exit (0, or 130 for SIGINT).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from edgernn.runtime import locking
from edgernn.runtime.bundle import bundle_around
from edgernn.errors import EXIT_CHECK_FAILED, EXIT_INTERRUPTED, EXIT_OK, EdgernnError, StateError
from edgernn.runtime.state_file import check_replaceable
import numpy as np

from edgernn.stream.log_limit import LimitedLog
from edgernn.stream.lines import ANOMALY_LEVEL, IntervalLines, Picker, PlainLines, RowLines
from edgernn.stream.readers import Stop, open_input
from edgernn.stream.sinks import FileSink, StdoutSink

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass
class StreamReport:
    steps: int = 0
    bad_lines: int = 0
    first_bad: str = ""  # the first bad line's text, for the "no line was a number" error
    stopped_at: int | None = None  # line number of the bad line under --strict
    warned: bool = False  # the out-of-range warning is printed once


def _same_path(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return a.resolve() == b.resolve()


def check_paths(input_file: str | None, state_file: Path | None, output_file: Path | None,
                anomaly_log: Path | None = None, bundle=None) -> None:
    """Refuse file combinations that would destroy data, before anything is opened for writing: one file as two,
    a directory, a file inside the bundle (``bundle_around``, as ``c-array`` refuses), a state file that is not
    one (``check_replaceable``)."""
    source = None if input_file in (None, "-") else Path(input_file)
    files = [("the input", source), ("--out", output_file), ("--state-file", state_file),
             ("--anomaly-log", anomaly_log)]
    for i, (name, path) in enumerate(files):
        for other_name, other in files[:i]:
            if path is not None and other is not None and _same_path(path, other):
                raise EdgernnError(f"{name} {path} is the same file as {other_name}; it would be overwritten")
    for name, path in files[1:]:
        if path is None:
            continue
        if path.is_dir():
            raise EdgernnError(f"{name} {path} is a directory")
        place = bundle_around(path, bundle)
        if place is not None:
            raise EdgernnError(f"{name} {path} is inside a bundle directory ({place}): write it elsewhere")
    if state_file is not None:
        check_replaceable(state_file)


def _int(record: dict, key: str) -> int:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(key)
    return value


def parse_records(extra: dict, state_file: Path) -> tuple[dict | None, dict | None, dict | None]:
    """The input, output and anomaly-log records a state carries, type-checked (a state file is untrusted)."""
    try:
        source, sink, alerts = extra.get("input"), extra.get("output"), extra.get("anomalies")
        if source is not None:
            if not isinstance(source, dict) or source.get("kind") not in ("file", "stream"):
                raise ValueError("input")
            if source["kind"] == "file":
                for key in ("dev", "ino", "offset", "line", "tail_start"):
                    _int(source, key)
                if not all(isinstance(source.get(k), str) and _HEX64.fullmatch(source[k]) for k in ("head", "tail")):
                    raise ValueError("input fingerprint")
        for name, record in (("output", sink), ("anomalies", alerts)):
            if record is not None:
                if not isinstance(record, dict) or not isinstance(record.get("path"), str):
                    raise ValueError(name)
                for key in ("dev", "ino", "bytes") + (("in_flight",) if "in_flight" in record else ()):
                    _int(record, key)
                if "tail" in record and not (isinstance(record["tail"], str) and _HEX64.fullmatch(record["tail"])):
                    raise ValueError(f"{name} fingerprint")
    except ValueError as exc:
        raise StateError(f"state file {state_file} has a malformed {exc} record; use --reset-state to start "
                         "over") from None
    return source, sink, alerts


@contextlib.contextmanager
def signals_stop(stop: Stop):
    """SIGTERM/SIGINT/SIGHUP ask the loop to stop after the line in hand (restored afterwards)."""
    def handler(signum, frame):
        stop.signal = signum

    saved = {}
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):  # not the main thread: leave the defaults
            saved[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, previous in saved.items():
            signal.signal(signum, previous)


def _extra(source_position, sink, alerts, lines, final: bool = False) -> dict:
    """What a state records beside the hidden state: positions in the input, output and anomaly log (``final``:
    nothing more follows them), and the interval monitor's own state."""
    extra = {"input": source_position, "output": sink.position(final)}
    log = alerts.position(final) if alerts is not None else None
    if log is not None:
        extra["anomalies"] = log
    if lines.monitor is not None:
        extra["monitor"] = lines.monitor.state()
    if lines.picked is not None:
        extra["picked"] = lines.picked  # the names and the header's cells: a restart past the header reads on
    return extra


def stream(predictor, source, sink, state_file: Path | None, save_every: int, strict: bool, stop: Stop,
           err=None, lines=None, alerts=None) -> StreamReport:
    """Feed ``source``'s lines through ``predictor``; one output line per value to ``sink`` (``lines`` makes
    it: plain predictions by default), anomaly alerts to ``alerts``; save as asked. Ends at the input's end, a
    stop signal, a bad line under ``strict``, or a reader that closed stdout (``sink.gone``)."""
    err = err or sys.stderr
    lines = lines or PlainLines(predictor)
    alerts = alerts or StdoutSink(err)
    report = StreamReport()
    skipped = LimitedLog(err)  # every skipped line counted; the first 100 said, then every 1000th
    since_save = 0

    def save(position=None, final=False):
        sink.commit()
        alerts.commit()
        predictor.save_state(state_file, extra=_extra(position or source.position(), sink, alerts, lines, final))
        sink.after_save()
        alerts.after_save()

    start = source.mark()
    before = start if strict and state_file is not None else None
    moved = _out_of_range_moved(predictor)
    parse = lines.parse  # fetched again only after a header: this loop runs per line (benchmarks/stream_speed.py)
    for line in source:
        value, problem = parse(line.raw)
        if problem is not None and lines.take_header(line.raw, not report.steps, line.number == 1):  # by name now
            parse, problem = lines.parse, None
        if problem is not None:
            report.bad_lines += 1
            report.first_bad = report.first_bad or problem
            if strict:
                report.stopped_at = line.number
                print(f"line {line.number}: {problem}; stopped (--strict)", file=err, flush=True)
                break
            skipped("skipped", f"line {line.number}: {problem}; skipped")
        elif value is not None:
            text, alert = lines(value, line.number)
            report.steps += 1
            if not report.warned and moved():
                _warn_out_of_range(predictor, report, line.number, err)
            since_save += 1
            due = state_file is not None and since_save >= save_every
            sink.write(text, deferred=due)
            if alert is not None:
                alerts.write(alert, deferred=due)
            if due:
                save()
                since_save = 0
        if stop.signal is not None or sink.gone:  # (not ``if stop``: its __bool__ is a call per line)
            break
        if before is not None:
            before = source.mark()  # under --strict a bad line is not consumed: a restart stops there again
    durable = not (isinstance(sink, StdoutSink) and isinstance(alerts, StdoutSink))
    if state_file is not None and (report.steps or durable):  # final: a restart finds nothing in flight
        judged = report.steps or getattr(lines.picker, "unordered", 0)  # rows out of time order are read too
        at = before if report.stopped_at is not None else None if judged else start
        save(source.position(at), final=True)
    sink.after_save()
    alerts.after_save()
    return report


def _out_of_range_moved(predictor):
    """A check, cheap enough for every line, of whether any value has fallen outside the calibrated range since
    the start: the predictor's live counts (not the copy ``stats`` builds) compared with how they started."""
    counts = predictor.out_of_range_counts()  # a run never resets the predictor: the view stays live
    start = counts.tobytes()
    return lambda: counts.tobytes() != start


def _warn_out_of_range(predictor, report: StreamReport, number: int, err) -> None:
    report.warned = True
    low, high = predictor.stats["calibrated_range"]
    print(f"warning: line {number}: the input is outside the range the model was calibrated on "
          f"(model units [{low:.3g}, {high:.3g}]); predictions may degrade", file=err, flush=True)


def check_interval_options(interval, adaptive: bool, anomalies: bool, keep_anomalies: bool, log_path) -> None:
    """Options that only mean something beside another one: a one-line error naming it (the line service and
    the bridge alike; the bridge has no ``log_path``)."""
    if log_path is not None and not anomalies:
        raise EdgernnError("--anomaly-log needs --anomalies")
    if keep_anomalies and not anomalies:
        raise EdgernnError("--keep-anomalies needs --anomalies")
    if adaptive and interval is None and not anomalies:
        raise EdgernnError("--adaptive needs --interval or --anomalies")


def run(bundle, input_file: str | None, *, variant: str, backend: str, state_file: str | None, save_every: int,
        reset_state: bool, on_nan: str, strict: bool, output_file: str | None, follow: bool, err=None,
        interval: float | None = None, adaptive: bool = False, anomalies: bool = False,
        anomaly_log: str | None = None, json_lines: bool = False, trust=None, keep_anomalies: bool = False,
        column: str | None = None, columns: list[str] | None = None, time_column: str | None = None) -> int:
    """``edgernn stream``: returns the exit code. Raises EdgernnError/OSError for bad input (one line).

    ``column``/``columns``: a CSV input's columns feeding the model, by the header's names (``Picker``);
    ``time_column``: the column of each row's time, rows read in that order (one not after the last: skipped)."""
    from edgernn.runtime import StreamingPredictor

    err = err or sys.stderr
    state_path = Path(state_file) if state_file else None
    output_path = Path(output_file) if output_file else None
    log_path = Path(anomaly_log) if anomaly_log else None
    check_interval_options(interval, adaptive, anomalies, keep_anomalies, log_path)
    check_paths(input_file, state_path, output_path, log_path, bundle)
    predictor = StreamingPredictor.load(bundle, variant=variant, backend=backend, on_nan=on_nan, trust=trust)
    picker = _picker(predictor.manifest, column, columns, time_column)
    lines = _lines(predictor, json_lines, picker, interval, adaptive, anomalies, keep_anomalies)
    if predictor.backend_note:
        print(f"note: {predictor.backend_note}", file=err, flush=True)
    stop = Stop()
    with contextlib.ExitStack() as stack:
        if state_path is not None:
            stack.enter_context(locking.locked(state_path, "state file"))
        input_record = output_record = log_record = None
        if state_path is not None and state_path.exists() and not reset_state:
            extra = predictor.load_state(state_path)
            input_record, output_record, log_record = parse_records(extra, state_path)
            if lines.monitor is not None:
                lines.monitor.restore(extra.get("monitor"), f"state file {state_path}")
            lines.restore(extra.get("picked"))
        sink = FileSink(output_path, output_record, err, save_every) if output_path else StdoutSink()
        stack.callback(sink.close)
        alerts = FileSink(log_path, log_record, err, save_every, "--anomaly-log") if log_path else StdoutSink(err)
        stack.callback(alerts.close)
        stack.enter_context(signals_stop(stop))
        source = open_input(input_file, stop, follow, err)
        if source is None:  # stopped while waiting for the input to appear
            return _summary(predictor, StreamReport(), stop, err)
        stack.callback(source.close)
        note = source.resume(input_record) if input_record else None
        if note:
            print(note, file=err, flush=True)
        if state_path is not None and output_record is None and isinstance(sink, FileSink):
            # a new state records the output's length before the first line: a run killed before its first
            # save must still have its uncommitted lines cut back on restart
            predictor.save_state(state_path, extra=_extra(source.position(), sink, alerts, lines))
        report = stream(predictor, source, sink, state_path, save_every, strict, stop, err, lines, alerts)
    return _summary(predictor, report, stop, err, lines)


def _lines(predictor, json_lines: bool, picker, interval, adaptive: bool, anomalies: bool, keep_anomalies: bool):
    """What each input line becomes: a prediction (``PlainLines``), a row's outputs (``RowLines``) or a prediction
    with its interval and anomaly score (``IntervalLines``)."""
    wants_intervals = interval is not None or anomalies or adaptive
    if predictor.manifest.takes_rows:
        if wants_intervals:
            raise EdgernnError("this bundle's model is multivariate; its intervals are not calibrated yet "
                               "(drop --interval/--adaptive/--anomalies)")
        return RowLines(predictor, json_lines, picker)
    if wants_intervals:
        monitor = predictor.monitor(ANOMALY_LEVEL if interval is None else interval, adaptive,
                                    clean=anomalies and not keep_anomalies)
        return IntervalLines(monitor, anomalies, picker, json_lines)
    return PlainLines(predictor, json_lines, picker)


def _picker(manifest, column: str | None, columns: list[str] | None, time: str | None = None) -> Picker | None:
    """Which header names feed the model: asked for (``--column`` for one value, ``--columns`` for a row), or the
    model's own (None for a bundle that records no names: plain numbers only); ``time``: the time column."""
    picker = _named(manifest, column, columns)
    if time is None:
        return picker
    if picker is None:
        raise EdgernnError("--time-column reads a CSV by its header, and this model records no column name: name "
                           "the column it reads too (--column NAME)")
    if time in picker.wanted:
        raise EdgernnError(f"--time-column {time[:200]} is a column the model reads")
    return Picker(picker.wanted, True, time)


def _named(manifest, column: str | None, columns: list[str] | None) -> Picker | None:
    features = manifest.columns.features if manifest.columns.named else None  # a plain univariate model: no name
    if column is not None and columns is not None:
        raise EdgernnError("--column and --columns: give one (--column for a one-value model, --columns for rows)")
    if column is not None:
        if manifest.takes_rows:
            raise EdgernnError(f"--column picks one column; this model reads {','.join(features)} (use --columns)")
        return Picker([column], True)
    if columns is not None:
        if not manifest.takes_rows:
            raise EdgernnError("--columns is for a model reading rows; this one reads one value (use --column)")
        if columns != "all" and len(set(columns)) != len(columns):
            raise EdgernnError(f"--columns {','.join(columns)[:200]} names a column twice")
        if columns == "all" or len(columns) != len(features):
            raise EdgernnError(f"--columns names {len(columns) if columns != 'all' else 'all'} column(s); the model "
                               f"reads {len(features)} ({','.join(features)}), in that order")
        return Picker(columns, True)
    return Picker(features, False) if features else None


def _summary(predictor, report: StreamReport, stop: Stop, err, lines=None) -> int:
    unordered = getattr(getattr(lines, "picker", None), "unordered", 0)  # rows not after the last (--time-column)
    if report.bad_lines and not (report.steps or unordered) and report.stopped_at is None:
        expects = ("one row of comma-separated numbers" if predictor.manifest.takes_rows
                   else "one number")
        csv = "," in report.first_bad and not predictor.manifest.takes_rows  # a table given to a one-value model
        raise EdgernnError(f"no line was a number ({report.bad_lines} read, the first: {report.first_bad}): "
                           f"edgernn stream expects {expects} per line"
                           + ("; for a CSV with a header, name the column: --column NAME" if csv else ""))
    if report.bad_lines > unordered and report.stopped_at is None:
        print(f"{report.bad_lines - unordered} non-numeric line(s) skipped", file=err)
    if unordered and report.stopped_at is None:
        print(f"{unordered} row(s) not after the last row's time skipped", file=err)
    stats = predictor.stats
    if np.any(stats["out_of_range"][0]):
        print(f"{int(np.max(stats['out_of_range'][0]))} of {predictor.steps} steps were outside the calibrated input "
              f"range ({int(np.max(stats['clipped'][0]))} clipped by the input quantization)", file=err)
    monitor = getattr(lines, "monitor", None)
    if monitor is not None and report.steps:
        flagged = f"; {lines.flagged} anomalies flagged" if lines.anomalies else ""
        print(f"the {monitor.level:g} intervals covered {100 * monitor.coverage:.1f}% of the {monitor.scored} values "
              f"scored{flagged}", file=err)
    if report.stopped_at is not None:
        return EXIT_CHECK_FAILED
    if stop.signal == signal.SIGINT:
        return EXIT_INTERRUPTED
    return EXIT_OK
