"""``edgernn bridge`` against what arrives out of order, late, forged or malformed, on a real Mosquitto:
readings put back in time order, late and far-ahead ones refused visibly (late topic, log, summary), a forged
retained prediction not believed, topics no answer can be published for skipped with a trace, bad options
refused in one line before connecting. Every other topic keeps flowing."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

from edgernn.runtime import StreamingPredictor
from edgernn.stream.mqtt import stop_network
from mqtt_broker import BridgeProcess, Client
from runtime_env import INT8, needs_spawn

pytestmark = needs_spawn
CLI = [sys.executable, "-m", "edgernn"]


def _lone(bundle, values) -> list:
    return [None if math.isnan(p) else float(p) for p in StreamingPredictor.load(bundle, INT8).run(np.array(values))]


def _wait_topics(out: Client, wanted: dict[str, int], timeout: float = 30) -> None:
    """Until each topic has (at least) its number of messages."""
    import time

    deadline = time.monotonic() + timeout
    while any(len(out.snapshot().get(topic, [])) < n for topic, n in wanted.items()):
        assert time.monotonic() < deadline, f"{ {t: len(out.snapshot().get(t, [])) for t in wanted} } of {wanted}"
        time.sleep(0.02)


def test_out_of_order_readings_are_stepped_in_ts_order_late_and_far_ahead_ones_refused_visibly(paho, broker, bundles,
                                                                                               sine_values):
    """Topic a: 1, 2, 3, 10, 4..9, 11 (4 overtaken by one newer reading: within a window of 4): 11 predictions
    equal to an in-order run. Topic b: 4 after six newer ones: late, on the late topic and in the summary,
    not stepped. Topic c: ts 1e300 refused as too far ahead; its later readings are predicted. The counts are
    in the periodic summary and the final one."""
    values = {t: float(sine_values[t]) for t in range(1, 16)}
    arrivals = {"sensors/a": [1, 2, 3, 10, 4, 5, 6, 7, 8, 9, 11],
                "sensors/b": [1, 2, 3, 10, 11, 12, 13, 14, 15, 4],
                "sensors/c": [1e300, 1, 2, 3]}
    out = Client(paho, broker.port, "predictions/#")
    bridge = BridgeProcess(bundles["sine"], broker.url, "--reorder-window", "4", "--summary-every", "0.5")
    bridge.wait_for("subscribed to sensors/#")
    publisher = Client(paho, broker.port)
    for topic, order in arrivals.items():
        for ts in order:
            publisher.publish(topic, {"ts": ts, "value": values.get(ts, 0.5)})
    _wait_topics(out, {"predictions/sensors/a": 11, "predictions/sensors/b": 9, "predictions/sensors/b/late": 1,
                       "predictions/sensors/c": 3, "predictions/sensors/c/late": 1})
    out.settle(publisher.last_published)
    assert bridge.stop() == 0, bridge.text()
    got = out.snapshot()
    for topic, stepped in (("a", list(range(1, 12))), ("b", [1, 2, 3, 10, 11, 12, 13, 14, 15]), ("c", [1, 2, 3])):
        messages = got[f"predictions/sensors/{topic}"]
        assert [m["ts"] for m in messages] == stepped, topic
        assert [m["prediction"] for m in messages] == _lone(bundles["sine"], [values[t] for t in stepped]), topic
    assert [(m["ts"], m["refused"], m["clock"]) for m in got["predictions/sensors/b/late"]] == [(4, "late", 15)]
    assert [(m["ts"], m["refused"]) for m in got["predictions/sensors/c/late"]] == [(1e300, "ahead")]
    log = bridge.text()
    assert "topic sensors/b: the reading at ts 4 is late (the topic is at 15" in log
    assert "topic sensors/c: the reading at ts 1e+300 is more than --max-ahead" in log
    assert "23 readings from 3 topic(s) predicted; 0 duplicates skipped, 1 late, 1 too far ahead" in log
    assert log.count("0 duplicates skipped, 1 late, 1 too far ahead") >= 2  # periodically, and at exit
    publisher.close()
    out.close()


def _retained_with_properties(paho, port: int, topic: str):
    """The retained message on ``topic`` with its MQTT 5 properties, as any subscriber of it can read them."""
    got, done = [], threading.Event()
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.on_message = lambda c, u, message: (got.append(message), done.set())
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert done.wait(10), f"no retained message on {topic}"
    finally:
        stop_network(client)
    return got[0]


def _five_readings_on_a_stateful_bridge(paho, broker, bundles, sine_values, state):
    """A bridge on ``state`` that has predicted ts 0..4 of sensors/a: (bridge, predictions client, publisher)."""
    out = Client(paho, broker.port, "predictions/#")
    publisher = Client(paho, broker.port)
    bridge = BridgeProcess(bundles["sine"], broker.url, *state)
    bridge.wait_for("subscribed to sensors/#")
    for ts in range(5):
        publisher.publish("sensors/a", {"ts": ts, "value": float(sine_values[ts])})
    _wait_topics(out, {"predictions/sensors/a": 5})
    return bridge, out, publisher


def test_a_forged_retained_prediction_with_the_state_token_does_not_silence_its_topic(paho, broker, bundles,
                                                                                      sine_values, tmp_path):
    """Another client copies the bridge's current state token (and its MAC) from a retained prediction; the
    bridge is killed; the client retains a forged prediction with that token and a far-future ts. After the
    restart every later reading of that topic is still published, equal to an uninterrupted run."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    state = ["--state-file", str(tmp_path / "state.npz")]
    bridge, out, publisher = _five_readings_on_a_stateful_bridge(paho, broker, bundles, sine_values, state)
    publisher.publish("sensors/a", {"ts": 5, "value": float(sine_values[5])})
    _wait_topics(out, {"predictions/sensors/a": 6})
    genuine = _retained_with_properties(paho, broker.port, "predictions/sensors/a")
    assert bridge.stop(signal.SIGKILL) == -signal.SIGKILL
    tags = dict(genuine.properties.UserProperty)
    assert set(tags) == {"edgernn-state", "edgernn-mac"}  # readable by any subscriber
    forged = Properties(PacketTypes.PUBLISH)
    forged.UserProperty = list(tags.items())
    body = json.dumps({"ts": 1e12, "value": 0.0, "prediction": 0.0})
    publisher.client.publish("predictions/sensors/a", body, qos=1, retain=True,
                             properties=forged).wait_for_publish(10)
    bridge = BridgeProcess(bundles["sine"], broker.url, *state)
    bridge.wait_for("subscribed to sensors/#")
    for ts in range(6, 10):
        publisher.publish("sensors/a", {"ts": ts, "value": float(sine_values[ts])})
    _wait_topics(out, {"predictions/sensors/a": 10})
    out.settle(publisher.last_published)
    assert bridge.stop() == 0, bridge.text()
    by_ts: dict = {}
    for m in out.snapshot()["predictions/sensors/a"]:
        if m["ts"] == 1e12:
            continue  # the forged message itself, forwarded as published
        assert by_ts.setdefault(m["ts"], m["prediction"]) == m["prediction"]  # a repeat only identical
    assert sorted(by_ts) == list(range(10))
    assert [by_ts[t] for t in range(10)] == _lone(bundles["sine"], [float(v) for v in sine_values[:10]])
    assert "last predictions read back from the broker (retained): 0 topic(s)" in bridge.text()  # the forged one was not believed
    publisher.close()
    out.close()


