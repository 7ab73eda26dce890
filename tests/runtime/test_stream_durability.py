"""``edgernn stream`` as a service: restarts, FIFOs, rotated logs, kill -9, shared files. Real processes only.

Every reading must get exactly one prediction line, identical to an uninterrupted run over the same values,
wherever the input is replayable; from a pipe, a kill may lose the one line in hand and nothing else.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from edgernn.runtime import StreamingPredictor
from runtime_env import FLOAT32, INT8, needs_interpreter, needs_spawn

pytestmark = [needs_spawn, needs_interpreter]
CLI = [sys.executable, "-m", "edgernn"]


def _lines(values) -> str:
    return "".join(f"{float(v)!r}\n" for v in values)


def _stream_args(bundle, source, tmp_path, *extra, variant=INT8):
    return [*CLI, "stream", str(bundle), str(source), "--variant", variant, "--state-file",
            str(tmp_path / "state.npz"), "--save-every", "1", "--out", str(tmp_path / "out.txt"), *extra]


def _uninterrupted(bundle, values, tmp_path) -> str:
    source = tmp_path / "all-values.txt"
    source.write_text(_lines(values))
    result = subprocess.run([*CLI, "stream", str(bundle), str(source), "--variant", INT8], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _run(args, stdin=None, **kwargs):
    return subprocess.run(args, input=stdin, capture_output=True, timeout=120, **kwargs)


def _open_fifo_writer(fifo, reader=None, timeout: float = 60) -> int:
    """The FIFO's write end, once a reader has it open: a blocking ``open(fifo, "w")`` would wait forever for a
    reader that died first, so open without blocking (ENXIO while no reader) until ``timeout``."""
    deadline = time.time() + timeout
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
        else:
            os.set_blocking(fd, True)
            return fd
        if reader is not None and reader.poll() is not None:
            raise AssertionError(f"the reader exited ({reader.returncode}) before opening {fifo}")
        if time.time() > deadline:
            raise AssertionError(f"no reader opened {fifo} within {timeout} s")
        time.sleep(0.01)


def test_fifo_restarted_20_times_answers_every_reading_exactly_once(bundles, tmp_path, sine_values):
    """The README's service scenario: a writer closes and reopens the FIFO 20 times, the stream restarts each
    time (state, --save-every 1, --output)."""
    values = sine_values[:200]
    fifo = tmp_path / "sensor.fifo"
    os.mkfifo(fifo)
    args = _stream_args(bundles["sine"], fifo, tmp_path)
    for chunk in np.array_split(values, 20):
        reader = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
        with open(_open_fifo_writer(fifo, reader), "w") as writer:
            writer.write(_lines(chunk))
        _, stderr = reader.communicate(timeout=60)
        assert reader.returncode == 0, stderr
    assert (tmp_path / "out.txt").read_text() == _uninterrupted(bundles["sine"], values, tmp_path)


def _lost_readings(bundle, values, outputs: list[str], scratch) -> list[int]:
    """Align the outputs with the inputs: the indices of readings that got no prediction (a lone predictor
    replays the stream, skipping a reading whenever its prediction is not the next output line). Float32
    only: an int8 output has 256 values, so two readings can give the same line and fool the alignment."""
    predictor = StreamingPredictor.load(bundle, FLOAT32)
    lost, k = [], 0
    for i, value in enumerate(values):
        predictor.save_state(scratch)
        line = predictor.step(float(value))
        if k < len(outputs) and f"{line:.9g}" == outputs[k]:
            k += 1
        else:
            lost.append(i)
            predictor.load_state(scratch)
    assert k == len(outputs), "an output line matches no reading: a duplicate or a corrupted line"
    return lost


def _wait_until_open(pid: int, path, timeout: float = 60) -> None:
    """Until process ``pid`` holds ``path`` open (Linux /proc)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(path) for fd in os.listdir(f"/proc/{pid}/fd")):
                return
        except OSError:
            pass  # a descriptor closed while looking
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not open {path}")


