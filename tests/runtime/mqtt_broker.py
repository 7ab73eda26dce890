"""A real Mosquitto for the MQTT bridge's tests and benchmark: a free localhost port, a generated config, started
and stopped (or killed) by the test. Skips, saying why, where paho-mqtt or the mosquitto binary is missing."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edgernn.stream.mqtt import stop_network
from runtime_env import INT8


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
                                              if os.access(p, os.X_OK)), None)


def require_mqtt():
    """paho's client module, or a skip naming what is missing (CI installs both: .ci/run)."""
    paho = pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is not installed: pip install 'edgernn[mqtt]'")
    if not hasattr(paho, "CallbackAPIVersion"):
        pytest.skip("paho-mqtt 1.x is installed; the bridge needs 2.x")
    if mosquitto_binary() is None:
        pytest.skip("the mosquitto broker is not installed (apt-get install mosquitto)")
    return paho


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    """One broker process on 127.0.0.1:``port``, its session store in ``directory`` (kept across restarts)."""

    def __init__(self, directory: Path, port: int | None = None, save_on_changes: bool = False):
        """``save_on_changes``: the store is written after every change (not every second), so a ``kill -9``
        loses at most what was in hand (what a broker that must not lose messages is configured with)."""
        self.directory, self.port = Path(directory), port or free_port()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config = self.directory / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {self.directory}/\nautosave_interval 1\nmax_queued_messages 0\n"
            f"autosave_on_changes {'true' if save_on_changes else 'false'}\n"
            "max_inflight_messages 0\nset_tcp_nodelay true\nlog_dest stderr\nlog_type error\nlog_type warning\n"
            f"user {getpass.getuser()}\n")  # as root it would run as 'mosquitto', unable to write its store here
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> "Mosquitto":
        self.process = subprocess.Popen([mosquitto_binary(), "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=open(self.directory / "broker.log", "ab"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {(self.directory / 'broker.log').read_text()[-500:]}")
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening within 10 s")

    def stop(self, kill: bool = False) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            self.process.wait(timeout=10)
        self.process = None


class Client:
    """A test's own MQTT client: publishes readings, collects predictions (topic -> list of decoded JSON): those
    forwarded as published in ``received``, the retained ones the broker sends a new subscription in ``retained``.
    With ``client_id`` it keeps a persistent session (QoS 1, as real sensors and subscribers do) and reconnects
    by itself after a broker restart."""

    def __init__(self, paho, port: int, subscribe: str | None = None, client_id: str | None = None):
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        self.received: dict[str, list[dict]] = {}
        self.retained: dict[str, list[dict]] = {}
        self.arrived: dict[str, list[float]] = {}  # topic -> monotonic arrival times
        self.last_arrival = 0.0  # monotonic time of the last message
        self.last_published = 0.0  # monotonic time the last ``publish`` returned
        self._lock = threading.Lock()
        self._barrier, self._barrier_seen = None, threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id or "",
                                  protocol=paho.MQTTv5)
        self.client.max_inflight_messages_set(1000)
        self.client.reconnect_delay_set(0.2, 1)
        ready, subscribed = threading.Event(), threading.Event()

        def on_connect(client, userdata, flags, reason_code, properties):
            if subscribe:
                client.subscribe(subscribe, qos=1)  # again at every connection: a session the broker lost too
            ready.set()

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.on_message = self._on_message
        properties = None
        if client_id:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, clean_start=not client_id, properties=properties)
        self.client.loop_start()
        if not ready.wait(10):
            raise RuntimeError("the test client could not connect")
        if subscribe and not subscribed.wait(10):
            raise RuntimeError("the test client could not subscribe")

    def _on_message(self, client, userdata, message):
        now = time.monotonic()
        if message.payload.startswith(b"barrier "):  # this client's or another's (``barrier``)
            if message.payload == self._barrier:
                self._barrier_seen.set()
            return
        with self._lock:
            self.last_arrival = now
            if message.retain:
                self.retained.setdefault(message.topic, []).append(json.loads(message.payload))
                return
            self.received.setdefault(message.topic, []).append(json.loads(message.payload))
            self.arrived.setdefault(message.topic, []).append(now)

    def snapshot(self) -> dict[str, list[dict]]:
        """A copy of ``received``, safe from the network thread's additions."""
        with self._lock:
            return {topic: list(messages) for topic, messages in self.received.items()}

    def count(self) -> int:
        with self._lock:
            return sum(len(v) for v in self.received.values())

    def publish(self, topic: str, payload) -> None:
        body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        self.client.publish(topic, body, qos=1).wait_for_publish(10)
        self.last_published = time.monotonic()

    def wait_for(self, count: int, timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        while self.count() < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.count() >= count

    def settle(self, since: float, timeout: float = 30) -> float:
        """Once what was awaited has come: wait until nothing more arrives for a quiet period derived from the
        latency measured (``since`` -> the last arrival; three times it, at least 0.2 s), so that on a slow
        machine a late duplicate still has time to show. Returns the quiet period waited for."""
        quiet = max(0.2, 3 * (self.last_arrival - since))
        deadline = time.monotonic() + timeout
        while time.monotonic() - self.last_arrival < quiet:
            if time.monotonic() > deadline:
                raise AssertionError(f"messages kept coming for {timeout} s")
            time.sleep(0.02)
        return quiet

    def barrier(self, topic: str, timeout: float = 10) -> None:
        """Publish a marker to ``topic`` (which this client's subscription matches) and wait for it: the broker
        sends a client's messages in order, so whatever it had for us (retained messages of a new subscription
        included) has arrived by then."""
        self._barrier = f"barrier {time.monotonic()}".encode()
        self._barrier_seen.clear()
        self.client.publish(topic, self._barrier, qos=1)
        if not self._barrier_seen.wait(timeout):
            raise AssertionError(f"the barrier message on {topic} did not come back within {timeout} s")

    def close(self):
        stop_network(self.client)


class BridgeProcess:
    """``edgernn bridge`` in a subprocess, its stderr collected line by line."""

    def __init__(self, bundle, url: str, *extra: str, subscribe: str = "sensors/#", variant: str = INT8):
        self.args = [sys.executable, "-m", "edgernn", "bridge", str(bundle), url, "--variant", variant,
                     "--subscribe", subscribe, *extra]
        self.lines: list[str] = []
        self.process = subprocess.Popen(self.args, stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stderr:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, count: int = 1, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.text().count(text) < count:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the bridge never said {text!r} ({count}x):\n{self.text()}")
            time.sleep(0.02)

    def stop(self, sig=signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(timeout=30)
        self._reader.join(5)
        return code
