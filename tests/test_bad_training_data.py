"""Untrusted training data: strict JSON out of ``train --json``, and fuzzed CSV/.npy files into the loader.

The loader's contract, checked here on random input: every file ends as a ``Series`` of finite float64 values or
a ``DataError`` with a one-line message, never another exception (numpy warnings count as failures too: they
would be extra lines on the CLI's stderr).
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgernn.cli.commands import cli
from edgernn.data.series import load_series
from edgernn.errors import DataError
from edgernn.runtime import safe_json


def _strict(text):
    """json.loads that refuses NaN/Infinity, as every JSON parser but Python's does."""
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON output"))


def test_safe_json_writes_undefined_figures_as_null():
    data = {"rmse": math.nan, "nested": [1.5, math.inf, {"x": -math.inf}], "ok": 2}
    assert _strict(safe_json.dumps(data, non_finite="null")) == {"rmse": None, "nested": [1.5, None, {"x": None}],
                                                                 "ok": 2}
    with pytest.raises(ValueError):
        safe_json.dumps(data)  # the default stays strict: refuse rather than write invalid JSON


def test_training_that_diverges_saves_nothing(runner, tmp_path):
    # a learning rate of 1e30 turns the weights into NaN within the epoch: every prediction is NaN
    result = runner.invoke(cli, ["train", "--data", "sine", "--window", "10", "--units", "4", "--epochs", "1",
                                 "--lr", "1e30", "--json", "--out", str(tmp_path / "m.keras")])
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and "RuntimeWarning" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: training diverged")
    assert not (tmp_path / "m.keras").exists()


# ---- fuzz: CSV -------------------------------------------------------------------------------------------------

BASE_CSVS = [
    "when,level,other\n2024-01-01,1.5,a\n2024-01-02,,b\n2024-01-03 08:00,2.5e3,c\n2024/1/4,NA,d\n"
    "2024-01-05T00:00Z,-3,e\n6,1e999,f\n07/01/2024,nan,g\n2024-01-08,\"4\",h\n",  # a bit of everything
    "when,level,other\n2024-01-01T00:00Z,1,a\n2024-01-01T01:00+01:00,2,b\n2024-01-01T00:30:00.5Z,3,c\n"
    "2024-01-02T00:00Z,4,d\n",
    "when,level,other\n3,1.5,x\n1,2.5,y\n2,-1e300,z\n1.5e9,1e300,w\n",
    "when,level,other\n13/01/2024 08:00,1,a\n02/01/2024,2,b\n1/2/2024 7:05:09.25,3,c\n",
    "when;level\n2024-1-1;1\n",  # not comma separated
]
PIECES = st.sampled_from([",", '"', "\n", "\r", "\r\n", "\x00", "\ufeff", "\xff", " ", "-", ".", "e", "E", "+", "Z",
                          "T", ":", "/", "nan", "inf", "1e999", "-1e308", "1e308", "9" * 400, "NA", "2024-13-01",
                          "13/13/2024", "01/02/2024", "\u0661\u0662", "ä", "\\", "'", "1", "0", "when", "level",
                          '"' + "9" * 131_100])  # the last is over csv's field size limit


@st.composite
def mutated_csv(draw):
    """Bytes of a CSV: the base file with a few random edits, or plain random bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=300))
    text = draw(st.sampled_from(BASE_CSVS))
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "repeat"]))
        if action == "insert":
            text = text[:at] + draw(PIECES) + text[at:]
        elif action == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 12)):]
        else:
            text = text[:at] + text[at:at + draw(st.integers(1, 40))] * draw(st.integers(2, 4)) + text[at:]
    return text.encode("utf-8", "surrogatepass")


TIME_CELLS = st.one_of(
    st.from_regex(r"[0-9]{1,5}[-/.][0-9]{1,2}[-/.][0-9]{1,4}"  # a date in some order
                  r"([ T][0-9]{1,2}(:[0-9]{2}(:[0-9]{2}([.,][0-9]{1,8})?)?)?)?"  # a clock
                  r"(Z|[+-][0-9]{2}:?[0-9]{2})?", fullmatch=True),  # an offset
    st.floats().map(repr), st.integers(-10**20, 10**20).map(str), st.text(max_size=12),
    st.sampled_from(["", "NA", "2024-01-10", "2024-W02-3", "20240110", "2024-01-10T24:00", "2024-02-29",
                     "2023-02-29", "05/05/2024", "12/12/2024", "0001-01-01T00:00+05:00", "9999-12-31T23:59:59.999999"]),
)
VALUE_CELLS = st.one_of(st.floats().map(repr), st.sampled_from(["", "NA", "1e999", "-", "1_0"]))


@st.composite
def tabular_csv(draw):
    """A well-formed CSV whose time and value cells are random: the time parser's fuzz."""
    rows = draw(st.lists(st.tuples(TIME_CELLS, VALUE_CELLS), min_size=1, max_size=12))
    if draw(st.booleans()):  # one format throughout the column, as real files have
        rows = [(draw(st.sampled_from([t for t, _ in rows])), v) for _, v in rows]
    buffer = io.StringIO()
    csv.writer(buffer).writerows([("when", "level"), *rows])
    return buffer.getvalue().encode("utf-8", "surrogatepass")


