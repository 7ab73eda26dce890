"""A univariate model is the one-column model (F = K = H = 1) through one path, and its results are what the
separate univariate path gave: the same training arrays (so the same weights for a seed), the same metrics,
the same files (a plain univariate manifest and metadata are written as older edgernn wrote them) and old files
read into the same description."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgernn.data.series import chronological_split, load_series
from edgernn.runtime.columns import Columns
from edgernn.runtime.manifest_reader import read_manifest
from edgernn.training.model_metadata import MEMBER, ModelMetadata
from edgernn.training.preparation import CHUNK_LENGTH, _sequence_chunks, prepare_any

DATA = Path(__file__).resolve().parent / "data"
BUNDLES = [DATA / "bundles" / "sine", DATA / "bundles" / "multi", DATA / "old-bundles" / "sine-before-intervals"]


def _separate_univariate_cut(values: np.ndarray, preprocessing, window: int | None):
    """What the separate univariate preparation cut (edgernn before one path): chunks or windows of the model
    inputs ``z``, the value after each, training split then validation."""
    split = chronological_split(values.size)
    lag = preprocessing.lag
    z = preprocessing.transform(values)
    width = None if window is None else window - lag
    train_z = z[: split.train_end - lag]
    val_z = z[max(0, split.train_end - lag - (width or 0)) : split.val_end - lag]
    if window is None:
        return [_sequence_chunks(part[:-1, None], part[1:, None], CHUNK_LENGTH) for part in (train_z, val_z)]

    def windows(part):
        count = part.size - width
        x = np.lib.stride_tricks.sliding_window_view(part, width)[:count]
        return x[..., None].astype(np.float32), part[width:].astype(np.float32)

    return [windows(train_z), windows(val_z)]


@pytest.mark.parametrize("data,difference,window", [("sine", "auto", None), ("counting", "auto", None),
                                                    ("sine", "on", 12), ("sine", "off", 8), ("counting", "off", None)])
def test_a_univariate_model_is_cut_as_the_separate_path_cut_it(data, difference, window):
    prepared = prepare_any(data, None, None, None, None, None, window, difference, "standard", True, seasons=())
    assert prepared.plain and prepared.columns == Columns.from_preprocessing(prepared.preprocessing)
    values = load_series(data).values
    training, validation = _separate_univariate_cut(values, prepared.preprocessing, window)
    for ours, theirs in ((prepared.training, training), (prepared.validation, validation)):
        for a, b in zip(ours, theirs):
            b = b.reshape(a.shape) if b.size == a.size else b  # a window's y: [n] then, [n, 1] now
            assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
def test_a_manifest_is_written_back_as_it_was_read(bundle):
    """Univariate manifests become one-column Columns when read, and are written back as they were (a bundle
    of this format exactly; one from before intervals gains only its variants' empty intervals and interpreter
    records)."""
    manifest = read_manifest(bundle)
    on_disk = json.loads((bundle / "manifest.json").read_text())
    written = manifest.to_dict()
    if bundle.parent.name == "old-bundles":
        for entry in written["variants"].values():
            assert entry.pop("intervals") is None and entry.pop("interpreters") == {}
    assert written == on_disk
    assert ("columns" in on_disk) == manifest.columns.named
    if not manifest.columns.named:
        column = manifest.columns.inputs[0]
        pre = manifest.preprocessing
        assert (column.difference, column.offset, column.divisor) == (pre.difference, pre.offset, pre.divisor)
        assert manifest.columns.outputs[0].relative == pre.difference and not manifest.takes_rows


@pytest.mark.parametrize("bundle", BUNDLES[:2], ids=lambda p: p.name)
def test_model_metadata_is_written_back_as_it_was_read(bundle):
    with zipfile.ZipFile(bundle / "model.keras") as archive:
        member = json.loads(archive.read(MEMBER))
    metadata = ModelMetadata.from_dict(member)
    assert metadata.to_dict() == member
    assert metadata.columns.named == ("columns" in member)


def test_a_trained_univariate_model_keeps_the_separate_paths_metrics_and_files(sine_model):
    """The one-output figures are the separate path's: next-value RMSE from the test split on, persistence
    beside it, and the metadata holds no columns (a plain univariate file)."""
    from edgernn.training.trainer import predict

    member = sine_model.metadata
    assert "columns" not in member and "features" not in member["data"]
    assert not any("[" in key and not key.startswith(("peer_", "candidate_")) for key in member["metrics"])
    values = load_series("sine").values
    split = chronological_split(values.size)
    predictions = predict(sine_model.model_path, values)
    keep = np.arange(1, values.size) >= split.val_end
    error = predictions[:-1][keep] - values[1:][keep]
    persistence = values[:-1][keep] - values[1:][keep]
    assert math.isclose(member["metrics"]["test_rmse"], float(np.sqrt(np.mean(error ** 2))), rel_tol=1e-12)
    assert math.isclose(member["metrics"]["persistence_rmse"], float(np.sqrt(np.mean(persistence ** 2))),
                        rel_tol=1e-12)
    assert member["metrics"]["test_points"] == int(keep.sum())


@pytest.mark.parametrize("streams", [1, 3])
def test_a_plain_univariate_predictor_steps_the_row_path_and_keeps_its_state_layout(streams, tmp_path):
    """Many streams of one value go through the rows path (F = 1) and match one stream each; the states keep
    the layout older edgernn wrote ([streams] values), so saved states load across the change."""
    from edgernn.runtime import StreamingPredictor

    bundle = DATA / "bundles" / "sine"
    values = np.sin(np.arange(120) / 5.0)
    values[40] = np.nan  # the general path: skipped, as before
    values[70] = 50.0  # far outside the calibrated range: counted
    one = StreamingPredictor.load(bundle, "tflite-float32", backend="numpy")
    many = StreamingPredictor.load(bundle, "tflite-float32", backend="numpy", streams=streams)
    alone = one.run(values)
    together = many.run(np.stack([values] * streams, axis=1)) if streams > 1 else many.run(values)
    expected = np.repeat(alone[:, None], streams, axis=1)  # float32 matmuls of a batch round alike, not equally
    np.testing.assert_allclose(together.reshape(values.size, -1), expected, rtol=0, atol=1e-6)
    assert (np.isnan(together.reshape(values.size, -1)) == np.isnan(expected)).all()
    assert many.stats["out_of_range"].shape == (streams,) and many.stats["out_of_range"].tolist() == [1] * streams
    assert many.state["last"].shape == (streams,)
    many.save_state(tmp_path / "s.state")
    again = StreamingPredictor.load(bundle, "tflite-float32", backend="numpy", streams=streams)
    again.load_state(tmp_path / "s.state")
    nxt = np.full(streams, 0.25)
    assert np.array_equal(np.atleast_1d(again.step(nxt if streams > 1 else 0.25)),
                          np.atleast_1d(many.step(nxt if streams > 1 else 0.25)))  # the same batch: equal


def test_a_number_per_stream_is_taken_in_any_shape_of_that_size_and_run_keeps_its_shapes():
    """What edgernn always took for many streams of one value (a review found the one path refused it): any
    shape holding one number per stream, None as a missing reading; ``run`` gives ``[n, streams]`` (``[n]`` for
    one stream fed ``[n]``), empty included; a bad input is one line."""
    from edgernn.errors import EdgernnError
    from edgernn.runtime import StreamingPredictor

    bundle = DATA / "bundles" / "sine"

    def fresh(streams=4):
        return StreamingPredictor.load(bundle, "tflite-float32", backend="numpy", streams=streams)

    values = [0.1, 0.2, 0.3, 0.4]
    expected = fresh().step(values)
    for shaped in (np.array(values)[None, :], np.array(values)[None, None, :], np.array(values).reshape(2, 2),
                   np.array(values, dtype=object), tuple(values)):
        assert np.array_equal(fresh().step(shaped), expected)
    missing = fresh().step([0.1, 0.2, 0.3, None])  # skipped, as NaN is
    assert np.array_equal(missing[:3], expected[:3]) and math.isnan(missing[3])
    for bad in ("0.1", [0.1, 0.2, 0.3, "x"], [[0.1], [0.2, 0.3]], [0.1, 0.2, 0.3]):
        with pytest.raises(EdgernnError, match="^step expects 4 value"):
            fresh().step(bad)
    assert fresh().run(np.empty((0, 4))).shape == (0, 4)
    assert fresh(1).run(np.zeros((5, 1))).shape == (5, 1) and fresh(1).run(np.zeros(5)).shape == (5,)
    assert fresh().run(np.zeros((5, 4))).shape == (5, 4)


def test_a_short_series_keeps_the_plain_model_and_predict_takes_a_series(tmp_path):
    """Found by a review: the one-column blend is only tried where its table's cut has rows enough (a short
    series keeps its plain model, as before), and ``predict`` takes a series in any shape a series comes in."""
    import edgernn

    path = tmp_path / "short.csv"
    rising = [0.05, 0.203051, 0.34594, 0.476224, 0.592319, 0.693327, 0.778789, 0.848422, 0.901879, 0.938573,
              0.957595, 0.957733, 0.937605, 0.895879, 0.831555, 0.744259]  # too few rows for the blend's cut
    path.write_text("v\n" + "\n".join(map(str, rising)) + "\n")
    result = edgernn.train(str(path), epochs=1, units=2, budget=0, season="none", quiet=True)
    assert not result.columns.named and "columns" not in result.metadata
    one = edgernn.predict(result, 0.5)
    assert one.shape == (1,) and np.isnan(one).all() == result.preprocessing.difference
    assert edgernn.predict(result, np.arange(5.0)[None]).shape == (5,)


def _separate_univariate_replay(values: np.ndarray, steps: int, difference: bool) -> tuple[np.ndarray, str]:
    """What the separate univariate replay gave (edgernn before one path): the reference a univariate bundle
    stores and verify replays."""
    values = np.asarray(values, dtype=np.float64)
    if values.size >= steps:
        return values[:steps], ""
    if difference:
        step = float(np.mean(np.diff(values)))
        parts, offset = [], 0.0
        while sum(p.size for p in parts) < steps:
            parts.append(values + offset)
            offset = parts[-1][-1] + step - values[0]
        return np.concatenate(parts)[:steps], f"repeated forwards x{len(parts)}, each continuing the last"
    bridge = int(np.clip(values.size // 20, 4, 32))
    ramp = np.linspace(values[-1], values[0], bridge + 2)[1:-1]
    parts = []
    while sum(p.size for p in parts) < steps:
        parts.extend([values, ramp])
    return np.concatenate(parts)[:steps], f"repeated forwards x{(len(parts) + 1) // 2}, joined by {bridge}-step lines"


@pytest.mark.parametrize("size", [7, 100, 450, 2000])
@pytest.mark.parametrize("difference", [False, True])
def test_one_replay_gives_a_series_what_the_univariate_replay_gave(size, difference):
    """The one replay of tables, given a series (F = 1), repeats it exactly as the separate univariate replay
    did, to the bit: a univariate bundle's stored reference and verify's inputs are unchanged."""
    from edgernn.training.reference import replay

    values = np.cumsum(np.random.default_rng(size).normal(size=size)) + 20.0
    for flags in (difference, [difference]):  # one flag, or one per column
        ours, how = replay(values, 10_000, flags, season=int(difference))
        theirs, their_how = _separate_univariate_replay(values, 10_000, difference)
        assert ours.shape == theirs.shape and np.array_equal(ours, theirs) and how == their_how
    table, _ = replay(values[:, None], 10_000, [difference])  # as rows: the same numbers, shaped [n, 1]
    assert table.shape == (10_000, 1) and np.array_equal(table[:, 0], theirs)


@pytest.mark.parametrize("difference", [False, True])
@pytest.mark.parametrize("source", ["sine", "counting", "array"])
def test_one_calibration_gives_a_plain_model_the_series_the_univariate_calibration_gave(source, difference):
    """The one calibration reader, given a plain univariate model's columns (F = 1, unnamed), returns the series
    the separate univariate reader returned, to the bit (a univariate bundle's calibration file is unchanged);
    a value beyond float32 after scaling is still refused naming it."""
    from edgernn.errors import ExportError
    from edgernn.exporting.calibration import MAX_STEPS, calibration_inputs
    from edgernn.runtime.preprocessing import Preprocessing

    preprocessing = Preprocessing(difference=difference, scale="standard", offset=0.3, divisor=1.7)
    columns = Columns.from_preprocessing(preprocessing)
    raw = load_series("sine" if source == "array" else source).values
    z, rows = calibration_inputs(raw * 3 if source == "array" else source, columns, 100, fallback=None)
    raw = raw * 3 if source == "array" else raw
    expected = preprocessing.transform(raw)[:MAX_STEPS].astype(np.float32)
    assert z.dtype == expected.dtype and z.shape == expected.shape and np.array_equal(z, expected)
    assert rows.shape == raw.shape and np.array_equal(rows, raw)
    with pytest.raises(ExportError, match=r"value 2 \(of 6\) becomes .* after preprocessing: beyond float32"):
        calibration_inputs(np.array([0.0, 1e300, 1.0, 2.0, 3.0, 4.0]), columns, 100, fallback=None)


def test_the_bridge_steps_rows_of_one_value_as_a_lone_predictor(built):
    """A model reading rows of one value (F = 1, three steps ahead): two topics stepped in one round of the
    bridge's batch, each topic's outputs what a lone predictor gives for its values."""
    from built_once import exported_once, trained_once

    from edgernn.runtime import StreamingPredictor
    from edgernn.stream.topics import TopicStreams

    trained = trained_once(built, data="sine", horizon=3, units=4, epochs=1, baseline="none", season="none")
    bundle = exported_once(built, trained.model_path, variants="tflite-float32", verify=False)
    topics = TopicStreams(bundle, "tflite-float32", "numpy")
    assert topics.takes_rows and topics.predictor.features == 1
    a, b = topics.slot("a"), topics.slot("b")
    values = load_series("sine").values[:30]
    got = [topics.step([(a, (float(v),)), (b, (float(-v),))]) for v in values]
    for slot, sign in ((0, 1.0), (1, -1.0)):
        lone = StreamingPredictor.load(bundle, "tflite-float32", backend="numpy")
        for v, outputs in zip(values, got):
            expected = np.asarray(lone.step(np.array([sign * v])), dtype=np.float64).reshape(-1)
            prediction = outputs[slot]
            assert list(prediction) == topics.columns.output_names()
            np.testing.assert_allclose(list(prediction.values()), expected, rtol=0, atol=1e-6)
