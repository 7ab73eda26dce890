"""The MQTT side of the bridge: broker URLs, the paho-mqtt client, reconnection, publishing and acknowledging.

paho-mqtt 2.x is an optional extra (``pip install 'edgernn[mqtt]'``), imported here only when the bridge starts.
The client speaks MQTT 5 with a stable client id, ``clean_start=False`` and a session that outlives a
disconnection by ``SESSION_EXPIRY`` seconds, so the broker queues the subscribed readings while the bridge is
down or restarting. Incoming QoS 1 messages are acknowledged by the caller (``ack``), not on receipt: the bridge
acknowledges a reading only once the state that includes it is saved, so a reading the saved state lacks is
redelivered after a ``kill -9``. Subscriptions are ``noLocal`` (the bridge never reads its own predictions back,
whatever the topics) and send retained messages only when new.

Predictions are published with the retain flag (``ClientOptions.retain``, ``--no-retain`` to turn it off), so the
broker keeps each topic's last one, and with an MQTT 5 user property (``tag``) naming the saved state they follow:
how a restarted bridge learns which predictions reached the broker before a ``kill -9`` (``retained``), and a
second one holding an HMAC of topic, token and payload under a key kept in the state file (``signature``), so
no other client can forge one. A broker that says it keeps no retained messages (``retain_available false``)
gets them without the flag.

What comes off the wire never raises here: a topic that is not UTF-8 is passed on flagged (``valid_topic``),
and what cannot be published (``publishable``) or subscribed (``check_filter``) is checked before paho sees it,
since paho raises in its network thread, where an exception stops the connection for good.

paho's network thread runs the connection: a broker that is not there at start, or goes away, is retried with
exponential backoff from ``RECONNECT_MIN`` to ``RECONNECT_MAX`` seconds, each outage logged once. A refusal that
retrying cannot cure (bad credentials, not authorised, a rejected client id, a TLS certificate that does not
verify) is fatal: ``fatal`` holds the one-line reason for the bridge to raise.
"""

from __future__ import annotations

import hashlib
import queue
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from edgernn.errors import EdgernnError, MissingDependency, first_line
from edgernn.stream.tags import MAC, TAG, UserProperties, signature