CSV_CONTENT = st.one_of(mutated_csv(), tabular_csv())


def _check_outcome(path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            series = load_series(str(path), **kwargs)
        except DataError as exc:
            message = str(exc)
            assert message and "\n" not in message and "\r" not in message, repr(message)
            return
    values = series.values
    assert values.dtype == np.float64 and values.ndim == 1 and values.size > 0
    assert np.isfinite(values).all()


def _csv_fuzz(directory, content, options):
    path = directory / "d.csv"
    path.write_bytes(content)
    column, time_column = options
    _check_outcome(path, column=column, time_column=time_column)


CSV_OPTIONS = st.sampled_from([(None, None), ("level", None), ("level", "when"), (None, "when"), ("other", None)])


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(content=CSV_CONTENT, options=CSV_OPTIONS)
def test_fuzz_csv_reader(fuzz_dir, content, options):
    _csv_fuzz(fuzz_dir, content, options)


@pytest.mark.slow
@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=CSV_CONTENT, options=CSV_OPTIONS)
def test_fuzz_csv_reader_long(fuzz_dir, content, options):
    _csv_fuzz(fuzz_dir, content, options)


# ---- fuzz: .npy ------------------------------------------------------------------------------------------------

ODD_DTYPES = st.one_of(
    hnp.integer_dtypes(), hnp.unsigned_integer_dtypes(), hnp.floating_dtypes(), hnp.complex_number_dtypes(),
    hnp.boolean_dtypes(), hnp.datetime64_dtypes(), hnp.timedelta64_dtypes(), hnp.unicode_string_dtypes(),
    hnp.byte_string_dtypes(), st.just(np.dtype("longdouble")),
    hnp.array_dtypes(allow_subarrays=True, max_size=3),
)


def _saved(array) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "format 3.0", for non-ASCII field names
        np.save(buffer, array)
    return buffer.getvalue()


@st.composite
def npy_bytes(draw):
    """A .npy file: an odd array as saved, or a saved array with its bytes cut, overwritten or extended."""
    array = draw(hnp.arrays(ODD_DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)))
    content = _saved(array)
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["cut", "overwrite", "append", "header"]))
        at = draw(st.integers(0, len(content)))
        if action == "cut":
            content = content[:at]
        elif action == "overwrite":
            content = content[:at] + draw(st.binary(min_size=1, max_size=8)) + content[at + 8:]
        elif action == "append":
            content += draw(st.binary(max_size=16))
        else:  # rewrite the header's text: shapes and dtypes that lie about the data
            header = draw(st.sampled_from([b"(10000000000000,)", b"(99999999999999999999,)", b"(-1,)", b"()",
                                           b"'<c16'", b"'|O'", b"'<zz'", b"[('a','<f8')]", b"'<U2'", b"True"]))
            content = content.replace(b"(", header + b"(", 1) if draw(st.booleans()) else content.replace(
                b"'descr': ", b"'descr': " + header + b", 'x': ", 1)
    return content


def _npy_fuzz(directory, content):
    path = directory / "d.npy"
    path.write_bytes(content)
    _check_outcome(path)


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(content=npy_bytes())
def test_fuzz_npy_reader(fuzz_dir, content):
    _npy_fuzz(fuzz_dir, content)


@pytest.mark.slow
@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=npy_bytes())
def test_fuzz_npy_reader_long(fuzz_dir, content):
    _npy_fuzz(fuzz_dir, content)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data-fuzz")
