"""``edgernn bridge`` against a real Mosquitto (``mqtt_broker``): every reading of every topic gets one
prediction, equal to a lone ``StreamingPredictor``'s for that topic, across broker and bridge restarts (kill -9
included: with retained predictions, none is published twice). Real processes, a real broker, real
interpreters; nothing mocked."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from edgernn.runtime import StreamingPredictor
from mqtt_broker import BridgeProcess, Client, Mosquitto, free_port
from runtime_env import INT8, needs_spawn

pytestmark = needs_spawn
CLI = [sys.executable, "-m", "edgernn"]


def _values(sine_values, topics: int, steps: int) -> dict[str, np.ndarray]:
    return {f"sensors/{k}/temperature": sine_values[k: k + steps] * (1 + 0.02 * k) for k in range(topics)}


def _expected(bundle, series: dict[str, np.ndarray]) -> dict[str, list]:
    lone = StreamingPredictor.load(bundle, INT8)
    expected = {}
    for topic, values in series.items():
        lone.reset()
        expected[topic] = [None if math.isnan(p) else float(p) for p in lone.run(values)]
    return expected


def _publish_rounds(client: Client, series: dict[str, np.ndarray], steps: range) -> None:
    for t in steps:
        for topic, values in series.items():
            client.publish(topic, {"ts": t, "value": float(values[t])})


def test_fifty_topics_one_prediction_per_reading_equal_to_lone_predictors(paho, broker, bundles, sine_values,
                                                                         tmp_path):
    series = _values(sine_values, 50, 12)
    out = Client(paho, broker.port, "predictions/#")
    bridge = BridgeProcess(bundles["sine"], broker.url, "--state-file", str(tmp_path / "state.npz"))
    bridge.wait_for("subscribed to sensors/#")
    publisher = Client(paho, broker.port)
    _publish_rounds(publisher, series, range(12))
    assert out.wait_for(50 * 12), f"{out.count()} of {50 * 12} predictions:\n{bridge.text()}"
    out.settle(publisher.last_published)  # a second prediction for any reading would arrive in this time
    assert bridge.stop() == 0, bridge.text()
    expected = _expected(bundles["sine"], series)
    for topic in series:
        got = out.received[f"predictions/{topic}"]
        assert [m["ts"] for m in got] == list(range(12)), topic  # one each, in order
        assert [m["prediction"] for m in got] == expected[topic], topic
        assert [m["value"] for m in got] == [float(v) for v in series[topic]]
    assert "600 readings from 50 topic(s) predicted; 0 duplicates skipped, 0 late" in bridge.text()
    assert (tmp_path / "state.npz").exists()
    publisher.close()
    out.close()


def test_qos0_predicts_every_reading_and_saves_its_state(paho, broker, bundles, sine_values, tmp_path):
    """--qos 0 (at most once): no acknowledgement to wait for, so each publish is confirmed when paho takes it,
    and the state is saved as at QoS 1."""
    series = _values(sine_values, 5, 6)
    out = Client(paho, broker.port, "predictions/#")
    bridge = BridgeProcess(bundles["sine"], broker.url, "--qos", "0", "--state-file", str(tmp_path / "state.npz"))
    bridge.wait_for("subscribed to sensors/#")
    publisher = Client(paho, broker.port)
    _publish_rounds(publisher, series, range(6))
    assert out.wait_for(5 * 6), f"{out.count()} of {5 * 6} predictions:\n{bridge.text()}"
    assert bridge.stop() == 0, bridge.text()
    expected = _expected(bundles["sine"], series)
    for topic in series:
        assert [m["prediction"] for m in out.received[f"predictions/{topic}"]] == expected[topic], topic
    assert "30 readings from 5 topic(s) predicted" in bridge.text() and (tmp_path / "state.npz").exists()
    publisher.close()
    out.close()


def _check_resumed(out: Client, expected: dict[str, list], steps: int) -> int:
    """Every reading of every topic has a prediction equal to the uninterrupted one; copies of one reading's
    prediction (forwarded twice: published again after a kill) are identical. Returns the number of copies."""
    copies = 0
    for topic, wanted in expected.items():
        by_ts: dict[int, object] = {}
        for message in out.received[f"predictions/{topic}"]:
            if message["ts"] in by_ts:
                copies += 1
                assert by_ts[message["ts"]] == message["prediction"], (topic, message)
            by_ts[message["ts"]] = message["prediction"]
        assert sorted(by_ts) == list(range(steps)), topic
        assert [by_ts[t] for t in range(steps)] == wanted, topic
    return copies


def _wait_every_ts(out: Client, series: dict, steps: int, since: float) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(
            len({m["ts"] for m in out.received.get(f"predictions/{t}", [])}) < steps for t in series):
        time.sleep(0.05)
    out.settle(since)  # a second prediction for any reading would arrive in this time


def _kill_mid_flow(bridge: BridgeProcess, out: Client, publisher: Client, series: dict, rounds: range,
                   kill_after: int) -> None:
    """SIGKILL the bridge once ``kill_after`` predictions arrived, while the ``rounds`` are being published."""
    flow = threading.Thread(target=_publish_rounds, args=(publisher, series, rounds))
    flow.start()
    assert out.wait_for(kill_after), bridge.text()
    assert bridge.stop(signal.SIGKILL) == -signal.SIGKILL
    flow.join(60)
    assert not flow.is_alive(), "the readings could not all be published"


def test_broker_killed_and_bridge_killed_mid_run_every_topic_resumes(paho, broker, bundles, sine_values, tmp_path):
    """The broker is SIGKILLed and restarted on its port; later the bridge is SIGKILLed while readings flow,
    more readings are published while it is down (the broker queues them in its session), and it is restarted:
    every reading of every topic gets the prediction an uninterrupted run gives, and none is published twice
    (the journal and the broker's retained predictions say which were out before the kill)."""
    topics, steps = 50, 30
    series = _values(sine_values, topics, steps)
    expected = _expected(bundles["sine"], series)
    state = ["--state-file", str(tmp_path / "state.npz"), "--save-every", "1000"]
    out = Client(paho, broker.port, "predictions/#")
    bridge = BridgeProcess(bundles["sine"], broker.url, *state)
    bridge.wait_for("subscribed to sensors/#")
    publisher = Client(paho, broker.port)
    _publish_rounds(publisher, series, range(0, 10))
    assert out.wait_for(topics * 10), bridge.text()
    publisher.close()
    out.close()

    broker.stop(kill=True)
    bridge.wait_for("reconnecting with backoff")
    broker.start()
    bridge.wait_for("subscribed to sensors/#", count=2)
    previous = out.received
    out = Client(paho, broker.port, "predictions/#")
    out.received.update(previous)
    publisher = Client(paho, broker.port)
    _publish_rounds(publisher, series, range(10, 20))
    assert out.wait_for(topics * 20), bridge.text()

    _kill_mid_flow(bridge, out, publisher, series, range(20, 25), topics * 22)
    _publish_rounds(publisher, series, range(25, steps))  # queued by the broker for the bridge's session
    bridge = BridgeProcess(bundles["sine"], broker.url, *state)
    bridge.wait_for("session resumed")
    _wait_every_ts(out, series, steps, publisher.last_published)
    assert bridge.stop() == 0, bridge.text()
    # the readings stepped after the last save were not acknowledged: redelivered and stepped again from the
    # saved state; those whose predictions reached the broker (the journal: acknowledged; retained: received)
    # are not published again, those that never reached it are
    assert _check_resumed(out, expected, steps) == 0, bridge.text()
    assert "last predictions read back from the broker (retained): " in bridge.text()
    late = Client(paho, broker.port, "predictions/#")
    late.barrier("predictions/barrier")  # after the retained messages of its new subscription
    assert len(late.retained) == topics
    for topic, wanted in expected.items():  # each topic's last prediction, for a subscriber that comes later
        assert [(m["ts"], m["prediction"]) for m in late.retained[f"predictions/{topic}"]] == [(29, wanted[-1])]
    for client in (publisher, out, late):
        client.close()


def test_no_retain_still_resumes_every_topic_after_a_kill(paho, broker, bundles, sine_values, tmp_path):
    """``--no-retain``: the broker keeps no prediction, and a kill -9 mid-flow still costs nothing; only the
    predictions in flight at the kill may come twice (identical)."""
    topics, steps = 10, 30
    series = _values(sine_values, topics, steps)
    state = ["--state-file", str(tmp_path / "state.npz"), "--save-every", "1000", "--no-retain"]
    out = Client(paho, broker.port, "predictions/#")
    bridge = BridgeProcess(bundles["sine"], broker.url, *state)
    bridge.wait_for("subscribed to sensors/#")
    publisher = Client(paho, broker.port)
    _kill_mid_flow(bridge, out, publisher, series, range(0, 20), topics * 12)
    _publish_rounds(publisher, series, range(20, steps))
    bridge = BridgeProcess(bundles["sine"], broker.url, *state)
    bridge.wait_for("session resumed")
    _wait_every_ts(out, series, steps, publisher.last_published)
    assert bridge.stop() == 0, bridge.text()
    _check_resumed(out, _expected(bundles["sine"], series), steps)
    assert "read back" not in bridge.text()
    late = Client(paho, broker.port, "predictions/#")
    late.barrier("predictions/barrier")  # after any retained message
    assert late.retained == {} and late.count() == 0
    for client in (publisher, out, late):
        client.close()


def test_retained_predictions_are_not_read_as_readings(paho, broker, bundles):
    """A new subscription gets the retained messages of every topic it matches, the bridge's own predictions
    included (noLocal does not cover them): those on a --publish topic are skipped, not stepped."""
    publisher = Client(paho, broker.port)
    publisher.client.publish("predictions/sensors/a", json.dumps({"ts": 5, "value": 1.0, "prediction": 1.0}),
                             qos=1, retain=True).wait_for_publish(10)
    publisher.client.publish("other/b", b"2.5", qos=1, retain=True).wait_for_publish(10)  # a retained reading
    out = Client(paho, broker.port, "predictions/#")
    bridge = BridgeProcess(bundles["sine"], broker.url, subscribe="#")
    bridge.wait_for("subscribed to #")
    publisher.publish("sensors/a", {"ts": 6, "value": 0.5})
    assert out.wait_for(2), bridge.text()
    out.settle(publisher.last_published)
    assert bridge.stop() == 0, bridge.text()
    assert sorted(out.received) == ["predictions/other/b", "predictions/sensors/a"], bridge.text()
    assert [m["ts"] for m in out.received["predictions/sensors/a"]] == [6]
    assert "2 readings from 2 topic(s) predicted" in bridge.text()
    publisher.close()
    out.close()


def test_bad_payloads_plain_numbers_and_a_broker_that_starts_late(paho, bundles, sine_values, tmp_path):
    """The bridge starts before its broker (retries with backoff), reads plain numbers and JSON under --field,
    logs each bad payload with its topic and goes on, and refuses topics beyond --max-topics."""
    server = Mosquitto(tmp_path / "broker", port=free_port())
    bridge = BridgeProcess(bundles["sine"], server.url, "--field", "v", "--max-topics", "2")
    try:
        bridge.wait_for("cannot reach")
        server.start()
        bridge.wait_for("subscribed to sensors/#", timeout=30)
        out = Client(paho, server.port, "predictions/#")
        publisher = Client(paho, server.port)
        values = sine_values[:8]
        bad = [b"hello", b'{"v": "x"}', b"\xff\xfe", b'{"ts": "yesterday", "v": 1}', b"[1, 2]"]
        for i, value in enumerate(values):
            publisher.publish("sensors/plain", repr(float(value)))
            publisher.publish("sensors/json", {"v": float(value), "ts": f"2024-06-01T12:00:{i:02d}Z"})
            if i < len(bad):
                publisher.publish("sensors/plain", bad[i])
        publisher.publish("sensors/third", b"1.0")
        assert out.wait_for(16), bridge.text()
        out.settle(publisher.last_published)
        assert bridge.stop() == 0
    finally:
        if bridge.process.poll() is None:
            bridge.stop(signal.SIGKILL)
        server.stop()
    (lone,) = _expected(bundles["sine"], {"x": values}).values()
    assert [m["prediction"] for m in out.received["predictions/sensors/plain"]] == lone
    assert [m["prediction"] for m in out.received["predictions/sensors/json"]] == lone
    assert out.received["predictions/sensors/json"][3]["ts"] == "2024-06-01T12:00:03Z"
    assert "predictions/sensors/third" not in out.received
    log = bridge.text()
    assert "topic sensors/plain: 'hello' is not a number; skipped" in log
    assert "topic sensors/plain: JSON payload has no number under 'v' (--field); skipped" in log
    assert "topic sensors/plain: b'\\xff\\xfe' is not UTF-8 text; skipped" in log
    assert "topic sensors/plain: its time 'yesterday' is neither" in log
    assert "topic sensors/plain: '[1, 2]' is not a number; skipped" in log
    assert "topic sensors/third: more than 2 topics (--max-topics)" in log
    assert "Traceback" not in log


def test_refused_credentials_end_the_bridge_with_one_line(paho, bundles, tmp_path):
    server = Mosquitto(tmp_path / "broker")
    server.config.write_text(server.config.read_text().replace("allow_anonymous true", "allow_anonymous false"))
    server.start()
    try:
        result = subprocess.run([*CLI, "bridge", str(bundles["sine"]), server.url, "--variant", INT8,
                                 "-t", "a/#", "-u", "someone", "-P", "wrong"], capture_output=True, text=True,
                                timeout=60)
    finally:
        server.stop()
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: the broker mqtt://127.0.0.1:")
    assert "refused the connection: Not authorized" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["bridge", "http://localhost", "-t", "a"], "must start with mqtt:// or mqtts://"),
    (["bridge", "mqtt://localhost:99999", "-t", "a"], "is not a broker URL"),
    (["bridge", "mqtt://localhost"], "needs at least one --subscribe"),
    (["bridge", "mqtt://localhost", "-t", "a", "--publish", "p/#"], "must be a topic without wildcards"),
    (["bridge", "mqtt://localhost", "-t", "a", "--follow"], "No such option '--follow'"),
    (["bridge", "-t", "a"], "Missing argument 'URL'"),
    (["bridge", "mqtt://localhost", "-t", "a", "--keep-anomalies"], "--keep-anomalies needs --anomalies"),
    (["stream", "--mqtt", "mqtt://localhost", "-t", "a"], "No such option '-t'"),
    (["stream", "--mqtt", "mqtt://localhost"], "the MQTT bridge is its own command: edgernn bridge"),
], ids=["scheme", "port", "no-subscribe", "wildcard-publish", "line-option", "no-url", "keep-alone",
        "stream-mqtt-options", "stream-mqtt"])