SESSION_EXPIRY = 7 * 24 * 3600  # seconds the broker keeps the session (and queues readings) while we are away
RECONNECT_MIN, RECONNECT_MAX = 1, 60
KEEPALIVE = 30
MAX_TOPIC_BYTES = 65535  # an MQTT string's length field
MAX_LEVELS = 200  # Mosquitto refuses a topic of more levels (and drops the client that publishes one)
MAX_READING_TOPIC = 1024  # bytes of a reading's topic: every topic is saved with the state (4 bytes a character),
# so 1,024 topics of 64 KiB made a state over its 256 MiB limit, refused at the next start
MAX_CLIENT_ID = 1024  # bytes: MQTT promises 23; more than this is a mistake, and it names the barrier topic
# QoS 1 predictions paho lets into flight before it queues the rest: none (0). Its default, 20, throttled batches;
# any window makes paho scan every message in flight at each acknowledgement (half its network thread at 50 topics).
# In flight: the predictions since the last save, which waits for their acknowledgements.
PUBLISH_WINDOW = 0
_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_FATAL_CONNACK = {0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C}  # protocol, client id, credentials, authorisation, banned


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_url(url: str) -> Broker:
    """``mqtt://[user[:password]@]host[:port]`` or ``mqtts://...`` (TLS), as mosquitto_sub's ``-L`` takes them;
    ports default to 1883 and 8883. Raises EdgernnError (one line) for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise EdgernnError(f"the broker URL {url!r} is not a broker URL ({first_line(exc)})") from None
    if parts.scheme not in _DEFAULT_PORTS:
        raise EdgernnError(f"the broker URL {url!r}: the URL must start with mqtt:// or mqtts:// (TLS)")
    if not parts.hostname:
        raise EdgernnError(f"the broker URL {url!r} names no host (e.g. mqtt://localhost:1883)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise EdgernnError(f"the broker URL {url!r}: give only the broker (topics go in --subscribe and --publish)")
    return Broker(parts.hostname, port or _DEFAULT_PORTS[parts.scheme], parts.scheme == "mqtts",
                  unquote(parts.username) if parts.username else None,
                  unquote(parts.password) if parts.password is not None else None)


def check_publish_template(template: str, option: str = "--publish") -> str:
    if not template or "+" in template or "#" in template or "\0" in template or not _utf8(template):
        raise EdgernnError(f"{option} {_short(template)!r} must be a topic without wildcards, e.g. "
                           "'predictions/{topic}'")
    problem = publishable(template.replace("{topic}", "t"))
    if problem is not None:
        raise EdgernnError(f"{option} {_short(template)!r}: {problem}")
    return template


def readable(topic: str) -> str | None:
    """Why the bridge takes no reading from ``topic`` (None: it does): not UTF-8, or longer than a state keeps."""
    data = _utf8(topic)
    if data is None:
        return "the topic is not valid UTF-8"
    if len(data) > MAX_READING_TOPIC:
        return f"the topic is {len(data)} bytes long (at most {MAX_READING_TOPIC}, as it is saved with the state)"
    return None


def publishable(topic: str) -> str | None:
    """Why the bridge cannot publish to ``topic`` (None: it can): what paho or Mosquitto would refuse."""
    data = _utf8(topic)
    if data is None:
        return "the topic is not valid UTF-8"
    if not data or len(data) > MAX_TOPIC_BYTES:
        return f"the topic is {len(data)} bytes long (1 to {MAX_TOPIC_BYTES})"
    if topic.count("/") >= MAX_LEVELS:
        return f"the topic has {topic.count('/') + 1} levels (Mosquitto takes at most {MAX_LEVELS})"
    if "+" in topic or "#" in topic or "\0" in topic:
        return "the topic holds a wildcard or NUL"
    return None


def check_filter(text: str) -> str:
    """A --subscribe topic filter the broker can take, or EdgernnError (one line): paho raises on a bad one in
    its network thread, where it cannot be reported."""
    data, body = _utf8(text), text
    if body.startswith("$share/"):
        _, group, body = (body.split("/", 2) + ["", ""])[:3]
        if not group or "+" in group or "#" in group:
            raise EdgernnError(f"--subscribe {_short(text)!r}: a shared subscription is $share/GROUP/FILTER")
    levels = body.split("/")
    problem = (None if data is not None else "is not valid UTF-8") or (
        f"is {len(data)} bytes long (1 to {MAX_TOPIC_BYTES})" if not body or len(data) > MAX_TOPIC_BYTES else None) or (
        "holds NUL" if "\0" in text else None) or (
        f"has {len(levels)} levels (at most {MAX_LEVELS})" if len(levels) > MAX_LEVELS else None) or (
        "uses # other than as the whole last level" if any("#" in level and (level != "#" or i != len(levels) - 1)
                                                            for i, level in enumerate(levels)) else None) or (
        "uses + other than as a whole level" if any("+" in level and level != "+" for level in levels) else None)
    if problem:
        raise EdgernnError(f"--subscribe {_short(text)!r} {problem}: not a topic filter (e.g. 'sensors/+/temp' "
                           "or 'sensors/#')")
    return text


def check_identity(client_id: str | None, username: str | None, password: str | None) -> None:
    """What the CONNECT packet carries, checked before connecting: paho raises (or the broker drops us) otherwise."""
    for name, value, limit in (("--client-id", client_id, MAX_CLIENT_ID), ("--username", username, MAX_TOPIC_BYTES),
                               ("the password", password, MAX_TOPIC_BYTES)):
        if value is None:
            continue
        data = _utf8(value)
        if data is None or "\0" in value:
            raise EdgernnError(f"{name} must be UTF-8 text without NUL")
        if len(data) > limit or (name == "--client-id" and not data):
            raise EdgernnError(f"{name} is {len(data)} bytes long (at most {limit}{', at least 1' * (not data)})")


def _utf8(text: str) -> bytes | None:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # surrogates: bytes on the command line that are not UTF-8
        return None


def _short(text: str) -> str:
    return text if len(text) <= 80 else f"{text[:60]}...({len(text)} characters)"


def shortened(topic: str) -> str:
    """A topic for a log line: at most 80 characters."""
    return _short(topic)


def default_client_id(state_file: Path | None, subscriptions: list[str]) -> str:
    """Stable across restarts (the broker's session is keyed by it): host name plus a digest of the state file's
    path, or of the subscriptions without one."""
    anchor = str(state_file.resolve()) if state_file else "\n".join(subscriptions)
    return f"edgernn-{socket.gethostname()[:20]}-{hashlib.sha256(anchor.encode()).hexdigest()[:10]}"


def require_paho():
    """paho.mqtt's client module, or MissingDependency naming the extra (also for paho-mqtt 1.x)."""
    try:
        from paho.mqtt import client
    except ImportError:
        client = None
    if client is None or not hasattr(client, "CallbackAPIVersion"):
        raise MissingDependency("the MQTT bridge needs paho-mqtt 2.x, which is not installed: "
                                "pip install 'edgernn[mqtt]'")
    return client


@dataclass
class Incoming:
    topic: str
    payload: bytes
    mid: int
    qos: int
    session: int  # the connection it came on: an ack belongs to that connection only
    retain: bool = False  # a retained message, sent because the subscription is new
    valid_topic: bool = True  # False: the topic was not UTF-8 (shown with escapes)


@dataclass
class ClientOptions:
    client_id: str | None = None  # None: ``default_client_id``
    qos: int = 1
    username: str | None = None
    password: str | None = None
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    insecure: bool = False
    retain: bool = True  # publish predictions retained: the broker keeps each topic's last one


def new_client(broker: Broker, options: ClientOptions, client_id: str, manual_ack: bool = False,
               reconnect: bool = True):
    """A paho MQTT 5 client for ``broker`` with ``options``' credentials and TLS, not yet connected."""
    mqtt = require_paho()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                         manual_ack=manual_ack, reconnect_on_failure=reconnect)
    username = options.username if options.username is not None else broker.username
    password = options.password if options.password is not None else broker.password
    if username is not None or password is not None:
        client.username_pw_set(username or "", password)
    if broker.tls:
        client.tls_set(ca_certs=options.cafile, certfile=options.certfile, keyfile=options.keyfile)
        client.tls_insecure_set(options.insecure)
    elif options.cafile or options.certfile or options.keyfile:
        raise EdgernnError(f"--cafile/--cert/--key need a mqtts:// broker URL, not {broker}")
    client.on_socket_open = _without_delay
    return client