def test_topics_no_answer_can_be_published_for_are_skipped_and_the_rest_flows(paho, broker, bundles, tmp_path):
    """A 65,525-character topic (its prediction topic would pass MQTT's 65,535 bytes) and one of 200 levels
    (its prediction topic would have 201, beyond Mosquitto's limit): logged shortened, counted, acknowledged;
    other topics keep flowing, the bridge exits 0, and a restart on the same state is not stalled by them."""
    state = ["--state-file", str(tmp_path / "state.npz")]
    out = Client(paho, broker.port, "predictions/#")
    publisher = Client(paho, broker.port)
    bridge = BridgeProcess(bundles["sine"], broker.url, *state, "-t", "lt/#")
    bridge.wait_for("subscribed to sensors/#")
    long_topic, deep_topic, kept_topic = "lt/" + "a" * 65525, "lt" + "/x" * 199, "lt/" + "b" * 1022
    publisher.publish(long_topic, b"1")
    publisher.publish(deep_topic, b"1")
    publisher.publish(kept_topic, b"1")  # 1,025 bytes: more than a state keeps
    publisher.publish("sensors/a", {"ts": 1, "value": 0.5})
    _wait_topics(out, {"predictions/sensors/a": 1})
    bridge.wait_for("no answer can be published for it", count=3)
    assert bridge.stop() == 0, bridge.text()
    log = bridge.text()
    assert "topic lt/" + "a" * 57 + "...(65528 characters): no answer can be published for it (the topic is " \
           "65528 bytes long (at most 1024, as it is saved with the state)); skipped" in log
    assert "...(1025 characters): no answer can be published for it (the topic is 1025 bytes long" in log
    assert "(the topic has 201 levels (Mosquitto takes at most 200)); skipped" in log
    assert "3 unpublishable topic(s)" in log and "Traceback" not in log
    assert max(len(line) for line in bridge.lines) < 400
    bridge = BridgeProcess(bundles["sine"], broker.url, *state, "-t", "lt/#")
    bridge.wait_for("subscribed to sensors/#")
    publisher.publish("sensors/a", {"ts": 2, "value": 0.6})
    _wait_topics(out, {"predictions/sensors/a": 2})
    assert bridge.stop() == 0, bridge.text()
    assert "0 unpublishable topic(s)" in bridge.text()  # acknowledged: not delivered again
    publisher.close()
    out.close()


