"""``edgernn stream`` as a user runs it: a real process, no TensorFlow imported."""

from __future__ import annotations

import json
import math
import os
import select
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from runtime_env import needs_spawn, needs_tflite

HEAVY = ("tensorflow", "keras", "tf2onnx", "onnx")
pytestmark = [needs_spawn, needs_tflite]  # real processes; the default variant is tflite-int8


def run_cli(args, stdin="", **kwargs):
    return subprocess.run([sys.executable, "-m", "edgernn", *args], input=stdin, capture_output=True,
                          text=True, timeout=120, **kwargs)


def test_runtime_and_stream_import_no_tensorflow(bundles, tmp_path):
    code = (
        "import sys, json\n"
        "import edgernn.runtime\n"
        "from edgernn.cli.commands import cli\n"
        "try:\n"
        f"    cli(['stream', {str(bundles['sine'])!r}, {str(tmp_path / 'in.txt')!r}, '--variant', 'tflite-int8'],"
        " obj={}, standalone_mode=False)\n"
        "finally:\n"
        f"    print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]), file=sys.stderr)\n"
    )
    (tmp_path / "in.txt").write_text("0.1\n0.2\n0.3\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 3
    assert json.loads(result.stderr.strip().splitlines()[-1]) == []


def test_stream_skips_bad_lines_and_strict_stops(bundles):
    result = run_cli(["stream", str(bundles["sine"])], "0.1\nabc\n\n0.2\nnan\n")
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 3 and result.stdout.splitlines()[2] == "nan"
    assert "line 2: 'abc' is not a number; skipped" in result.stderr
    strict = run_cli(["stream", str(bundles["sine"]), "--strict"], "0.1\nabc\n0.2\n")
    assert strict.returncode == 1 and len(strict.stdout.splitlines()) == 1


def test_stream_bad_bundle_and_state_exit_2(bundles, tmp_path):
    result = run_cli(["stream", str(tmp_path / "nope")], "0.1\n")
    assert result.returncode == 2 and result.stderr.startswith("error: bundle not found")
    assert "Traceback" not in result.stderr
    state = tmp_path / "s.state"
    assert run_cli(["stream", str(bundles["sine"]), "--state-file", str(state)], "0.1\n").returncode == 0
    state.write_bytes(state.read_bytes()[:100])  # a damaged edgernn state: starting over is the way out
    result = run_cli(["stream", str(bundles["sine"]), "--state-file", str(state)], "0.1\n")
    assert result.returncode == 2 and "truncated" in result.stderr and "--reset-state" in result.stderr
    result = run_cli(["stream", str(bundles["sine"]), "--state-file", str(state), "--reset-state"], "0.1\n")
    assert result.returncode == 0


@pytest.mark.parametrize("reset", [False, True], ids=["plain", "--reset-state"])
def test_a_file_that_is_not_a_state_is_never_overwritten(bundles, tmp_path, reset):
    """``--state-file notes.txt`` (a slip): refused in one line that names another path and does not advise
    --reset-state, which is refused too; the file is left as it was."""
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    result = run_cli(["stream", str(bundles["sine"]), "--state-file", str(notes), *(["--reset-state"] * reset)],
                     "0.1\n")
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "is not an edgernn state file" in result.stderr and "another --state-file path" in result.stderr
    assert "--reset-state" not in result.stderr and not result.stdout
    assert notes.read_text() == "my notes\n"


@pytest.mark.parametrize("name, intervals", [("sine", False), ("trend", False), ("sine", True)])
def test_kill_9_and_restart_continue_exactly(bundles, tmp_path, sine_values, name, intervals):
    """Killed at several points, each restart continues; the output equals an uninterrupted run's (trend:
    differenced, the last raw value is state too; intervals: the adaptive monitor's state and the anomaly log
    too)."""
    values = sine_values[:300] + (0.01 * np.arange(300) if name == "trend" else 0)
    if intervals:
        values[[50, 150, 250]] += 3.0  # spikes: anomalies for the log
    source = tmp_path / "in.txt"
    source.write_text("".join(f"{float(v)!r}\n" for v in values))
    log = tmp_path / "anomalies.log"
    options = ["--interval", "0.9", "--adaptive", "--anomalies"] if intervals else []
    whole = run_cli(["stream", str(bundles[name]), str(source), *options, "--anomaly-log", str(tmp_path / "w.log")]
                    if intervals else ["stream", str(bundles[name]), str(source)])
    if intervals and "export it again" in whole.stderr:
        pytest.skip("this bundle was exported before intervals")
    whole = whole.stdout
    output = tmp_path / "out.txt"
    args = [sys.executable, "-m", "edgernn", "stream", str(bundles[name]), str(source),
            "--state-file", str(tmp_path / "s.state"), "--save-every", "1", "--output", str(output), *options]
    args += ["--anomaly-log", str(log)] if intervals else []
    kills = 0
    for after in (20, 60, 120, 200):
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while process.poll() is None and time.time() < deadline:
            if output.exists() and output.read_text().count("\n") >= after:
                os.kill(process.pid, signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.001)
        process.wait(timeout=60)
    assert kills >= 2
    final = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    assert output.read_text() == whole
    if intervals:
        assert log.read_text() == (tmp_path / "w.log").read_text() and log.read_text().count("\n") >= 3


def test_intervals_on_the_command_line(bundles, tmp_path):
    """prediction,low,high (+ score,anomaly) per line; an old bundle or an uncalibrated level: one line, exit 2."""
    from make_bundles import BEFORE_INTERVALS

    old = run_cli(["stream", str(BEFORE_INTERVALS), "--variant", "tflite-float32", "--interval", "0.9"], "0.1\n")
    assert old.returncode == 2 and "export it again" in old.stderr and len(old.stderr.splitlines()) == 1
    result = run_cli(["stream", str(bundles["sine"]), "--interval", "0.9", "--anomalies"], "0.1\n0.2\n5.0\n0.3\n")
    if "export it again" in result.stderr:
        pytest.skip("this bundle was exported before intervals")
    rows = [line.split(",") for line in result.stdout.splitlines()]
    assert result.returncode == 0 and [len(r) for r in rows] == [5] * 4
    prediction, low, high = (float(v) for v in rows[1][:3])
    assert low < prediction < high and rows[0][3] == "nan"  # nothing was predicted for the first value
    assert rows[2][4] == "1" and "line 3: anomaly: 5 is outside the expected" in result.stderr
    # the spike was fed to the model clipped to its interval: the prediction after it moved less than as read
    kept = run_cli(["stream", str(bundles["sine"]), "--interval", "0.9", "--anomalies", "--keep-anomalies"],
                   "0.1\n0.2\n5.0\n0.3\n")
    moved = [abs(float(r[2].split(",")[0]) - float(r[1].split(",")[0]))
             for r in (result.stdout.splitlines(), kept.stdout.splitlines())]
    assert kept.returncode == 0 and moved[0] < moved[1] / 2, moved
    for args, message in ((["--interval", "0.85"], "no interval calibrated at level 0.85"),
                          (["--anomaly-log", str(tmp_path / "a.log")], "--anomaly-log needs --anomalies"),
                          (["--keep-anomalies"], "--keep-anomalies needs --anomalies"),
                          (["--adaptive"], "--adaptive needs")):
        bad = run_cli(["stream", str(bundles["sine"]), *args], "0.1\n")
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr, bad.stderr


def test_a_line_as_long_as_the_pipe_after_a_short_one_does_not_hang(bundles, tmp_path):
    """After a short line is read, a pipe holds a page less than its capacity: a line filling it (no newline in
    sight, the writer blocked) is taken as a too-long line instead of waited on forever."""
    source = tmp_path / "in.txt"
    source.write_text("0.1000000\n" + "9" * 65530 + "\n0.2\n")  # the long line does not fit after the first
    result = subprocess.run(f"cat {source} | {sys.executable} -m edgernn stream {bundles['sine']} --variant "
                            "tflite-float32", shell=True, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] != "nan" and lines[-1] != "nan"  # the readings around the long line are predicted


def _read_lines(pipe, count: int, timeout: float = 60) -> list[bytes]:
    """The first ``count`` lines from ``pipe`` (fewer at its end), each wait bounded by ``timeout``."""
    data, deadline = b"", time.time() + timeout
    while data.count(b"\n") < count:
        ready, _, _ = select.select([pipe], [], [], max(0.0, deadline - time.time()))
        chunk = os.read(pipe.fileno(), 4096) if ready else b""
        if not chunk:
            break
        data += chunk
    return data.splitlines()[:count]


@pytest.mark.parametrize("state", [False, True], ids=["plain", "--state-file"])
def test_a_reader_closing_stdout_ends_the_stream_quietly(bundles, tmp_path, state):
    """``edgernn stream B | head -2``: a closed stdout is how a reader stops (as ``yes | head``): exit 0, nothing
    on stderr about it (it was ``error: Broken pipe``, exit 2), the state saved. 20,000 lines: more than the pipe
    holds, so the stream must meet the closed pipe."""
    source = tmp_path / "in.txt"
    source.write_text("0.25\n" * 20000)
    saved = ["--state-file", str(tmp_path / "s.npz"), "--save-every", "1000"] if state else []
    process = subprocess.Popen([sys.executable, "-m", "edgernn", "stream", str(bundles["sine"]), str(source),
                                *saved], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first_two = _read_lines(process.stdout, 2)
    finally:
        process.stdout.close()  # the reader is done: the next write meets a closed pipe
    assert len(first_two) == 2 and all(math.isfinite(float(line)) for line in first_two)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert b"Broken pipe" not in stderr and b"BrokenPipeError" not in stderr and b"error" not in stderr, stderr
    if state:
        from edgernn.runtime import StreamingPredictor

        extra = StreamingPredictor.load(bundles["sine"], "tflite-int8").load_state(tmp_path / "s.npz")
        assert 2 <= extra["input"]["line"] < 20000


def test_a_csv_column_is_read_by_its_header_name(bundles, tmp_path):
    """--column reads one column of a CSV with a header (the file a model was trained on): the same predictions as
    the plain values; without a header before the first value, or naming no such column, one line and exit 2."""
    values = [0.1, 0.25, -0.3, 0.4, 0.05]
    plain = run_cli(["stream", str(bundles["sine"])], stdin="\n".join(map(str, values)) + "\n")
    assert plain.returncode == 0, plain.stderr
    table = "time,temp,humidity\n" + "".join(f"{i},{v},{50 + i}\n" for i, v in enumerate(values))
    picked = run_cli(["stream", str(bundles["sine"]), "--column", "temp"], stdin=table)
    assert picked.returncode == 0, picked.stderr
    assert picked.stdout == plain.stdout and picked.stdout.count("\n") == len(values)
    unnamed = run_cli(["stream", str(bundles["sine"])], stdin=table)  # a CSV without --column: says to name it
    assert unnamed.returncode == 2 and "starts with a CSV header (time,temp,humidity)" in unnamed.stderr
    assert "--column NAME" in unnamed.stderr and len(unnamed.stderr.strip().splitlines()) == 1, unnamed.stderr
    missing = run_cli(["stream", str(bundles["sine"])], stdin="NA,NA\n0.1\n0.2\n")  # gaps, not a header
    assert missing.returncode == 0 and missing.stdout.count("\n") == 2, missing.stderr
    noisy = run_cli(["stream", str(bundles["sine"]), "--column", "temp"],  # quoted cells, a stray line of words
                    stdin='"when","temp"\n"0","0.1"\nsensor restarted\n"1","0.25"\n')
    assert noisy.returncode == 0 and noisy.stdout.splitlines() == plain.stdout.splitlines()[:2], noisy.stderr
    assert "line 3: 'sensor restarted' has 1 cell(s)" in noisy.stderr and "1 non-numeric line(s) skipped" in noisy.stderr
    gap = run_cli(["stream", str(bundles["sine"]), "--column", "temp"], stdin="temp\n0.1\nNA\n0.2\n")
    assert gap.returncode == 0 and gap.stdout.splitlines()[1] == "nan", gap.stdout
    for stdin, args, message in (("0.1\n0.2\n", ["--column", "temp"], "no header line naming its columns"),
                                 (table, ["--column", "pressure"], "does not name pressure (asked for by --column)"),
                                 (table, ["--columns", "temp,humidity"], "--columns is for a model reading rows")):
        result = run_cli(["stream", str(bundles["sine"]), *args], stdin=stdin)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_time_column_keeps_rows_in_time_order_across_a_restart(bundles, tmp_path):
    """--time-column: rows in time order are the plain values' predictions; a row whose time repeats or goes
    back is reported, skipped and counted (exit 0), also after a restart from the state file, which keeps the
    last time; without a name for the value, or a header lacking the time column: one line, exit 2."""
    values = [0.1, 0.25, -0.3, 0.4]
    plain = run_cli(["stream", str(bundles["sine"])], stdin="\n".join(map(str, values)) + "\n")
    times = ["0", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "1700000000", "2026-01-01T00:00:01+00:00",
             "2026-01-01T00:00:02", "2026-01-01T00:00:02Z"]
    cells = [values[0], values[1], 9.0, 9.0, values[2], values[3], 9.0]  # 9.0: the rows to be skipped
    data = tmp_path / "in.csv"
    data.write_text("temp,when\n" + "".join(f"{v},{t}\n" for v, t in zip(cells, times)))
    args = ["stream", str(bundles["sine"]), str(data), "--column", "temp", "--time-column", "when",
            "--state-file", str(tmp_path / "s.npz"), "--out", str(tmp_path / "out.txt")]
    first = run_cli(args)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "out.txt").read_text() == plain.stdout
    assert "line 4: its time '2026-01-01T00:00:00Z' repeats" in first.stderr
    assert "line 5: its time '1700000000' comes before" in first.stderr and "line 8:" in first.stderr
    assert "3 row(s) not after the last row's time skipped" in first.stderr
    with data.open("a") as more:
        more.write("9.0,2025-12-31T23:59:59Z\n0.5,2026-01-01T00:00:03Z\n")
    again = run_cli(args)  # resumes after the last row: its time came with the state
    assert again.returncode == 0, again.stderr
    assert "line 9: its time '2025-12-31T23:59:59Z' comes before" in again.stderr
    assert len((tmp_path / "out.txt").read_text().splitlines()) == len(values) + 1
    changed = run_cli([*args[:5], "--state-file", str(tmp_path / "s.npz"), "--out", str(tmp_path / "out.txt")])
    assert changed.returncode == 2 and "saved reading the time column when; give the same --time-column" in \
        changed.stderr, changed.stderr  # the same state without --time-column
    for extra, message in ((["--time-column", "when"], "this model records no column name"),
                           (["--column", "temp", "--time-column", "stamp"], "does not name the time column stamp"),
                           (["--column", "temp", "--time-column", "temp"], "is a column the model reads")):
        result = run_cli(["stream", str(bundles["sine"]), str(data), *extra])
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_row_is_in_time_order_only_once_its_value_is_read(bundles, tmp_path):
    """A row skipped for its value does not take the time it names (the row after it with the same time is
    stepped), and epoch nanoseconds are compared exactly."""
    table = ("temp,when\n0.1,3\nabc,4\n0.2,4\n0.3,1700000000000000000\n0.4,1700000000000000100\n"
             "0.5,1700000000000000100\n0.6,+-5\n")
    result = run_cli(["stream", str(bundles["sine"]), "--column", "temp", "--time-column", "when"], stdin=table)
    assert result.returncode == 0 and result.stdout.count("\n") == 4, result.stderr
    assert "line 3: 'abc' (column temp) is not a number" in result.stderr
    assert "line 7: its time '1700000000000000100' repeats" in result.stderr
    assert "line 8: its time '+-5' (column when) is neither a number nor an ISO 8601 time" in result.stderr
    assert "2 non-numeric line(s) skipped" in result.stderr and "1 row(s) not after" in result.stderr


def test_a_table_header_is_refused_only_on_the_first_line(bundles):
    """A model that records no column name refuses a CSV header on the input's first line (one line, exit 2), and
    only there: a sensor's line of words later is skipped as before, and numbers (inf, 1e5) are never names."""
    for stdin in ("0.1\nsensor error, retrying\n0.2\n", "boot\nESP32 v1.2, ok\n0.5\n", "inf,-inf\n0.1\n",
                  "1e5,2e5\n0.1\n", "NA,nan\n0.1\n"):
        result = run_cli(["stream", str(bundles["sine"])], stdin=stdin)
        assert result.returncode == 0 and "skipped" in result.stderr, (stdin, result.stderr)
    header = run_cli(["stream", str(bundles["sine"])], stdin="when,temp\n0,0.1\n")
    assert header.returncode == 2 and "starts with a CSV header" in header.stderr, header.stderr


def test_skipped_lines_are_all_counted_but_not_all_logged(bundles):
    """A sensor sending junk for a month cannot fill the journal: the first 100 skipped lines are said, then every
    1000th with the count so far; the summary counts every one, and the numbers among them are all predicted."""
    stdin = "".join("junk\n" if i % 10 else f"{i / 1e4}\n" for i in range(2500))
    result = run_cli(["stream", str(bundles["sine"])], stdin=stdin)
    assert result.returncode == 0 and result.stdout.count("\n") == 250, result.stderr
    said = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    assert len(said) == 102 and "(100 so far; from now on every 1000th is logged)" in said[99], said[98:]
    assert said[-1].startswith("line 2223: ") and "2250 non-numeric line(s) skipped" in result.stderr


def test_json_lines_name_the_interval_and_the_anomaly(bundles):
    """--json-lines with --interval and --anomalies: one object per line with the CSV form's numbers by name."""
    stdin = "".join(f"{v}\n" for v in (0.1, 0.2, 0.3, 5.0, 0.4))
    args = ["stream", str(bundles["sine"]), "--interval", "0.9", "--anomalies"]
    plain, named = run_cli(args, stdin=stdin), run_cli([*args, "--json-lines"], stdin=stdin)
    assert plain.returncode == 0 and named.returncode == 0, named.stderr
    for row, record in zip(plain.stdout.splitlines(), named.stdout.splitlines()):
        record = json.loads(record)
        assert list(record) == ["prediction", "low", "high", "score", "anomaly"]
        cells = row.split(",")
        assert [None if c == "nan" else float(c) for c in cells[:4]] == [
            None if v is None else float(f"{v:.9g}") for v in list(record.values())[:4]]
        assert record["anomaly"] is (cells[4] == "1")
    assert any(json.loads(line)["anomaly"] for line in named.stdout.splitlines())


def test_a_backend_preference_list_takes_the_first_that_runs_the_variant(bundles):
    """--backend numpy,auto on an int8 variant: numpy runs float32 only, so auto's interpreter runs it."""
    values = "0.1\n0.25\n-0.3\n"
    plain = run_cli(["stream", str(bundles["sine"]), "--variant", "tflite-int8"], stdin=values)
    preferred = run_cli(["stream", str(bundles["sine"]), "--variant", "tflite-int8", "--backend", "numpy,auto"],
                        stdin=values)
    assert preferred.returncode == 0 and preferred.stdout == plain.stdout, preferred.stderr
    alone = run_cli(["stream", str(bundles["sine"]), "--variant", "tflite-int8", "--backend", "numpy"], stdin=values)
    assert alone.returncode == 2 and "runs float32 variants only" in alone.stderr, alone.stderr
    unknown = run_cli(["stream", str(bundles["sine"]), "--backend", "numpy,bogus"], stdin=values)
    assert unknown.returncode == 2 and "unknown backend 'bogus'" in unknown.stderr, unknown.stderr
