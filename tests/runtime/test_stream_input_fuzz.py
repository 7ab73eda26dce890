"""Untrusted bytes into ``edgernn stream``: every reader gives back exactly the bytes it was given, line by line,
and the command ends in exit 0 or a one-line exit 2, never a traceback."""

from __future__ import annotations

import os
import threading

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from edgernn.cli.commands import cli  # noqa: E402
from edgernn.stream.readers import FileLines, Stop, StreamLines  # noqa: E402
from runtime_env import EMULATED, INT8, needs_interpreter  # noqa: E402

pytestmark = pytest.mark.portable  # untrusted input's error paths: Python alone decides them

LINES = st.lists(st.one_of(st.binary(max_size=30), st.sampled_from([b"0.5", b"-1e3", b"nan", b"inf", b" 2 ",
                                                                       b"\xff\xfe", b"1,2", b"\r", b""])),
                 max_size=20)
FAST = settings(max_examples=int(os.environ.get("EDGERNN_FUZZ_EXAMPLES", 150)), deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _joined(lines) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def _expected(data: bytes) -> list[bytes]:
    parts = data.split(b"\n")
    return parts[:-1] if data.endswith(b"\n") else parts if data else []


@FAST
@given(lines=LINES, tail=st.binary(max_size=5))
def test_file_reader_returns_every_line_exactly(tmp_path_factory, lines, tail):
    path = tmp_path_factory.mktemp("f") / "in.txt"
    data = _joined(lines) + tail.replace(b"\n", b"")
    path.write_bytes(data)
    reader = FileLines(path, os.open(path, os.O_RDONLY), Stop())
    try:
        got = [line.raw for line in reader]
        assert got == _expected(data)
        assert reader.position()["offset"] == len(data)
    finally:
        reader.close()


@pytest.mark.skipif(EMULATED, reason="threads and pipes under qemu-user: run natively")
@FAST
@given(lines=LINES, cuts=st.lists(st.integers(min_value=1, max_value=7), max_size=10))
def test_pipe_reader_returns_every_line_exactly(lines, cuts):
    """Written in odd chunks (lines split across writes): the peeking reader still takes whole lines."""
    data = _joined(lines)
    read_end, write_end = os.pipe()

    def write():
        try:
            at = 0
            for size in cuts:
                os.write(write_end, data[at:at + size])
                at += size
            os.write(write_end, data[at:])
        finally:
            os.close(write_end)  # whatever happens, the reader sees the end: it cannot wait forever

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    reader = StreamLines(read_end, Stop())
    try:
        assert [line.raw for line in reader] == _expected(data)
    finally:
        reader.close()  # first: a writer blocked on a full pipe then fails instead of waiting forever
        writer.join(timeout=60)
    assert not writer.is_alive()


@FAST
@given(data=st.binary(max_size=200))
@needs_interpreter
def test_stream_command_on_random_bytes(runner, bundles, data):
    result = runner.invoke(cli, ["stream", str(bundles["sine"]), "--variant", INT8], input=data)
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    if result.exit_code == 2:
        assert result.stderr.strip().splitlines()[-1].startswith("error: no line was a number")
