import json

import pytest

from edgernn import __version__
from edgernn.cli.commands import cli


def test_version_and_help(runner):
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
    for command in cli.commands:
        result = runner.invoke(cli, [command, "--help"])
        assert result.exit_code == 0, command
        assert "Usage:" in result.output


def test_train_json_summary(runner, tmp_path):
    out = tmp_path / "m.keras"
    result = runner.invoke(cli, ["train", "--data", "counting", "--window", "10", "--epochs", "3",
                                 "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    for key in ("test_rmse", "test_mae", "persistence_rmse", "persistence_mae", "preprocessing", "model_path"):
        assert key in summary
    assert summary["model_path"] == str(out) and out.exists()


@pytest.mark.parametrize(
    "text, message",
    [("v\n1\n2\nx\n4\n", "line 4, column 'v': 'x' is not a number"), (None, "data file not found")],
    ids=["non-numeric", "missing"],
)
def test_train_bad_data_exits_2_with_one_line(runner, tmp_path, text, message):
    path = tmp_path / "d.csv"
    if text is not None:
        path.write_text(text)
    out = tmp_path / "m.keras"
    result = runner.invoke(cli, ["train", "--data", str(path), "--out", str(out)])
    assert result.exit_code == 2
    assert "error: " in result.stderr and message in result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()