def test_kill_9_on_a_fifo_loses_at_most_the_line_in_hand(bundles, tmp_path, sine_values):
    """10 kills at random moments while a writer feeds the FIFO: each loses at most one reading (the one being
    processed); nothing written after a restart is skipped, nothing is answered twice."""
    values = sine_values[:400]
    fifo = tmp_path / "sensor.fifo"
    os.mkfifo(fifo)
    last_reader_started = threading.Event()

    def write():
        fd = _open_fifo_writer(fifo, timeout=120)  # kept open: lines in the pipe outlive a killed reader
        deadline = time.time() + 300
        for line in _lines(values).splitlines(keepends=True):
            while time.time() < deadline:
                try:
                    os.write(fd, line.encode())
                    break
                except BrokenPipeError:  # no reader at this moment (restarting): try again
                    time.sleep(0.005)
            time.sleep(0.01)
        last_reader_started.wait(timeout=300)
        os.close(fd)  # the end of the stream: the last reader exits at EOF

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    rng = np.random.default_rng(0)
    args = _stream_args(bundles["sine"], fifo, tmp_path, variant=FLOAT32)
    for kills in range(1, 11):
        reader = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.4, 1.2))
        reader.send_signal(signal.SIGKILL)
        reader.wait(timeout=60)
    reader = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_until_open(reader.pid, fifo)  # a writer closing before any reader has the FIFO open discards the pipe
    last_reader_started.set()
    _, stderr = reader.communicate(timeout=120)
    assert reader.returncode == 0, stderr
    writer.join(timeout=60)
    outputs = (tmp_path / "out.txt").read_text().splitlines()
    lost = _lost_readings(bundles["sine"], values, outputs, tmp_path / "scratch.npz")
    print(f"fifo kill -9: {kills} kills, {len(lost)} readings unanswered ({lost})")
    assert len(lost) <= kills


def test_kill_9_and_log_rotation_on_a_followed_file_exactly_once(bundles, tmp_path, sine_values):
    """An append-only log followed with --follow, rotated twice (rename away, new file) while 20 kills hit the
    reader at random moments: every line gets exactly one prediction, identical to an uninterrupted run."""
    values = sine_values[:600]
    log = tmp_path / "sensor.log"
    output = tmp_path / "out.txt"
    log.write_text("")

    def lines_out() -> int:
        return output.read_text().count("\n") if output.exists() else 0

    def write():
        # a log rotated before the reader ever started is not the reader's (it never knew the file): begin
        # once a first reader has recorded where it stands (its state is saved before its first line)
        deadline = time.time() + 120
        while not (tmp_path / "state.npz").exists() and time.time() < deadline:
            time.sleep(0.01)
        for i, line in enumerate(_lines(values).splitlines(keepends=True)):
            if i in (200, 400):  # as logrotate does: .1 -> .2, the log -> .1, a new empty log
                # rotated while the reader is behind by a few lines (it finds them in .1), never twice before
                # a reader ran at all: on a loaded machine the kills below can outpace every start-up
                deadline = time.time() + 120
                while lines_out() < i - 20 and time.time() < deadline:
                    time.sleep(0.01)
                if log.with_name("sensor.log.1").exists():
                    os.rename(log.with_name("sensor.log.1"), log.with_name("sensor.log.2"))
                os.rename(log, log.with_name("sensor.log.1"))
                log.write_text("")
            with open(log, "a") as handle:
                handle.write(line)
            time.sleep(0.02)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    rng = np.random.default_rng(1)
    args = _stream_args(bundles["sine"], log, tmp_path, "--follow")
    for _ in range(20):
        reader = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.2, 1.0))
        reader.send_signal(signal.SIGKILL)
        reader.wait(timeout=60)
    reader = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    writer.join(timeout=180)
    deadline = time.time() + 120
    while time.time() < deadline and lines_out() < values.size:
        time.sleep(0.05)
    reader.send_signal(signal.SIGTERM)  # systemd's stop: finish the line in hand, save, exit 0
    _, stderr = reader.communicate(timeout=60)
    assert not writer.is_alive() and reader.returncode == 0, stderr
    assert output.read_text() == _uninterrupted(bundles["sine"], values, tmp_path)


