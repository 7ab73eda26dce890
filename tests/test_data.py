import numpy as np
import pytest

from edgernn.data.series import chronological_split, load_series, sine_series
from edgernn.errors import DataError


def write(tmp_path, text, name="d.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_builtin_series():
    assert load_series("counting").values.tolist() == list(range(100))
    sine = load_series("sine").values
    assert sine.size == 3000 and np.array_equal(sine, sine_series())  # seeded: the same every time
    assert 0.7 < sine.std() < 0.85


def test_csv_gaps_are_interpolated_and_counted(tmp_path):
    path = write(tmp_path, "t,v\n0,1\n1,\n2,NA\n3,4\n4,NaN\n5,6\n")
    series = load_series(path, time_column="t")
    assert series.values.tolist() == [1, 2, 3, 4, 5, 6]
    assert series.filled == 3


def test_csv_non_numeric_cell_names_line_and_column(tmp_path):
    path = write(tmp_path, "t,v\n0,1\n1,2\n\n2,abc\n3,4\n")
    with pytest.raises(DataError, match=r"line 5, column 'v': 'abc' is not a number"):
        load_series(path, column="v")
    with pytest.raises(DataError, match=r"line 5"):
        load_series(path, time_column="t")  # default column: 'v', the only other one


@pytest.mark.parametrize("cell", ["1_000", "\uff11\uff12", "\u0661\u0662", "1\u00a0000"])
def test_only_plain_ascii_numbers_are_numbers(tmp_path, cell):
    """One grammar with stream and the bridge: Python's float reads 1_000 and other scripts' digits; train does
    not, and names the line and column (the same CLI line and exit 2 as any bad cell)."""
    path = write(tmp_path, f"t,v\n0,1\n1,2\n2,{cell}\n3,4\n")
    with pytest.raises(DataError, match=r"line 4, column 'v': .* is not a number"):
        load_series(path, column="v")


def test_a_column_name_given_twice_is_refused(tmp_path):
    path = write(tmp_path, "a,a,b\n1,2,3\n4,5,6\n")
    with pytest.raises(DataError, match=r"column 'a' appears 2 times in the header of d.csv; rename all but one"):
        load_series(path, column="b")


def test_csv_column_choice(tmp_path):
    path = write(tmp_path, "a,b\n1,2\n3,4\n")
    with pytest.raises(DataError, match="several numeric columns; choose one with --column from: a, b"):
        load_series(path)
    assert load_series(path, column="b").values.tolist() == [2, 4]
    with pytest.raises(DataError, match="column 'c' not in d.csv; columns: a, b"):
        load_series(path, column="c")


def test_csv_time_column_sorts(tmp_path):
    path = write(tmp_path, "when,v\n2024-01-03,3\n2024-01-01,1\n2024-01-02,2\n")
    assert load_series(path, time_column="when").values.tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    "text, message",
    [("", "is empty"), ("a,b\n", "header but no data rows"), ("v\nNA\n\nnan\n", "no numeric values")],
    ids=["empty", "header-only", "all-nan"],
)
def test_csv_without_data(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        load_series(write(tmp_path, text))


def test_missing_file_and_npy(tmp_path):
    with pytest.raises(DataError, match="data file not found"):
        load_series(str(tmp_path / "nope.csv"))
    np.save(tmp_path / "s.npy", np.array([1.0, np.inf, 3.0]))
    series = load_series(str(tmp_path / "s.npy"))
    assert series.values.tolist() == [1, 2, 3] and series.filled == 1
    np.save(tmp_path / "m.npy", np.zeros((3, 3)))
    with pytest.raises(DataError, match="expected a 1-D series"):
        load_series(str(tmp_path / "m.npy"))


def test_split_is_chronological():
    split = chronological_split(100)
    assert (split.train_end, split.val_end, split.length) == (70, 85, 100)


def _times(tmp_path, times, name="d.csv"):
    """A CSV whose value on each row is its row number, so the loaded order shows how the times were sorted."""
    rows = "".join(f"{t},{i}\n" for i, t in enumerate(times))
    return write(tmp_path, "when,v\n" + rows, name)


@pytest.mark.parametrize(
    "times, order",
    [
        (["2024-1-10", "2024-1-9", "2024-1-11"], [1, 0, 2]),  # as text, '2024-1-10' < '2024-1-9'
        (["2024/01/10", "2024/1/9", "2024/01/11"], [1, 0, 2]),
        (["2024/1/10 08:00", "2024/1/10 7:30", "2024/1/10 07:45:30.5"], [1, 2, 0]),
        (["2024-01-10T08:00:00.25", "2024-01-10 08:00", "2024-01-10T08:00:00.5"], [1, 0, 2]),
        (["2024-01-10", "2024-01-09T23:59", "2024-1-10 00:01"], [1, 0, 2]),  # ISO and other forms, one clock
        (["2024-01-10T08:00Z", "2024-01-10T08:30+01:00", "2024-01-10T09:00:00+00:00"], [1, 0, 2]),  # by instant
        (["13/01/2024", "02/01/2024", "1/2/2024"], [1, 0, 2]),  # a day above 12 in front: day first
        (["01/13/2024", "01/02/2024", "2/1/2024"], [1, 0, 2]),  # above 12 second: month first
        (["10.01.2024 8:00", "10.01.2024 7:00", "31.12.2023"], [2, 1, 0]),
        (["1700000100", "1700000000", "1.6e9"], [2, 1, 0]),  # numbers: epoch seconds or anything numeric
        (["-2.5", "10", "3"], [0, 2, 1]),
    ],
    ids=["unpadded-dashes", "slashes", "slashes-clock", "iso-fraction", "mixed-forms", "iso-offsets",
         "day-first", "month-first", "dotted-day-first", "epoch", "numbers"],
)
def test_time_column_formats_sort_by_time(tmp_path, times, order):
    assert load_series(_times(tmp_path, times), column="v", time_column="when").values.tolist() == order


@pytest.mark.parametrize(
    "times, message",
    [
        (["2024-01-10", "yesterday"], r"d.csv line 3, column 'when': 'yesterday' is not a time; accepted: numbers"),
        (["2024-01-10", "2024-02-30"], r"line 3, column 'when': '2024-02-30' is not a valid time \(day is out of "
                                       r"range"),
        (["2024-01-10", "1700000000"], r"line 3, column 'when': '1700000000' is a number, but line 2 holds a date"),
        (["01/02/2024", "03/04/2024"], r"'01/02/2024' \(line 2\) could be day/month or month/day, and no day above "
                                       r"12 in column 'when' decides; write ISO 8601 dates"),
        (["13/01/2024", "01/13/2024"], r"'13/01/2024' \(line 2\) is day/month but '01/13/2024' \(line 3\) is "
                                       r"month/day"),
        (["2024-01-10T08:00Z", "2024-01-10 09:00"], r"line 2 \('2024-01-10T08:00Z'\) has a UTC offset but line 3 "
                                                    r"\('2024-01-10 09:00'\) has none"),
        (["2024-01-10", ""], r"line 3, column 'when': no time; every row needs one to be put in order"),
        (["1", "inf"], r"line 3, column 'when': 'inf' is not a finite number"),
    ],
    ids=["unparseable", "invalid-date", "number-among-dates", "ambiguous", "both-orders", "aware-and-naive",
         "missing", "infinite"],
)
def test_time_column_refuses(tmp_path, times, message):
    with pytest.raises(DataError, match=message):
        load_series(_times(tmp_path, times), column="v", time_column="when")


@pytest.mark.parametrize(
    "times, message",
    [
        (["2024-01-10", "2024-01-11", "2024-01-10"], "d.csv: time '2024-01-10' appears on lines 2 and 4: duplicate "
                                                     "timestamps (remove or aggregate them)"),
        (["5", "5.0", "6", "5"], "d.csv: time '5' appears on lines 2, 3 and 5: duplicate timestamps"),
        (["2024-01-10T08:00Z", "2024-01-10T09:00+01:00"], "time '2024-01-10T08:00Z' appears on lines 2 and 3"),
        (["1", "1", "2", "2", "3"], "appears on lines 2 and 3: duplicate timestamps (remove or aggregate them); "
                                    "2 times are duplicated"),
    ],
    ids=["dates", "numbers", "same-instant", "several"],
)
def test_duplicate_timestamps_are_refused(tmp_path, times, message):
    with pytest.raises(DataError) as caught:
        load_series(_times(tmp_path, times), column="v", time_column="when")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "d.npy is empty (0 bytes); expected a .npy array"),
        (b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (10,), }", "not a readable .npy"),
        (b"hello, world\n", "d.npy is not a .npy array file (no .npy header; pickled data is never loaded)"),
        (b"PK\x03\x04" + b"\x00" * 40, "d.npy is a zip archive (an .npz?), not a .npy array"),
    ],
    ids=["zero-bytes", "truncated", "text", "broken-zip"],
)
def test_damaged_npy_is_a_data_error(tmp_path, content, message):
    (tmp_path / "d.npy").write_bytes(content)
    with pytest.raises(DataError) as caught:
        load_series(str(tmp_path / "d.npy"))
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.array([1 + 2j, 3 + 0j, 4 + 1j]), "complex values; expected real numbers (the imaginary part"),
        (np.array(["1", "2", "3"]), "text (<U1) values; expected numbers"),
        (np.array([b"1", b"2"]), "text (|S1) values; expected numbers"),
        (np.array([True, False, True]), "booleans; expected numbers"),
        (np.zeros(3, dtype=[("t", "f8"), ("v", "f4")]), "structured records (fields t, v); expected a plain"),
        (np.array(["2024-01-10"], dtype="datetime64[D]"), "datetime64[D] values; expected numbers"),
    ],
    ids=["complex", "str", "bytes", "bool", "structured", "datetime"],
)
def test_npy_of_the_wrong_kind_is_refused(tmp_path, array, message):
    np.save(tmp_path / "d.npy", array)
    with pytest.raises(DataError) as caught:
        load_series(str(tmp_path / "d.npy"))
    assert message in str(caught.value)