def _run(bundles, *args, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "bridge", str(bundles["sine"]), "mqtt://127.0.0.1:9", "--variant", INT8,
                           *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("topic_filter", ["a/#/b", "", "a+", "#x", "a/b#", "x" * 70000, "a" + "/b" * 200],
                         ids=["hash-inside", "empty", "plus-in-level", "hash-in-level", "hash-suffix", "huge",
                              "deep"])
def test_an_invalid_topic_filter_is_one_line_and_exit_2_before_connecting(bundles, topic_filter):
    result = _run(bundles, "--subscribe", "sensors/#", "--subscribe", topic_filter)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "not a topic filter" in result.stderr
    assert "cannot reach" not in result.stderr and len(result.stderr) < 300


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe\x00", "is not UTF-8 text"),
    (b"x" * 70000, "is longer than a password can be"),
    (b"pass\x00word\n", "must be UTF-8 text without NUL"),
], ids=["bad-bytes", "huge", "nul"])
def test_a_bad_password_file_is_one_line_and_exit_2(bundles, tmp_path, content, message):
    secret = tmp_path / "password"
    secret.write_bytes(content)
    result = _run(bundles, "-t", "a/#", "--password-file", str(secret))
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_fifo_as_password_file_is_refused_not_waited_on(bundles, tmp_path):
    fifo = tmp_path / "password"
    os.mkfifo(fifo)
    result = _run(bundles, "-t", "a/#", "--password-file", str(fifo), timeout=30)
    assert result.returncode == 2 and "is not a regular file" in result.stderr, result.stderr


@pytest.mark.parametrize("args, message", [
    (["--client-id", "c" * 70000], "--client-id is 70000 bytes long (at most 1024)"),
    (["--username", "u" * 70000], "--username is 70000 bytes long (at most 65535)"),
    (["--password", "p" * 70000], "the password is 70000 bytes long"),
    (["--late-topic", "late/#"], "--late-topic 'late/#' must be a topic without wildcards"),
    (["--late-topic", "{publish}", ], "--late-topic must differ from --publish"),
    (["--reorder-hold", "nan"], "Invalid value for '--reorder-hold': 'nan' is not a number"),
    (["--max-ahead", "NaN"], "Invalid value for '--max-ahead': 'NaN' is not a number"),
    (["--summary-every", "nan"], "Invalid value for '--summary-every': 'nan' is not a number"),
    (["--interval", "nan"], "Invalid value for '--interval': 'nan' is not a number"),
], ids=["client-id", "username", "password", "late-wildcard", "late-same", "hold-nan", "ahead-nan", "summary-nan",
        "interval-nan"])