def _without_delay(client, userdata, sock) -> None:
    """Turn off Nagle's algorithm: a prediction is a small packet, and behind the previous one still unacknowledged
    it waited for the broker's delayed ACK (publish to prediction: 22 ms median, 53 ms p99 at 100 readings/s)."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):  # not a TCP socket: nothing to turn off
        pass


def stop_network(client) -> None:
    """Disconnect ``client`` and wait for its network thread to end.

    paho's ``loop_stop`` reads its thread attribute twice while the ending thread clears it
    (eclipse-paho/paho.mqtt.python#872): losing that race raises AttributeError although the thread is
    already gone, which is what was asked for.
    """
    client.disconnect()
    try:
        client.loop_stop()
    except AttributeError:
        pass


class Connection:
    """One paho client: readings into ``messages``, predictions out with ``publish``, acks with ``ack``."""

    def __init__(self, broker: Broker, options: ClientOptions, subscriptions: list[str], err=None):
        mqtt = require_paho()
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        self.broker, self._options, self._subscriptions = broker, options, subscriptions
        self._err = err or sys.stderr
        self.messages: queue.SimpleQueue[Incoming] = queue.SimpleQueue()
        self.session = 0  # incremented at each connection
        self.fatal: str | None = None
        self._down_since: float | None = None
        self._closing = False
        self._pending: set[int] = set()  # mids of predictions published, not yet acknowledged by the broker
        self._early: dict[int, bool] = {}  # acknowledged before ``publish`` had their mid: accepted or refused
        self.dropped = 0  # QoS 0 predictions paho never wrote (no connection, or cleared at a lost one)
        self._queued: dict[int, object] = {}  # QoS 0 mid -> paho's info, until written (on_publish) or cleared
        self._on_confirmed: dict[int, object] = {}  # mid -> what to call when the broker acknowledges it
        self._lock = threading.Condition()
        self._retain = options.retain  # False also once the broker says it keeps no retained messages
        self._tag = None  # the publish properties naming the saved state (``tag``)
        self._token: str | None = None
        self._secret: bytes | None = None  # the state file's key, signing retained predictions (``sign``)
        client = new_client(broker, options, options.client_id, manual_ack=True)
        client.reconnect_delay_set(RECONNECT_MIN, RECONNECT_MAX)
        client.max_inflight_messages_set(PUBLISH_WINDOW)
        client.on_connect, client.on_disconnect = self._on_connect, self._on_disconnect
        client.on_message, client.on_publish = self._on_message, self._on_publish
        client.on_subscribe = self._on_subscribe
        self._properties = Properties(PacketTypes.CONNECT)
        self._properties.SessionExpiryInterval = SESSION_EXPIRY
        self._client, self._mqtt = client, mqtt

    # -- connecting --------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect (a broker not there yet is retried in the background) and start the network thread.
        Raises EdgernnError for a TLS failure, which no retry cures."""
        try:
            self._client.connect(self.broker.host, self.broker.port, KEEPALIVE, clean_start=False,
                                 properties=self._properties)
        except ssl.SSLError as exc:
            raise EdgernnError(f"TLS with {self.broker} failed: {first_line(exc)}") from None
        except OSError as exc:
            self._went_down(f"cannot reach {self.broker} ({first_line(exc)})")
            self._client.connect_async(self.broker.host, self.broker.port, KEEPALIVE, clean_start=False,
                                       properties=self._properties)
        self._client.loop_start()

    def _went_down(self, why: str) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            self._log(f"{why}; reconnecting with backoff ({RECONNECT_MIN} to {RECONNECT_MAX} s)")

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            if reason_code.value in _FATAL_CONNACK:
                self.fatal = f"the broker {self.broker} refused the connection: {reason_code}"
                client.disconnect()
            else:
                self._went_down(f"the broker {self.broker} refused the connection ({reason_code})")
            return
        self.session += 1
        with self._lock:  # paho cleared the QoS 0 publishes it had not written when the connection went
            self._clear_lost()
        if self._retain and getattr(properties, "RetainAvailable", 1) == 0:
            self._retain = False
            self._log(f"note: the broker {self.broker} keeps no retained messages: predictions are published "
                      "without retain, and those in flight at a kill -9 may be published again")
        options = self._mqtt.SubscribeOptions(qos=self._options.qos, noLocal=True,
                                              retainHandling=self._mqtt.SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
        client.subscribe([(topic, options) for topic in self._subscriptions])
        away = "" if self._down_since is None else f" after {time.monotonic() - self._down_since:.0f} s away"
        self._down_since = None
        resumed = "session resumed" if flags.session_present else "new session"
        self._log(f"connected to {self.broker} as {self._options.client_id} ({resumed}){away}")

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        for topic, code in zip(self._subscriptions, reason_codes):
            if code.is_failure:
                self._log(f"the broker refused the subscription to {topic} ({code})")
        self._log(f"subscribed to {', '.join(self._subscriptions)}")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.fatal is None and not self._closing:
            self._went_down(f"disconnected from {self.broker} ({reason_code})")

    @property
    def connected(self) -> bool:
        return self._client.is_connected()

    # -- messages ----------------------------------------------------------------------------------------------

    def _on_message(self, client, userdata, message) -> None:
        raw = message._topic  # paho's ``topic`` raises for one that is not UTF-8, here in its network thread
        try:
            topic, valid = raw.decode("utf-8"), True
        except UnicodeDecodeError:
            topic, valid = raw.decode("utf-8", "backslashreplace"), False
        self.messages.put(Incoming(topic, message.payload, message.mid, message.qos, self.session,
                                   bool(message.retain), valid))

    def take(self, timeout: float, limit: int) -> list[Incoming]:
        """What has arrived: waits up to ``timeout`` for the first message, then takes up to ``limit``."""
        try:
            batch = [self.messages.get(timeout=timeout)]
        except queue.Empty:
            return []
        while len(batch) < limit:
            try:
                batch.append(self.messages.get_nowait())
            except queue.Empty:
                break
        return batch

    def ack(self, messages: list[Incoming]) -> None:
        """Acknowledge QoS 1 messages of the current connection (older ones the broker sends again)."""
        for message in messages:
            if message.qos and message.session == self.session:
                self._client.ack(message.mid, message.qos)

    def tag(self, token: str) -> None:
        """Name the saved state that the predictions published from now on follow (its journal token), in a
        user property the broker keeps with the retained message."""
        self._tag = UserProperties([(TAG, token)])
        self._token = token

    def sign(self, secret: bytes) -> None:
        """Sign each retained prediction from now on (``signature``) with the state file's key."""
        self._secret = secret

    def publish(self, topic: str, payload: bytes, on_confirmed=None, retain: bool = True) -> None:
        """Publish at the configured QoS (retained unless ``--no-retain`` or not ``retain``); ``on_confirmed()``
        is called once the broker acknowledges it (QoS 1) or paho has written it (QoS 0: at most once), from the
        network thread, or here if that came first; a QoS 0 prediction paho never writes is counted in
        ``dropped``."""
        properties = self._tag
        if self._tag is not None and self._secret is not None and retain and self._retain:
            properties = UserProperties([(TAG, self._token), (MAC, signature(self._secret, self._token, topic,
                                                                              payload))])
        info = self._client.publish(topic, payload, qos=self._options.qos, retain=self._retain and retain,
                                    properties=properties)
        if self._options.qos == 0 and info.rc != self._mqtt.MQTT_ERR_SUCCESS:  # no connection: at most once
            with self._lock:
                self._clear_lost()
                self._count_dropped(1)
            return
        with self._lock:
            if info.mid in self._early:  # written or acknowledged (or refused) before publish() returned its mid
                accepted = self._early.pop(info.mid)
                if on_confirmed is not None and accepted:
                    on_confirmed()
                return
            self._pending.add(info.mid)
            if self._options.qos == 0:
                self._queued[info.mid] = info
            if on_confirmed is not None:
                self._on_confirmed[info.mid] = on_confirmed

    def _count_dropped(self, count: int) -> None:
        before, self.dropped = self.dropped, self.dropped + count
        if before == 0 or before // 1000 != self.dropped // 1000:
            self._log(f"{self.dropped} prediction(s) not published at --qos 0 while the broker was away "
                      "(at most once: --qos 1 queues them)")

    def _clear_lost(self) -> None:
        """QoS 0 predictions paho queued and then cleared at a lost connection (it marks them, never writes or
        announces them): dropped, counted, no longer waited for. Called holding the lock."""
        lost = [mid for mid, info in self._queued.items() if info.rc == self._mqtt.MQTT_ERR_CONN_LOST]
        for mid in lost:
            del self._queued[mid]
            self._pending.discard(mid)
            self._on_confirmed.pop(mid, None)
        if lost:
            self._count_dropped(len(lost))

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._log(f"the broker refused a prediction ({reason_code}); check its ACL for the --publish topics")
        with self._lock:  # QoS 0: written to the socket (paho's last word on it); QoS 1: acknowledged
            self._queued.pop(mid, None)
            if mid not in self._pending:
                self._early[mid] = not reason_code.is_failure
                return
            self._pending.discard(mid)
            callback = self._on_confirmed.pop(mid, None)
            if callback is not None and not reason_code.is_failure:
                callback()
            if not self._pending:  # the waiter wakes once, when everything is in
                self._lock.notify_all()

    def wait_published(self, timeout: float) -> bool:
        """Whether every prediction published so far has reached the broker (PUBACK), waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pending:
                self._clear_lost()
                if not self._pending:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.1))
            self._early.clear()  # no publish is in flight here (one thread publishes): these were never ours
            return True

    def close(self) -> None:
        """Disconnect (the session stays on the broker) and stop the network thread."""
        self._closing = True
        stop_network(self._client)

    def _log(self, text: str) -> None:
        print(text, file=self._err, flush=True)