def test_npy_refuses_pickles_and_npz(tmp_path):
    np.save(tmp_path / "o.npy", np.array([1.0, "a"], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="o.npy is not a readable .npy array .*allow_pickle"):
        load_series(str(tmp_path / "o.npy"))
    with open(tmp_path / "z.npy", "wb") as handle:
        np.savez(handle, a=np.arange(3.0))
    with pytest.raises(DataError, match=r"z.npy is a zip archive \(an .npz\?\), not a .npy array"):
        load_series(str(tmp_path / "z.npy"))


def test_npy_numbers_of_any_real_type_load(tmp_path):
    for dtype in ("int8", "uint64", "float16", "float32", "longdouble"):
        np.save(tmp_path / "d.npy", np.arange(4).astype(dtype))
        assert load_series(str(tmp_path / "d.npy")).values.tolist() == [0, 1, 2, 3]


def test_csv_reader_errors_name_the_line(tmp_path):
    path = write(tmp_path, "v\n1\n2\n\"" + "9" * 200_000 + "\n3\n")
    with pytest.raises(DataError, match=r"d.csv line 4: unreadable CSV \(field larger than field limit"):
        load_series(path)
    (tmp_path / "b.csv").write_bytes(b"v\n1\n2\n\xff\n")
    with pytest.raises(DataError, match=r"b.csv is not a UTF-8 text CSV file \(byte 0xff on line 4\)"):
        load_series(str(tmp_path / "b.csv"))
    with pytest.raises(DataError, match=r"column 'v' appears 2 times in the header of d.csv"):
        load_series(write(tmp_path, "v,v\n1,2\n3,4\n"), column="v")


def test_gap_filling_never_overflows():
    from edgernn.data.series import _fill_gaps

    values, filled = _fill_gaps(np.array([1.7e308, np.nan, -1.7e308, np.nan, np.nan, 1.7e308]), "x")
    assert np.isfinite(values).all() and filled == 3
    assert values[1] == 0.0 and -1.7e308 < values[3] < values[4] < 1.7e308