def test_over_long_identities_bad_late_topics_and_nan_options_are_one_line_and_exit_2(bundles, args, message):
    result = _run(bundles, "-t", "a/#", *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and len(result.stderr) < 300


def _edit_mqtt_record(path, edit) -> None:
    """Hand-edit the MQTT record of a saved state (``edit(record)``), the rest left as it is."""
    with np.load(path, allow_pickle=False) as saved:
        arrays = {name: saved[name] for name in saved.files}
    meta = json.loads(str(arrays["meta"]))
    edit(meta["extra"]["mqtt"])
    arrays["meta"] = np.array(json.dumps(meta))
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def test_forged_seen_runs_beyond_the_clock_do_not_silence_a_topic(paho, broker, bundles, sine_values, tmp_path):
    """A state hand-edited to say ts 0..999999 were stepped (the topic is at 4): after the restart ts 5..9 are
    stepped and published, equal to an uninterrupted run, none counted as a duplicate."""
    state = ["--state-file", str(tmp_path / "state.npz")]
    bridge, out, publisher = _five_readings_on_a_stateful_bridge(paho, broker, bundles, sine_values, state)
    assert bridge.stop() == 0, bridge.text()
    _edit_mqtt_record(tmp_path / "state.npz", lambda record: record.update(seen=[[0, [[0.0, 1.0, 10**6]]]]))
    bridge = BridgeProcess(bundles["sine"], broker.url, *state)
    bridge.wait_for("subscribed to sensors/#")
    for ts in range(5, 10):
        publisher.publish("sensors/a", {"ts": ts, "value": float(sine_values[ts])})
    _wait_topics(out, {"predictions/sensors/a": 10})
    out.settle(publisher.last_published)
    assert bridge.stop() == 0, bridge.text()
    got = out.snapshot()["predictions/sensors/a"]
    assert [m["ts"] for m in got] == list(range(10))
    assert [m["prediction"] for m in got] == _lone(bundles["sine"], [float(v) for v in sine_values[:10]])
    assert "5 readings from 1 topic(s) predicted; 0 duplicates skipped" in bridge.text()
    publisher.close()
    out.close()


def test_a_topic_over_max_topics_is_logged_shortened(paho, broker, bundles):
    """Beyond --max-topics a topic is logged once, shortened as every other log line (it was printed whole: up to
    64 KiB a line, for up to 1,000 topics; 1 KiB now that longer topics are skipped before); the topics within the
    limit keep flowing."""
    out = Client(paho, broker.port, "predictions/#")
    bridge = BridgeProcess(bundles["sine"], broker.url, "--max-topics", "1")
    bridge.wait_for("subscribed to sensors/#")
    publisher = Client(paho, broker.port)
    publisher.publish("sensors/a", {"ts": 1, "value": 0.5})
    publisher.publish("sensors/" + "x" * 992, {"ts": 1, "value": 0.5})
    bridge.wait_for("(--max-topics)")
    publisher.publish("sensors/a", {"ts": 2, "value": 0.5})
    _wait_topics(out, {"predictions/sensors/a": 2})
    assert bridge.stop() == 0, bridge.text()
    line = next(line for line in bridge.text().splitlines() if "(--max-topics)" in line)
    assert line.startswith("topic sensors/xxx") and "(1000 characters)" in line and len(line) < 300, line[:300]
    assert "1 over --max-topics" in bridge.text()
    publisher.close()
    out.close()


def _held_meta(path) -> tuple[int, int]:
    """(held readings, characters of the MQTT record) of a saved state; (0, 0) while it is being replaced."""
    from edgernn.errors import StateError
    from edgernn.runtime.state_file import read_state

    try:
        meta, _ = read_state(path, {})
    except StateError:
        return 0, 0
    record = meta.get("extra", {}).get("mqtt", {})
    return len(record.get("held") or []), len(json.dumps(record))


def test_held_readings_of_a_long_topic_keep_the_state_small_across_a_kill(paho, broker, bundles, sine_values,
                                                                           tmp_path):
    """16 readings held on a 1,000-byte topic: the state names the topic once, not once per held reading (80
    topics of 60,000 characters with 16 held each made a 273 MB state, refused at the next start); after a
    kill -9 the held readings come out in ts order, as an uninterrupted run."""
    import time

    path = tmp_path / "state.npz"
    topic = "sensors/" + "t" * 992
    keys = [k + 0.25 * (k % 3) for k in range(16)]  # irregular: held for the whole --reorder-hold
    publisher = Client(paho, broker.port)
    bridge = BridgeProcess(bundles["sine"], broker.url, "--state-file", str(path), "--reorder-hold", "60")
    bridge.wait_for("subscribed to sensors/#")
    for k in reversed(keys):
        publisher.publish(topic, {"ts": k, "value": float(sine_values[round(k)])})
    deadline = time.monotonic() + 30
    while _held_meta(path)[0] < 16:
        assert time.monotonic() < deadline, _held_meta(path)
        time.sleep(0.05)
    assert _held_meta(path)[1] < 4 * len(topic), _held_meta(path)  # was 17 topics' worth
    assert bridge.stop(signal.SIGKILL) == -signal.SIGKILL
    out = Client(paho, broker.port, "predictions/#")
    bridge = BridgeProcess(bundles["sine"], broker.url, "--state-file", str(path), "--reorder-hold", "60")
    bridge.wait_for("subscribed to sensors/#")
    assert bridge.stop() == 0, bridge.text()  # at exit every held reading is stepped
    _wait_topics(out, {"predictions/" + topic: 16})
    got = out.snapshot()["predictions/" + topic]
    assert [m["ts"] for m in got] == keys
    assert [m["prediction"] for m in got] == _lone(bundles["sine"], [float(sine_values[round(k)]) for k in keys])
    publisher.close()
    out.close()


def test_held_readings_survive_a_restart_with_a_smaller_window(paho, broker, bundles, sine_values, tmp_path):
    """10 readings held (acknowledged: the state has them) when the bridge is killed; restarted with
    --reorder-window 0 it stepped only the first (the restore kept topics x (window + 1) of them): now all 10, in ts
    order, as an uninterrupted run."""
    import time

    path = tmp_path / "state.npz"
    keys = [k + 0.25 * (k % 3) for k in range(10)]
    publisher = Client(paho, broker.port)
    bridge = BridgeProcess(bundles["sine"], broker.url, "--state-file", str(path), "--reorder-hold", "60")
    bridge.wait_for("subscribed to sensors/#")
    for k in reversed(keys):
        publisher.publish("sensors/a", {"ts": k, "value": float(sine_values[round(k)])})
    deadline = time.monotonic() + 30
    while _held_meta(path)[0] < 10:
        assert time.monotonic() < deadline, _held_meta(path)
        time.sleep(0.05)
    assert bridge.stop(signal.SIGKILL) == -signal.SIGKILL
    out = Client(paho, broker.port, "predictions/#")
    bridge = BridgeProcess(bundles["sine"], broker.url, "--state-file", str(path), "--reorder-window", "0")
    bridge.wait_for("subscribed to sensors/#")
    assert bridge.stop() == 0, bridge.text()
    _wait_topics(out, {"predictions/sensors/a": 10})
    got = out.snapshot()["predictions/sensors/a"]
    assert [m["ts"] for m in got] == keys
    assert [m["prediction"] for m in got] == _lone(bundles["sine"], [float(sine_values[round(k)]) for k in keys])
    publisher.close()
    out.close()


def test_a_qos0_prediction_published_while_the_broker_is_away_is_counted_and_does_not_stall_saves(paho, broker):
    """At most once: paho drops a QoS 0 publish with no connection and never acknowledges it. Before, its mid
    stayed pending and every later state save waited on it in vain (a review found it); now it is counted and
    logged, and nothing is waited for."""
    import io

    from edgernn.stream.mqtt import Broker, ClientOptions, Connection

    err = io.StringIO()
    options = ClientOptions(client_id="qos0-outage", qos=0)
    connection = Connection(Broker("127.0.0.1", broker.port, False), options, ["r/#"], err)
    broker.stop()  # the outage: the client never gets a connection
    confirmed = []
    connection.publish("p/a", b"1.0", on_confirmed=lambda: confirmed.append(1))
    connection.publish("p/b", b"2.0")
    assert connection.dropped == 2 and not confirmed
    assert connection.wait_published(0.5)  # nothing pending: a save goes ahead
    assert "not published at --qos 0" in err.getvalue()


def test_qos0_predictions_paho_queued_when_the_connection_went_are_counted_not_confirmed(paho, broker):
    """A broker that hangs (SIGSTOP) and then dies: paho writes what the socket takes and clears the rest of its
    queue when it reconnects, without a word. Before, every QoS 0 publish paho took was confirmed at once, so
    those were neither sent nor counted (a review found it); now each prediction is either written (confirmed)
    or dropped (counted), and nothing is left pending."""
    import io
    import signal
    import time

    from edgernn.stream.mqtt import Broker, ClientOptions, Connection

    err = io.StringIO()
    connection = Connection(Broker("127.0.0.1", broker.port, False), ClientOptions(client_id="qos0-hang", qos=0),
                            ["r/#"], err)
    connection.start()
    deadline = time.monotonic() + 20
    while not connection.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert connection.connected
    broker.process.send_signal(signal.SIGSTOP)  # reads nothing: the socket's buffers fill, paho queues the rest
    confirmed, published = [], 40
    for k in range(published):
        connection.publish(f"p/{k}", bytes(1 << 20), on_confirmed=lambda: confirmed.append(1))
    broker.stop(kill=True)
    broker.start()  # paho reconnects (its backoff starts at 1 s) and clears what it had not written
    deadline = time.monotonic() + 30
    while connection.session < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert connection.session >= 2, err.getvalue()
        assert connection.wait_published(10)  # nothing left pending: saves go ahead
        assert connection.dropped > 0 and len(confirmed) + connection.dropped == published, err.getvalue()
        assert "prediction(s) not published at --qos 0" in err.getvalue()
    finally:
        connection.close()