def test_a_new_state_records_the_output_before_the_first_line(bundles, tmp_path):
    """A first run killed before its first save must still have its uncommitted lines cut back: the state is
    written before anything is read (found by the FIFO kill test: an orphan line from a killed first run)."""
    output = tmp_path / "out.txt"
    output.write_text("0.5\n")  # from an earlier run without a state: kept
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    reader = subprocess.Popen(_stream_args(bundles["sine"], fifo, tmp_path), stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not (tmp_path / "state.npz").exists() and time.time() < deadline:  # saved while no writer has come
        time.sleep(0.01)
    reader.send_signal(signal.SIGKILL)
    reader.wait(timeout=60)
    predictor = StreamingPredictor.load(bundles["sine"], INT8)
    extra = predictor.load_state(tmp_path / "state.npz")
    assert extra["output"]["bytes"] == 4 and extra["input"] == {"kind": "stream"}


def test_replaced_or_rewritten_input_file_is_read_from_its_start(bundles, tmp_path, sine_values):
    values = sine_values[:7]
    source = tmp_path / "in.txt"
    source.write_text(_lines(values[:3]))
    args = _stream_args(bundles["sine"], source, tmp_path)
    assert _run(args).returncode == 0
    replacement = tmp_path / "new.txt"
    replacement.write_text(_lines(values[3:]))
    os.replace(replacement, source)  # a new file under the same name: nothing of it was read
    result = _run(args)
    assert result.returncode == 0 and b"reading" in result.stderr
    assert (tmp_path / "out.txt").read_text() == _uninterrupted(bundles["sine"], values, tmp_path)
    with open(source, "r+") as handle:  # the same file, rewritten in place: not the prefix the state read
        handle.write(_lines(values[3:5]).replace("0", "1", 1))
        handle.truncate()
    assert _run(args).returncode == 0
    assert (tmp_path / "out.txt").read_text().count("\n") == 9


def test_output_is_append_only_and_tied_to_its_state(bundles, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("0.1\n0.2\n")
    plain = [*CLI, "stream", str(bundles["sine"]), str(source), "--variant", INT8]
    log = tmp_path / "log.txt"
    for _ in range(2):  # without a state, each run appends
        assert _run([*plain, "--out", str(log)]).returncode == 0
    assert log.read_text().count("\n") == 4
    state = ["--state-file", str(tmp_path / "s.npz"), "--save-every", "1"]
    assert _run([*plain, *state, "--out", str(log)]).returncode == 0
    important = tmp_path / "important.log"
    important.write_text("precious\n" * 500)
    result = _run([*plain, *state, "--out", str(important)])
    assert result.returncode == 2 and result.stderr.count(b"\n") == 1
    assert b"is not the file this state was writing" in result.stderr and str(log).encode() in result.stderr
    assert important.read_text() == "precious\n" * 500
    rotated = tmp_path / "fresh.log"
    rotated.write_text("")  # an empty file (a log rotated with `create`) is adopted
    assert _run([*plain, *state, "--out", str(rotated)]).returncode == 0


def test_lines_others_appended_to_the_output_are_never_cut(bundles, tmp_path):
    """A stateful run; then a run without the state appends 10 predictions to the same --output, and a person a
    note. The stateful run again must not cut them (it did: exit 0, 11 lines gone): one line naming the ways
    out, exit 2, nothing lost; --reset-state then appends after them."""
    source, output = tmp_path / "in.txt", tmp_path / "out.txt"
    source.write_text(_lines([0.1, 0.2, 0.3]))
    stateful = _stream_args(bundles["sine"], source, tmp_path)
    assert _run(stateful).returncode == 0
    other = tmp_path / "in2.txt"
    other.write_text(_lines(np.linspace(0.0, 1.0, 10)))
    assert _run([*CLI, "stream", str(bundles["sine"]), str(other), "--variant", INT8, "--out",
                 str(output)]).returncode == 0
    with open(output, "a") as handle:
        handle.write("note\n")
    kept = output.read_bytes()
    assert kept.count(b"\n") == 14
    with open(source, "a") as handle:
        handle.write(_lines([0.4]))
    result = _run(stateful)
    assert result.returncode == 2 and result.stderr.count(b"\n") == 1, result.stderr
    assert b"bytes after the" in result.stderr and b"another --out" in result.stderr
    assert b"--reset-state" in result.stderr and b"truncate -s" in result.stderr
    assert output.read_bytes() == kept
    again = _run([*stateful, "--reset-state"])
    assert again.returncode == 0 and output.read_bytes()[:len(kept)] == kept
    assert output.read_bytes().count(b"\n") == 14 + 4


def test_an_output_with_the_states_inode_but_other_bytes_is_refused(bundles, tmp_path):
    """What a new file that reused the old inode looks like (``rm out.txt``, another file created): the device
    and inode the state recorded, other bytes, longer. It was cut with no error; now it is refused, untouched.
    (Rewritten in place here: the kernel decides when an inode is reused.)"""
    source, output = tmp_path / "in.txt", tmp_path / "out.txt"
    source.write_text(_lines([0.1, 0.2, 0.3]))
    stateful = _stream_args(bundles["sine"], source, tmp_path)
    assert _run(stateful).returncode == 0
    with open(output, "r+b") as handle:
        handle.write(b"x" * len(output.read_bytes()) + b"another file's line\n")
    kept = output.read_bytes()
    result = _run(stateful)
    assert result.returncode == 2 and result.stderr.count(b"\n") == 1, result.stderr
    assert b"is not the file this state was writing" in result.stderr and output.read_bytes() == kept


def _killed_before_its_first_line(bundle, tmp_path) -> None:
    """A stateful run on a FIFO, killed once its state is saved (before any line): a run that may have left
    --save-every (1) uncommitted lines in --output."""
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    reader = subprocess.Popen(_stream_args(bundle, fifo, tmp_path), stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not (tmp_path / "state.npz").exists() and time.time() < deadline and reader.poll() is None:
        time.sleep(0.01)
    reader.send_signal(signal.SIGKILL)
    reader.wait(timeout=60)
    assert (tmp_path / "state.npz").exists()


@pytest.mark.parametrize("appended", [1, 2])
def test_after_a_kill_only_what_the_run_can_have_left_is_cut(bundles, tmp_path, sine_values, appended):
    """After a kill, up to --save-every lines may follow the committed bytes uncommitted: those are cut (their
    readings come again); more than that cannot be the killed run's and is refused."""
    _killed_before_its_first_line(bundles["sine"], tmp_path)
    output = tmp_path / "out.txt"
    output.write_text("0.5\n" * appended)
    source = tmp_path / "in.txt"
    source.write_text(_lines(sine_values[:5]))
    result = _run(_stream_args(bundles["sine"], source, tmp_path))
    if appended == 1:
        assert result.returncode == 0, result.stderr
        assert output.read_text() == _uninterrupted(bundles["sine"], sine_values[:5], tmp_path)
    else:
        assert result.returncode == 2 and b"bytes after the 0 this state wrote" in result.stderr
        assert output.read_text() == "0.5\n" * appended


@pytest.mark.parametrize("link", ["symlink", "hard link"])
def test_the_state_lock_holds_under_every_name(bundles, tmp_path, link):
    """A second process reaching the state in use through another name of it is refused (it was let in: two
    processes on one state)."""
    state = tmp_path / "s.npz"
    args = [*CLI, "stream", str(bundles["sine"]), "--variant", INT8, "--state-file"]
    assert _run([*args, str(state)], b"0.1\n").returncode == 0
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    first = subprocess.Popen([*args, str(state), str(fifo)], stderr=subprocess.PIPE)
    try:
        _wait_until_open(first.pid, str(tmp_path / ".s.npz.lock"))
        alias = tmp_path / "alias.npz"
        if link == "symlink":
            alias.symlink_to(state)
        else:
            os.link(state, alias)
        second = _run([*args, str(alias)], b"0.2\n")
        assert second.returncode == 2 and b"is in use by another edgernn process" in second.stderr, second.stderr
        assert not second.stdout
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert first.returncode == 0


@pytest.mark.parametrize("option", ["--out", "--anomaly-log", "--state-file", "--out via a symlink"])
def test_no_file_is_written_inside_the_bundle(bundles, tmp_path, option):
    """``--output bundle/manifest.json`` broke the bundle (accepted, appended to); refused now as ``c-array
    --out`` is (one check), even through a symlink into the bundle."""
    bundle = tmp_path / "bundle"
    shutil.copytree(bundles["sine"], bundle)
    before = {p.name: p.read_bytes() for p in bundle.iterdir()}
    target = bundle / "manifest.json"
    if option.endswith("symlink"):
        (tmp_path / "alias").symlink_to(bundle)
        target = tmp_path / "alias" / "predictions.txt"
    name = option.split()[0]
    extra = ["--anomalies"] if name == "--anomaly-log" else []
    result = _run([*CLI, "stream", str(bundle), "--variant", INT8, name, str(target), *extra], b"0.1\n")
    assert result.returncode == 2 and result.stderr.count(b"\n") == 1, result.stderr
    assert b"is inside a bundle directory" in result.stderr
    assert {p.name: p.read_bytes() for p in bundle.iterdir()} == before


@pytest.mark.parametrize("option", ["--out", "--anomaly-log"])
@pytest.mark.parametrize("kind", ["fifo", "symlink to /dev/null"])
def test_an_output_that_is_not_a_regular_file_is_refused_before_anything_is_written(bundles, tmp_path, option, kind):
    """A FIFO as --output took predictions into the pipe, then failed at the first fsync with a bare 'error:
    Invalid argument' (exit 2), a state already written; now one line naming the option, before any line is read
    or any state written, and nothing reaches the pipe."""
    target = tmp_path / "out"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to("/dev/null")
    reader = os.open(target, os.O_RDONLY | os.O_NONBLOCK) if kind == "fifo" else None
    try:
        extra = ["--anomalies"] if option == "--anomaly-log" else []
        result = _run([*CLI, "stream", str(bundles["sine"]), "--variant", INT8, option, str(target), "--state-file",
                       str(tmp_path / "state.npz"), *extra], _lines(np.linspace(-5, 5, 300)).encode())
        assert result.returncode == 2 and result.stderr.count(b"\n") == 1, result.stderr
        assert f"{option} {target} is not a regular file".encode() in result.stderr
        assert reader is None or os.read(reader, 65536) == b""  # the writer is gone: EOF, nothing written
    finally:
        if reader is not None:
            os.close(reader)
    assert not (tmp_path / "state.npz").exists()


@pytest.mark.parametrize("case", ["output is input", "state is output", "state is input"])
def test_files_that_would_overwrite_each_other_are_refused(bundles, tmp_path, case):
    source = tmp_path / "readings.txt"
    source.write_text("0.1\n0.2\n")
    output, state = {"output is input": (source, None), "state is output": (tmp_path / "o.txt", tmp_path / "o.txt"),
                     "state is input": (None, source)}[case]
    args = [*CLI, "stream", str(bundles["sine"]), str(source), "--variant", INT8]
    args += ["--out", str(output)] if output else []
    args += ["--state-file", str(state)] if state else []
    result = _run(args)
    assert result.returncode == 2 and b"is the same file as" in result.stderr
    assert source.read_text() == "0.1\n0.2\n" and not (tmp_path / "o.txt").exists()


def test_a_state_file_in_use_is_refused(bundles, tmp_path):
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    args = [*CLI, "stream", str(bundles["sine"]), str(fifo), "--variant", INT8, "--state-file",
            str(tmp_path / "s.npz")]
    first = subprocess.Popen(args, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while not (tmp_path / ".s.npz.lock").exists() and time.time() < deadline:
            time.sleep(0.02)
        second = _run([*args[:5], str(tmp_path / "other.txt"), *args[6:]])
        assert second.returncode == 2 and b"is in use by another edgernn process" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert first.returncode == 0 and not (tmp_path / ".s.npz.lock").exists()


def test_non_finite_state_is_refused(bundles, tmp_path):
    predictor = StreamingPredictor.load(bundles["sine"], INT8.replace("int8", "float32"))
    predictor.run([0.1, 0.2])
    predictor.save_state(tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz") as archive:
        arrays = dict(archive)
    arrays["state/h0"] = np.full_like(arrays["state/h0"], np.nan)
    np.savez(tmp_path / "s.npz", **arrays)
    result = _run([*CLI, "stream", str(bundles["sine"]), "--variant", INT8.replace("int8", "float32"),
                   "--state-file", str(tmp_path / "s.npz")], b"0.3\n")
    assert result.returncode == 2 and b"non-finite values in 'h0'" in result.stderr


def test_undecodable_bytes_are_bad_lines_not_a_crash(bundles):
    env = {**os.environ, "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8:strict"}
    args = [*CLI, "stream", str(bundles["sine"]), "--variant", INT8]
    result = _run(args, b"0.1\n\xff\xfe\n0.2\n", env=env)
    assert result.returncode == 0 and result.stdout.count(b"\n") == 2
    assert b"line 2: b'\\xff\\xfe' is not UTF-8 text; skipped" in result.stderr
    strict = _run([*args, "--strict"], b"0.1\n\xff\n0.2\n", env=env)
    assert strict.returncode == 1 and strict.stdout.count(b"\n") == 1 and b"stopped (--strict)" in strict.stderr
    assert b"Traceback" not in result.stderr + strict.stderr


def test_no_number_at_all_is_an_input_error(bundles):
    result = _run([*CLI, "stream", str(bundles["sine"]), "--variant", INT8], b"hello\n2024-01-01\n")
    assert result.returncode == 2 and b"expects one number per line" in result.stderr


def test_files_written_respect_the_umask(bundles, tmp_path):
    args = [*CLI, "stream", str(bundles["sine"]), "--variant", INT8, "--state-file", str(tmp_path / "s.npz"),
            "--out", str(tmp_path / "o.txt")]
    assert _run(args, b"0.1\n0.2\n", umask=0o022).returncode == 0
    assert oct((tmp_path / "s.npz").stat().st_mode & 0o777) == oct(0o644)
    assert oct((tmp_path / "o.txt").stat().st_mode & 0o777) == oct(0o644)
