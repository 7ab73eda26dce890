"""The honest comparison in every training summary: seasons found on the training split, peers (persistence,
seasonal naive, Holt-Winters / exponential smoothing from a real statsmodels) on the model's own split, and the
one-line "deploy X instead" when a small trained model loses."""

import json
import math
import sys

import numpy as np
import pytest

import edgernn
from edgernn.training import peers
from edgernn.data import seasons
from edgernn.cli.commands import cli
from edgernn.data.series import chronological_split, load_series, load_table
from edgernn.errors import DataError

POINTS = 1200  # hourly: 50 days


def _seasonal(points: int = POINTS, seed: int = 1) -> np.ndarray:
    """A daily cycle (period 24) on a slowly wandering level, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(points, dtype=np.float64)
    level = np.cumsum(rng.normal(0.0, 0.05, points))
    return 10 + 3 * np.sin(2 * np.pi * t / 24) + level + rng.normal(0.0, 0.2, points)


@pytest.fixture(scope="module")
def hourly_csv(tmp_path_factory):
    """The seasonal series with an hourly ISO time column, a pandas index column and a row-number column."""
    path = tmp_path_factory.mktemp("peers") / "hourly.csv"
    values = _seasonal()
    start = np.datetime64("2024-01-01T00:00")
    lines = ["Unnamed: 0,row,time,load,other"]
    other = np.random.default_rng(2).normal(size=values.size)
    for i, value in enumerate(values):
        lines.append(f"{i},{i + 1},{start + np.timedelta64(i, 'h')},{value:.6f},{other[i]:.6f}")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_autocorrelation_is_statsmodels_acf():
    from statsmodels.tsa.stattools import acf

    values = _seasonal()
    np.testing.assert_allclose(seasons.autocorrelation(values, 300), acf(values, nlags=300, fft=True), atol=1e-12)


@pytest.mark.parametrize("text, periods", [("auto", None), (None, None), ("none", []), ("NONE", []),
                                           ("48,336", [48, 336]), (" 24 , 24,7", [24, 7])])
def test_parse_season(text, periods):
    assert seasons.parse_season(text) == periods


@pytest.mark.parametrize("text", ["1", "0,24", "x", "24,", "-24", "2.5", "24;168", ""])
def test_parse_season_refuses_bad_text(text):
    with pytest.raises(DataError, match="comma list of whole periods"):
        seasons.parse_season(text)


@pytest.mark.parametrize("season", [[1], [24, "48"], "x", 24, [True], [2.5]])
def test_train_refuses_a_bad_season_before_training(season, tmp_path):
    with pytest.raises(DataError, match="season|comma list"):
        edgernn.train("sine", tmp_path / "m.keras", season=season, quiet=True)
    assert not (tmp_path / "m.keras").exists()


@pytest.mark.parametrize("text", ["1", "24,abc", "none,24"])
def test_cli_season_errors_are_one_line_exit_2(runner, text, tmp_path):
    result = runner.invoke(cli, ["train", "--season", text, "--out", str(tmp_path / "m.keras")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Invalid value for '--season'")
    assert not (tmp_path / "m.keras").exists()


def test_seasons_found_on_the_training_split_only():
    values = _seasonal()
    split = chronological_split(values.size)
    periods, notes = seasons.choose(values, split.train_end, split.val_end)
    assert periods[0] == 24 and len(periods) <= seasons.KEEP and not notes
    assert all(p % 24 == 0 for p in periods)
    # the validation and test parts do not move the choice: replace them with noise
    scrambled = values.copy()
    scrambled[split.train_end:] = np.random.default_rng(5).normal(size=values.size - split.train_end)
    assert seasons.acf_peaks(scrambled[: split.train_end]) == seasons.acf_peaks(values[: split.train_end])
    # a user's period that does not fit twice in the training split is left out, saying so
    periods, notes = seasons.choose(values, split.train_end, split.val_end, user=[24, 500])
    assert periods == [24] and "500" in notes[0]
    assert seasons.choose(values, split.train_end, split.val_end, user=[]) == ([], [])


@pytest.mark.parametrize("seed", range(6))
def test_a_wandering_level_has_no_season(seed):
    walk = np.cumsum(np.random.default_rng(seed).normal(size=3000))
    assert seasons.acf_peaks(walk[:2100]) == []
    assert seasons.choose(walk, 2100, 2550) == ([], [])


def test_spacing_suggests_the_usual_periods(hourly_csv):
    series = load_series(hourly_csv, column="load", time_column="time")
    assert series.spacing == 3600.0
    assert seasons.spacing_periods(series.spacing) == [24, 168]
    assert seasons.spacing_periods(1800.0) == [48, 336] and seasons.spacing_periods(86400.0) == [7, 365]
    assert seasons.spacing_periods(None) == [] and seasons.spacing_periods(17.0) == []


def test_holt_winters_is_one_step_ahead_with_fixed_parameters():
    """Each prediction is made from the values before it only: changing a validation value changes the
    predictions after it, never its own or any before."""
    values = _seasonal()
    split = chronological_split(values.size)
    base = peers.one_step(values, 0, split.train_end, 24, trend=False)
    from statsmodels.tsa.holtwinters import ExponentialSmoothing  # the run reproduces the training split's fit

    fit = ExponentialSmoothing(values[: split.train_end], seasonal="add", seasonal_periods=24,
                               initialization_method="heuristic").fit(use_brute=False)
    np.testing.assert_allclose(base[: split.train_end], fit.fittedvalues, rtol=1e-9, atol=1e-9)
    changed = values.copy()
    at = split.train_end + 40
    changed[at] += 50.0
    again = peers.one_step(changed, 0, split.train_end, 24, trend=False)
    np.testing.assert_array_equal(again[: at + 1], base[: at + 1])
    assert abs(again[at + 1] - base[at + 1]) > 1.0
    # the parameters come from the training split: changing the test part changes no validation prediction
    later = values.copy()
    later[split.val_end:] *= 3
    np.testing.assert_array_equal(peers.one_step(later, 0, split.train_end, 24, False)[: split.val_end],
                                  base[: split.val_end])


def test_classical_peer_beats_persistence_on_a_seasonal_series():
    values = _seasonal()
    split = chronological_split(values.size)
    found = peers.compare(values, split.train_end, split.val_end, [24], print)
    names = [p.name for p in found]
    assert names[0] == "seasonal naive (period 24)" and names[1].startswith("Holt-Winters (")
    assert names[1].endswith("season 24)")
    persistence = math.sqrt(np.mean(np.diff(values[split.train_end - 1 : split.val_end]) ** 2))
    assert found[1].val_rmse < 0.5 * persistence
    assert all(math.isfinite(p.val_rmse) and math.isfinite(p.test_rmse) for p in found)


def test_without_statsmodels_the_peer_is_skipped_saying_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "statsmodels.tsa.holtwinters", None)  # what an absent package raises
    lines = []
    assert peers.classical(_seasonal(), 840, 1020, 24, lines.append) is None
    assert lines == [f"peers: no classical peer: {peers.NOT_INSTALLED}"]
    assert "pip install 'edgernn[train]'" in lines[0]


def test_a_losing_model_is_told_what_to_deploy_instead(runner, hourly_csv, tmp_path):
    """Two epochs of a tiny window model (no season under it) on a strongly seasonal series: the text summary
    names the better peer."""
    result = runner.invoke(cli, ["train", "--data", hourly_csv, "--column", "load", "--time-column", "time",
                                 "--units", "4", "--epochs", "2", "--window", "12", "--out", str(tmp_path / "m.keras")])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "seasonal naive (period 24)" in out and "Holt-Winters (" in out
    verdicts = [line for line in out.splitlines() if "does not beat" in line]
    assert len(verdicts) == 1
    assert "on validation (RMSE" in verdicts[0] and "instead" in verdicts[0]
    assert verdicts[0].split("deploy ")[1].split(" instead")[0] in ("seasonal naive", "Holt-Winters")


def test_json_summary_and_metadata_carry_the_peers(runner, hourly_csv, tmp_path):
    result = runner.invoke(cli, ["train", "--data", hourly_csv, "--column", "load", "--time-column", "time",
                                 "--units", "4", "--epochs", "2", "--out", str(tmp_path / "m.keras"), "--json",
                                 "--season", "168,24"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    rows = summary["comparison"]["value"]
    names = [row["name"] for row in rows]
    assert names[:3] == ["the model", "persistence", "seasonal naive (period 24)"]
    assert any(n.startswith("Holt-Winters (") and n.endswith("season 24)") for n in names)
    assert names[3] == "seasonal naive (period 168)" and len(names) == 5  # --season: exactly those, ranked
    for row in rows:
        assert math.isfinite(row["val_rmse"]) and math.isfinite(row["test_rmse"])
    assert summary["peer_val_rmse[seasonal naive (period 24)]"] == rows[2]["val_rmse"]
    beaten = rows[0]["val_rmse"] >= min(row["val_rmse"] for row in rows[1:])  # Holt-Winters is under the model
    assert len(summary["verdicts"]) == int(beaten)
    assert all(line.startswith("the model does not beat") for line in summary["verdicts"])
    _, metadata = edgernn.training.modeling.load_model(tmp_path / "m.keras")
    assert metadata.metrics["peer_test_rmse[seasonal naive (period 24)]"] == rows[2]["test_rmse"]


def test_season_none_leaves_exponential_smoothing(tmp_path):
    np.save(tmp_path / "s.npy", _seasonal())
    result = edgernn.train(str(tmp_path / "s.npy"), None, units=4, epochs=1, season=[], quiet=True)
    names = [p.name for p in peers.rows(result.metrics)]
    assert names[:2] == ["the model", "persistence"]
    assert names[2] in ("exponential smoothing", "Holt (trend)") and len(names) == 3


def test_columns_all_skips_index_columns_and_shows_each_columns_preprocessing(runner, hourly_csv, tmp_path):
    table = load_table(hourly_csv, "all", "time")
    assert table.names == ("load", "other") and table.skipped == ("Unnamed: 0", "row")
    result = runner.invoke(cli, ["train", "--data", hourly_csv, "--time-column", "time", "--columns", "all",
                                 "--target", "load", "--units", "4", "--epochs", "1", "--out",
                                 str(tmp_path / "m.keras"), "--json"])
    assert result.exit_code == 0, result.output
    assert "left out index-like column(s) 'Unnamed: 0', 'row'" in result.stderr
    summary = json.loads(result.stdout)
    assert [c["name"] for c in summary["columns"]["inputs"]] == ["load", "other"]
    assert set(summary["preprocessing"]) == {"load", "other"}
    assert all({"difference", "offset", "divisor"} <= set(p) for p in summary["preprocessing"].values())
    rows = summary["comparison"]["load"]
    assert [r["name"] for r in rows][:3] == ["the model", "persistence", "seasonal naive (period 24)"]
    assert all(math.isfinite(r["val_rmse"]) and math.isfinite(r["test_rmse"]) for r in rows)
    # verify's report shows the same table, read back from the model's metadata
    bundle, report = tmp_path / "b", tmp_path / "report"
    exported = runner.invoke(cli, ["export", str(tmp_path / "m.keras"), "--out", str(bundle), "--variants",
                                   "tflite-float32", "--no-verify"])
    assert exported.exit_code == 0, exported.output
    verified = runner.invoke(cli, ["verify", str(bundle), "--steps", "200", "--report", str(report)])
    assert verified.exit_code == 0, verified.output
    assert json.loads((report / "report.json").read_text())["comparison"] == {"load": rows}
    assert "Compared at training on the same split (load;" in (report / "report.md").read_text()


def test_verify_report_shows_the_comparison_recorded_at_training(runner, hourly_csv, tmp_path):
    model, bundle, report = tmp_path / "m.keras", tmp_path / "b", tmp_path / "report"
    trained = runner.invoke(cli, ["train", "--data", hourly_csv, "--column", "load", "--time-column", "time",
                                  "--units", "4", "--epochs", "1", "--season", "24", "--out", str(model)])
    assert trained.exit_code == 0, trained.output
    exported = runner.invoke(cli, ["export", str(model), "--out", str(bundle), "--variants", "tflite-float32",
                                   "--no-verify"])
    assert exported.exit_code == 0, exported.output
    result = runner.invoke(cli, ["verify", str(bundle), "--steps", "200", "--report", str(report)])
    assert result.exit_code == 0, result.output
    _, metadata = edgernn.training.modeling.load_model(model)
    rows = json.loads((report / "report.json").read_text())["comparison"]["value"]
    assert [r["name"] for r in rows][:3] == ["the model", "persistence", "seasonal naive (period 24)"]
    assert rows[2]["val_rmse"] == metadata.metrics["peer_val_rmse[seasonal naive (period 24)]"]
    markdown = (report / "report.md").read_text()
    assert f"| seasonal naive (period 24) | {rows[2]['val_rmse']:.4g} | {rows[2]['test_rmse']:.4g} |" in markdown
    assert "| Holt-Winters (" in markdown


def test_the_classical_peer_is_skipped_when_it_would_outrun_its_budget():
    values = _seasonal()
    split = chronological_split(values.size)
    lines = []
    expected = 2 * values.size * peers.SECONDS_PER_POINT
    assert peers.classical(values, split.train_end, split.val_end, 24, lines.append, budget=expected / 2) is None
    assert len(lines) == 1 and "beyond the" in lines[0] and "budget" in lines[0]
    lines.clear()
    assert peers.classical(values, split.train_end, split.val_end, peers.MAX_PERIOD + 1, lines.append) is None
    assert f"season {peers.MAX_PERIOD + 1}" in lines[0]
    assert peers.classical(values, split.train_end, split.val_end, 24, lines.append, budget=60) is not None
