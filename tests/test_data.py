import numpy as np
import pytest

from edgernn.data import chronological_split, load_series, sine_series
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
