"""Many topics in one predictor (``edgernn.stream.topics``), without a broker: growth, rounds, duplicates and the
saved state must leave every topic with exactly what a lone ``StreamingPredictor`` gives for its values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgernn.runtime import StreamingPredictor
from edgernn.errors import StateError
from edgernn.runtime.manifest_reader import read_manifest
from edgernn.stream.topics import TopicStreams
from edgernn.runtime.backends import installed
from runtime_env import EMULATED, INT8, needs_interpreter

pytestmark = needs_interpreter  # every topic streams INT8

# Where topics sharing one predictor cannot equal lone predictors bit for bit: tflite-runtime 2.14 on aarch64
# runs int8 models at several streams on its reference kernels (its optimized ones crash there, see README) and
# at one stream on the optimized ones, which round a few steps apart; onnx-int8 quantizes its activations
# dynamically, with one scale for the whole batch, so each stream's rounding depends on the others' values
LOOSE = (EMULATED and "litert" not in installed() and "tflite-runtime" in installed()) or INT8 == "onnx-int8"


def _series(sine_values, topics: int, steps: int) -> dict[str, np.ndarray]:
    return {f"s/{k}": sine_values[k: k + steps] * (1 + 0.05 * k) for k in range(topics)}


def _feed(streams: TopicStreams, batch: list[tuple[str, float, float]]) -> list[float]:
    readings = []
    for topic, value, key in batch:
        readings.append((streams.slot(topic), value))
    return streams.step(readings)


def _lone(bundle, values, variant=INT8) -> list[float]:
    return list(StreamingPredictor.load(bundle, variant).run(np.asarray(values)))


def _same(got: list[float], expected: list[float]) -> bool:
    tolerance = 0.05 if LOOSE else 0.0
    return all((math.isnan(a) and math.isnan(b)) or abs(a - b) <= tolerance * max(1.0, abs(b))
               for a, b in zip(got, expected, strict=True))


@pytest.mark.parametrize("name", ["sine", "window", "trend"])
def test_topics_appearing_one_by_one_equal_lone_predictors_across_growth_and_restore(bundles, sine_values,
                                                                                     tmp_path, name):
    """Seven topics appear over time (the predictor grows 1 -> 2 -> 4 -> 8), batches hold several readings of
    one topic (rounds), and halfway the state is saved and restored into a fresh TopicStreams."""
    if INT8 not in read_manifest(bundles[name]).variants:
        pytest.skip(f"bundle {name} has no {INT8}")
    series = _series(sine_values, 7, 40)
    got: dict[str, list[float]] = {topic: [] for topic in series}
    streams = TopicStreams(bundles[name], INT8, "auto")
    for t in range(40):
        batch = []
        for k, (topic, v) in enumerate(series.items()):
            if t < 3 * k:
                continue  # topic k appears at step 3k
            if k not in (0, 2):
                batch.append((topic, float(v[t]), t))
            elif t % 2 == 0:  # topics 0 and 2: two readings per batch, stepped in two rounds
                batch += [(topic, float(v[t]), t), (topic, float(v[t + 1]), t + 1)]
        for (topic, _, _), predicted in zip(batch, _feed(streams, batch)):
            got[topic].append(predicted)
        if t == 20:
            streams.save(tmp_path / "state.npz")
            streams = TopicStreams(bundles[name], INT8, "auto")
            streams.restore(tmp_path / "state.npz")
    assert streams.predictor.streams == 8
    for k, (topic, values) in enumerate(series.items()):
        start = 3 * k
        assert len(got[topic]) == 40 - start, topic
        assert _same(got[topic], _lone(bundles[name], values[start:])), topic


@pytest.mark.portable
def test_readings_come_out_in_key_order_and_repeats_late_and_far_ahead_ones_are_told_apart(bundles, tmp_path):
    """The reorder window (``order``): 1, 2, 3, 10, 4..9, 11 comes out 1..11; a repeat of a key stepped or held
    is a duplicate, a key below the clock is late, 1e300 is ahead and never moves the clock; the seen keys
    survive a save and restore."""
    from edgernn.stream.order import TopicOrder, Verdict

    streams = TopicStreams(bundles["sine"], INT8, "auto")
    order = TopicOrder(streams, window=8, hold=1.0, max_ahead=1000.0)
    slot = streams.slot("a")
    arrival = [1, 2, 3, 10, 4, 5, 6, 7, 8, 9, 11]
    out = []
    for t, key in enumerate(arrival):  # all within the hold time: only the window and the regular step release
        assert order.offer(slot, float(key), key, now=100.0 + t * 0.01) is Verdict.HELD
        out += [item for _, item in order.release_slot(slot)]  # as the bridge does after each reading
        assert order.release(now=100.0 + t * 0.01) == []  # within the hold time
    assert order.offer(slot, 1e300, "x", now=100.2) is Verdict.AHEAD
    assert order.offer(slot, 11.0, "dup", now=100.2) is Verdict.DUPLICATE  # held: a repeat
    out += [item for _, item in order.release(now=100.2, everything=True)]
    assert out == sorted(arrival)
    assert streams.last_key[slot] == 11.0  # 1e300 never moved the clock
    assert order.offer(slot, 7.0, "dup", now=101) is Verdict.DUPLICATE  # stepped: a repeat
    assert order.offer(slot, 6.5, "late", now=101) is Verdict.LATE
    assert order.offer(slot, 12.0, 12, now=101) is Verdict.HELD  # continues the step of 1: released at once
    assert order.release_slot(slot) == [(slot, 12)]
    assert order.offer(slot, 20.0, 20, now=101) is Verdict.HELD  # a gap: it waits for the hold time
    assert order.release(now=101.5) == [] and order.next_due(101.5) == 0.5
    assert order.release(now=102.0) == [(slot, 20)]
    streams.save(tmp_path / "state.npz", seen=order.record())
    again = TopicStreams(bundles["sine"], INT8, "auto")
    again.restore(tmp_path / "state.npz")
    restored = TopicOrder(again, window=8)
    restored.restore(again.saved["seen"])
    assert restored.offer(again.slot("a"), 9.0, "dup") is Verdict.DUPLICATE
    assert restored.offer(again.slot("a"), 19.0, "late") is Verdict.LATE
    assert restored.offer(again.slot("a"), 21.0, 21) is Verdict.HELD and restored.release_slot(0) == []  # a gap
    regular = TopicOrder(again, window=8)
    again.last_key[0] = 12.0
    regular.restore([[0, [[1.0, 1.0, 12]]]])  # a regular run ending at the clock: its step is the gap
    assert regular.offer(0, 13.0, 13) is Verdict.HELD and regular.release_slot(0) == [(0, 13)]


@pytest.mark.portable
def test_beyond_the_window_a_reading_is_late_and_a_first_reading_far_ahead_is_refused(bundles):
    from edgernn.stream.order import TopicOrder, Verdict

    streams = TopicStreams(bundles["sine"], INT8, "auto")
    order = TopicOrder(streams, window=2, hold=5.0, max_ahead=1000.0)
    slot = streams.slot("a")
    verdicts, out = [], []
    for key in (1, 3, 10, 11, 12, 4):  # 4 comes after 3 newer ones: beyond a window of 2
        verdicts.append(order.offer(slot, float(key), key, now=0.0))
        out += [item for _, item in order.release_slot(slot)]
    assert verdicts[-1] is Verdict.LATE and out == [1, 3, 10]
    other = streams.slot("b")
    assert order.offer(other, 1e300, "x") is Verdict.AHEAD and streams.last_key[other] is None
    assert order.offer(other, 1e9, "epoch") is Verdict.HELD  # not beyond the wall clock + max_ahead


@pytest.mark.portable
def test_topics_beyond_the_limit_are_refused_and_a_restore_over_the_limit_is_an_error(bundles, tmp_path, capsys):
    streams = TopicStreams(bundles["sine"], INT8, "auto", max_topics=3)
    assert [streams.slot(t) for t in "abc"] == [0, 1, 2]
    assert streams.slot("d") is None and streams.slot("d") is None
    assert capsys.readouterr().err.count("topic d: more than 3 topics") == 1  # logged once
    assert streams.predictor.streams == 3  # grown 1 -> 2 -> 3, never past the limit
    streams.save(tmp_path / "state.npz")
    with pytest.raises(StateError, match="more than --max-topics 2"):
        TopicStreams(bundles["sine"], INT8, "auto", max_topics=2).restore(tmp_path / "state.npz")


def test_hold_feeds_a_topic_its_own_last_value(bundles):
    streams = TopicStreams(bundles["sine"], INT8, "auto", on_nan="hold")
    values = {"a": [0.1, 0.2, math.nan, 0.3], "b": [0.5, math.nan, 0.4, 0.45]}
    got = {t: [] for t in values}
    for i in range(4):
        batch = [(t, v[i], None) for t, v in values.items()]
        for (t, _, _), p in zip(batch, _feed(streams, batch)):
            got[t].append(p)
    for topic, series in values.items():
        lone = StreamingPredictor.load(bundles["sine"], INT8, on_nan="hold").run(np.array(series))
        assert _same(got[topic], list(lone)), topic


@pytest.mark.parametrize("streams_count", [1, 2])
def test_a_held_reading_is_stepped_not_scored_as_the_line_service_does(bundles, sine_values, streams_count):
    """--on-nan hold with --anomalies: a missing reading is held for the model but not scored (it is no reading),
    as a lone predictor loaded with on_nan="hold" under a cleaning monitor does; then the predictions match."""
    series = {t: sine_values[:40].copy() * (1 + 0.1 * k) for k, t in enumerate("ab"[:streams_count])}
    for values in series.values():
        values[[12, 20, 21, 22]] = np.nan
        values[30] += 3.0  # a spike: clipped for the model
    streams = TopicStreams(bundles["sine"], INT8, "auto", on_nan="hold", interval=0.99, clean=True)
    got = {t: [] for t in series}
    for i in range(40):
        readings = [(streams.slot(t), float(v[i])) for t, v in series.items()]
        for t, result in zip(series, streams.step_checked(readings)):
            got[t].append(result)
    for topic, values in series.items():
        lone = StreamingPredictor.load(bundles["sine"], INT8, on_nan="hold").monitor(0.99, clean=True).run(values)
        assert _same([r["prediction"] for r in got[topic]], list(lone["prediction"])), topic
        assert [math.isnan(r["score"]) for r in got[topic]] == list(np.isnan(lone["score"])), topic
        assert got[topic][30]["anomaly"], topic


@pytest.mark.portable
def test_a_line_service_state_is_not_taken_for_a_bridge_state(bundles, tmp_path):
    StreamingPredictor.load(bundles["sine"], INT8).save_state(tmp_path / "state.npz", extra={"input": None})
    with pytest.raises(StateError, match="no valid MQTT topic record"):
        TopicStreams(bundles["sine"], INT8, "auto").restore(tmp_path / "state.npz")


def test_intervals_per_topic_equal_a_lone_monitor_across_growth_and_restore(bundles, sine_values, tmp_path):
    """Each topic's interval, score and anomaly flag (adaptive width) are those of a lone monitor over its own
    readings, while other topics are idle in a round, the predictor grows and the state is restored."""
    if StreamingPredictor.load(bundles["sine"], INT8).intervals is None:
        pytest.skip("this bundle was exported before intervals")
    series = _series(sine_values, 5, 30)
    for k, values in enumerate(series.values()):
        values[10 + k] += 3.0  # one spike per topic
    got: dict[str, list[dict]] = {topic: [] for topic in series}
    streams = TopicStreams(bundles["sine"], INT8, "auto", interval=0.9, adaptive=True)
    for t in range(30):
        batch = [(topic, float(v[t]), t) for k, (topic, v) in enumerate(series.items()) if t >= 2 * k and
                 (t + k) % 3]  # topics appear one by one and skip some rounds
        readings = []
        for topic, value, key in batch:
            readings.append((streams.slot(topic), value))
        for (topic, _, _), result in zip(batch, streams.step_checked(readings)):
            got[topic].append(result)
        if t == 15:
            streams.save(tmp_path / "state.npz")
            streams = TopicStreams(bundles["sine"], INT8, "auto", interval=0.9, adaptive=True)
            streams.restore(tmp_path / "state.npz")
    for k, (topic, values) in enumerate(series.items()):
        fed = np.array([v for t, v in enumerate(values) if t >= 2 * k and (t + k) % 3])
        lone = StreamingPredictor.load(bundles["sine"], INT8).monitor(0.9, adaptive=True).run(fed)
        for field in ("prediction", "low", "high", *(() if LOOSE else ("score",))):
            assert _same([r[field] for r in got[topic]], list(lone[field])), (topic, field)
        clear = ~(np.abs(lone["score"] - 1) < (0.2 if LOOSE else 0.0))  # near the edge: either side, if loose
        assert [r["anomaly"] for r, keep in zip(got[topic], clear) if keep] == list(lone["anomaly"][clear])
        assert any(r["anomaly"] for r in got[topic]), topic  # its spike


@pytest.mark.portable
def test_the_published_journal_is_obeyed_only_beside_its_state_and_reads_what_it_can(tmp_path):
    """The journal of acknowledged predictions is untrusted input: obeyed only under the token its state names;
    a torn last line, garbage and wrong types are ignored; each topic keeps its highest key; a save empties it
    under a new token; a symlink or a FIFO in its place is refused, never followed or waited on."""
    import os

    from edgernn.errors import EdgernnError
    from edgernn.stream.journal import PublishedJournal

    journal = PublishedJournal(tmp_path / "state.npz")
    assert journal.load("t1") is None
    journal.open("t1", keep=False)
    for topic, key in (("a", 3), ("b", 1.5), ("a", 7), ("a", 5)):
        journal.record(topic, key)
    with open(journal.path, "ab") as handle:
        handle.write(b'not json\n["c", "x"]\n[1, 2]\n\xff\xfe\n["d", 9')  # garbage, then a torn line
    assert journal.load("t1") == {"a": 7.0, "b": 1.5}  # ["c", "x"] names no key
    assert journal.load("t0") is None and journal.load(None) is None  # another state's journal: not obeyed
    journal.reset("t2")
    assert journal.load("t2") == {} and journal.load("t1") is None
    journal.reset("t3", {"a": 9.0})  # carried over a save: not stepped again yet
    journal.record("b", 2)
    journal.announce("new/topic")  # before its first prediction
    assert journal.load("t3") == {"a": 9.0, "b": 2.0} and journal.token == "t3"
    assert journal.topics >= {"a", "b", "new/topic"}
    journal.close()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for planted in ("symlink", "fifo"):
        other = PublishedJournal(tmp_path / f"{planted}.npz")
        os.symlink(victim, other.path) if planted == "symlink" else os.mkfifo(other.path)
        with pytest.raises(EdgernnError, match="journal"):
            other.open("t", keep=False)
        with pytest.raises(EdgernnError, match="journal"):
            other.load("t")
    assert victim.read_text() == "precious"


@pytest.mark.portable
def test_the_bridge_finds_its_own_retained_predictions_by_topic_and_ts():
    """Which reading topic each publish topic is (a retained one is the bridge's own prediction, not a reading),
    and the input's ts in a prediction (untrusted: anything else is no key)."""
    from edgernn.stream.payloads import published_key
    from edgernn.stream.retained import reading_pattern

    pattern = reading_pattern("out/{topic}/p/{topic}")
    assert pattern.match("out/s/1/p/s/1").group("t") == "s/1"
    assert pattern.match("out/s/1/p/s/2") is None and pattern.match("out/s/1/p/s/1/x") is None
    assert reading_pattern("predictions/{topic}").match("predictions/a+b").group("t") == "a+b"
    assert reading_pattern("predictions.{topic}").match("predictionsXa") is None
    assert published_key(b'{"ts": 7, "value": 1.5, "prediction": 1.6}') == 7.0
    assert published_key(b'{"ts": "2024-06-01T12:00:03Z", "prediction": null}') == 1717243203.0
    for payload in (b"21.5", b"", b'{"ts": true}', b'{"ts": "soon"}', b'{"value": 1}', b"[1]", b'{"ts": NaN}',
                    b"{" + b" " * 70000 + b"}", b"\xff{"):
        assert published_key(payload) is None, payload


@pytest.mark.portable
def test_held_readings_restored_from_a_state_file_are_checked_and_round_trip(bundles):
    """The readings a saved state holds (untrusted input): only ``[slot, ts, value]`` (or ``[topic, ...]``, as
    states before held readings named their slot) of a topic with a slot, a usable ts and a value of the model's
    shape come back; NaN and inf survive the text encoding."""
    from edgernn.stream.bridge import Bridge, BridgeConfig

    streams = TopicStreams(bundles["sine"], INT8, "auto")
    streams.slot("a")
    bridge = Bridge(streams, None, BridgeConfig(publish="p/{topic}", reorder_window=8))
    bridge.restore_held([["a", 5, "0.5"], ["a", 6, "nan"], ["b", 1, "1"], ["a", "soon", "1"], ["a", 7, ["1", "2"]],
                         "x", ["a", 8], ["a", 9, "inf"], ["a", 10, "ten"], [None, 11, "1"], ["a", 5, "0.7"],
                         [0, 12, "1.5"], [1, 13, "1"], [-1, 14, "1"], [True, 15, "1"], [0, 6, "0.1"]])
    record = bridge._held_record()
    assert record == [[0, 5, "0.5"], [0, 6, "nan"], [0, 9, "inf"], [0, 12, "1.5"]]
    again = Bridge(streams, None, BridgeConfig(publish="p/{topic}", reorder_window=8))
    again.restore_held(record)
    assert again._held_record() == record


@pytest.mark.portable
def test_the_summary_comes_only_once_something_changed(bundles):
    """The periodic summary is printed when the counts change (README): not a line of zeros before any reading
    (a new user saw '0 saves; 0 readings from 0 topic(s)...' a minute after start)."""
    import io

    from edgernn.stream.bridge import Bridge, BridgeConfig

    err = io.StringIO()
    bridge = Bridge(TopicStreams(bundles["sine"], INT8, "auto"), None, BridgeConfig(publish="p/{topic}",
                                                                                    summary_every=1e-9), err)
    bridge._summarise()
    assert err.getvalue() == ""
    bridge.report.readings += 1
    bridge._summarise()
    assert err.getvalue().startswith("0 saves; 1 readings from 0 topic(s) predicted")
