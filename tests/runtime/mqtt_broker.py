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

    def __init__(self, directory: Path, port: int | None = None):
        self.directory, self.port = Path(directory), port or free_port()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config = self.directory / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {self.directory}/\nautosave_interval 1\nmax_queued_messages 0\n"
            "max_inflight_messages 0\nlog_dest stderr\nlog_type error\nlog_type warning\n"
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
    forwarded as published in ``received``, the retained ones the broker sends a new subscription in ``retained``."""

    def __init__(self, paho, port: int, subscribe: str | None = None):
        self.received: dict[str, list[dict]] = {}
        self.retained: dict[str, list[dict]] = {}
        self.arrived: dict[str, list[float]] = {}  # topic -> monotonic arrival times
        self._lock = threading.Lock()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.client.max_inflight_messages_set(1000)
        ready = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not ready.wait(10):
            raise RuntimeError("the test client could not connect")
        if subscribe:
            done = threading.Event()
            self.client.on_subscribe = lambda *args: done.set()
            self.client.subscribe(subscribe, qos=1)
            if not done.wait(10):
                raise RuntimeError("the test client could not subscribe")

    def _on_message(self, client, userdata, message):
        now = time.monotonic()
        with self._lock:
            if message.retain:
                self.retained.setdefault(message.topic, []).append(json.loads(message.payload))
                return
            self.received.setdefault(message.topic, []).append(json.loads(message.payload))
            self.arrived.setdefault(message.topic, []).append(now)

    def count(self) -> int:
        with self._lock:
            return sum(len(v) for v in self.received.values())

    def publish(self, topic: str, payload) -> None:
        body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        self.client.publish(topic, body, qos=1).wait_for_publish(10)

    def wait_for(self, count: int, timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        while self.count() < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.count() >= count

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


class BridgeProcess:
    """``edgernn stream --mqtt`` in a subprocess, its stderr collected line by line."""

    def __init__(self, bundle, url: str, *extra: str, subscribe: str = "sensors/#", variant: str = INT8):
        self.args = [sys.executable, "-m", "edgernn", "stream", str(bundle), "--variant", variant, "--mqtt", url,
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