def test_bad_bridge_options_are_one_line_and_exit_2(bundles, args, message):
    command, *rest = args
    result = subprocess.run([*CLI, command, str(bundles["sine"]), *rest], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_without_paho_the_bridge_names_the_extra(bundles):
    code = ("import sys; sys.modules['paho'] = None; from edgernn.cli.commands import main; "
            f"sys.argv = ['edgernn', 'bridge', {str(bundles['sine'])!r}, 'mqtt://localhost', '-t', 'a']; "
            "main()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONSAFEPATH": "1"})
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: the MQTT bridge needs paho-mqtt 2.x, which is not installed: "
                                     "pip install 'edgernn[mqtt]'")


def test_intervals_and_anomalies_are_published_with_each_prediction(paho, broker, bundles, sine_values):
    if StreamingPredictor.load(bundles["sine"], INT8).intervals is None:
        pytest.skip("this bundle was exported before intervals")
    series = _values(sine_values, 3, 20)
    series["sensors/0/temperature"][12] += 3.0
    out = Client(paho, broker.port, "predictions/#")
    bridge = BridgeProcess(bundles["sine"], broker.url, "--interval", "0.9", "--anomalies")
    bridge.wait_for("subscribed to sensors/#")
    publisher = Client(paho, broker.port)
    _publish_rounds(publisher, series, range(20))
    assert out.wait_for(3 * 20), f"{out.count()} of 60 predictions:\n{bridge.text()}"
    assert bridge.stop() == 0, bridge.text()
    for topic, values in series.items():
        lone = StreamingPredictor.load(bundles["sine"], INT8).monitor(0.9, clean=True).run(values)  # --anomalies
        got = out.received[f"predictions/{topic}"]
        assert [m["high"] for m in got[1:]] == list(lone["high"][1:])
        assert [m["anomaly"] for m in got] == list(lone["anomaly"])
    assert got[0]["score"] is None  # nothing was predicted for the first reading: NaN -> null
    assert out.received["predictions/sensors/0/temperature"][12]["anomaly"] is True
    assert "topic sensors/0/temperature: anomaly: " in bridge.text()
    publisher.close()
    out.close()


@pytest.mark.portable
def test_packed_user_properties_are_the_bytes_paho_packs(paho):
    """The bridge packs each prediction's signed user properties itself (paho's Properties costs ~50 us a
    prediction); the bytes on the wire must be paho's own, one pair or two, short values or past 127 bytes."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from edgernn.stream.mqtt import MAC, TAG, UserProperties

    for pairs in ([(TAG, "0" * 32)], [(TAG, "0" * 32), (MAC, "f" * 64)], [("é", "ü" * 300)], [(TAG, "")]):
        expected = Properties(PacketTypes.PUBLISH)
        expected.UserProperty = pairs
        assert UserProperties(pairs).pack() == expected.pack(), pairs
