"""What reached the broker before a ``kill -9``: the bridge's own retained predictions, read back at start.

The journal (``journal``) knows the predictions the broker acknowledged; a prediction the broker received but
whose PUBACK the killed bridge never wrote down is not in it. The broker knows: predictions are published
retained, so it keeps each topic's last one, with the input's ``ts`` in its JSON and, in a user property
(``tags.TAG``), the token of the saved state it follows. At start a short-lived second connection subscribes to
the publish topic of every topic the state and its journal name (the journal names each new topic before its
first prediction), and a retained prediction that names the restored state's token says that every reading of
its topic up to its ``ts`` was published (one connection's messages reach the broker in order, so the last one
kept implies the earlier ones). Those readings are then stepped again without being published, as the
journal's are. A prediction the broker never received (a killed process's unsent bytes are dropped) is not
retained, and is published: exactly once. Readings without a time (plain numbers) have no ``ts`` to compare and
keep at-least-once.

The token check keeps out what is not this state's: another bridge's predictions, a run from an older state, a
``--reset-state`` run's. The token is readable by every subscriber of the predictions, so a retained message is
believed only with a valid HMAC (``tags.signature``) under the key kept in the state file: no other client can mint
one, so no retained message can claim a ``ts`` this bridge has not published (one far in the future would otherwise
keep every later prediction of its topic from being published). An ACL giving only the bridge write access to its
--publish topics is still the first line (README). Exact topics, ``CHUNK`` per SUBSCRIBE, not a wildcard: Mosquitto
drops the retained messages of one subscription beyond its queue (``max_queued_messages``, 1000 by default). The
broker sends them after the SUBACK, so each chunk ends at a barrier: a message this connection publishes to
``BARRIER/<digest of the client id>`` after the SUBACK arrives after them (Mosquitto delivers a client's messages
in order). A barrier the broker refuses (an ACL on its subscription or its message) ends a chunk once nothing has
come for ``QUIET`` seconds; an answer that does not come within ``WAIT`` seconds ends the reading. QoS 0: nothing
to acknowledge, and the chunks are read at about 5,000 topics a second on localhost.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import ssl
import threading
import time

from edgernn.errors import first_line
from edgernn.stream import mqtt, payloads
from edgernn.stream.tags import MAC, TAG, signature

BARRIER = "edgernn/barrier"
CHUNK = 500  # topics per SUBSCRIBE: their retained messages fit Mosquitto's default queue of 1000
WAIT = 10.0  # seconds at most for each answer (CONNACK, SUBACK, barrier); then the bridge goes on with what came
QUIET = 0.5  # seconds without a message that end a chunk when the barrier is refused


def reading_pattern(template: str) -> re.Pattern:
    """Matches the publish topics of ``template``; group ``t`` is the reading's topic."""
    first, *rest = [re.escape(part) for part in template.split("{topic}")]
    groups = ["(?P<t>.+)"] + ["(?P=t)"] * (len(rest) - 1)
    return re.compile(first + "".join(g + part for g, part in zip(groups, rest)) + r"\Z", re.DOTALL)


class _Reader:
    """paho's callbacks (network thread) and what they learned, behind one condition."""

    def __init__(self, names: dict[str, str], token: str, barrier: str, secret: bytes):
        self.names, self.token, self.barrier = names, token, barrier  # names: publish topic -> reading topic
        self.secret = secret
        self.marks: dict[str, float] = {}
        self.connack = None
        self.down = False  # disconnected (Mosquitto drops a client whose publish its ACL refused)
        self.subacks: dict[int, list] = {}
        self.barriers = 0  # barrier messages received
        self.refused = False  # the broker refused the barrier's subscription or message
        self.last = time.monotonic()  # when the last message (or SUBACK) came
        self.cond = threading.Condition()

    def on_connect(self, client, userdata, flags, reason_code, properties):
        with self.cond:
            self.connack = reason_code
            self.cond.notify_all()

    def on_disconnect(self, client, userdata, flags, reason_code, properties):
        with self.cond:
            self.down = True
            self.cond.notify_all()

    def on_subscribe(self, client, userdata, mid, reason_codes, properties):
        with self.cond:
            self.subacks[mid] = reason_codes
            self.last = time.monotonic()  # the retained messages follow
            self.cond.notify_all()

    def on_publish(self, client, userdata, mid, reason_code, properties):
        with self.cond:
            self.refused = self.refused or reason_code.is_failure
            self.cond.notify_all()

    def on_message(self, client, userdata, message):
        with self.cond:
            self.last = time.monotonic()
            name = message._topic.decode("utf-8", "replace")  # ``topic`` raises for one that is not UTF-8
            if name == self.barrier:
                self.barriers += 1
            topic = self.names.get(name)
            tags = getattr(message.properties, "UserProperty", None) or []
            mac = dict(tags).get(MAC) if isinstance(tags, list) else None
            if (message.retain and topic is not None and (TAG, self.token) in tags and isinstance(mac, str)
                    and hmac.compare_digest(mac, signature(self.secret, self.token, name, message.payload))):
                key = payloads.published_key(message.payload)
                if key is not None:
                    self.marks[topic] = max(key, self.marks.get(topic, -math.inf))
            self.cond.notify_all()

    def wait(self, done) -> bool:
        """Whether ``done()`` came true within ``WAIT`` seconds, still connected."""
        deadline = time.monotonic() + WAIT
        with self.cond:
            while not done():
                if self.down or time.monotonic() > deadline:
                    return False
                self.cond.wait(0.05)
            return True


def read(broker: mqtt.Broker, options: mqtt.ClientOptions, topics: list[str], template: str,
         token: str, secret: bytes) -> tuple[dict[str, float], str | None]:
    """For each of ``topics`` whose retained prediction is tagged ``token`` and signed with ``secret``, the key
    of its ``ts``; and a note when they could not all be read (then a prediction in flight at the kill may be
    published again)."""
    names = {template.replace("{topic}", topic): topic for topic in topics}
    names = {name: topic for name, topic in names.items() if mqtt.publishable(name) is None}
    if not names:
        return {}, None
    reader, problem = _read(broker, options, names, token, secret, barrier=True)
    if reader is not None and reader.refused:  # again on a new connection, each chunk ended by a quiet spell
        reader, problem = _read(broker, options, names, token, secret, barrier=False)
        problem = problem or (f"the broker refused the barrier message to {BARRIER}/..., so each batch of "
                              f"retained predictions ended after {QUIET:g} s of quiet")
    return (reader.marks if reader else {}), problem


def _read(broker, options, names: dict[str, str], token: str, secret: bytes, barrier: bool):
    """One connection's reading: the ``_Reader`` (None if it could not connect) and what went wrong."""
    client_id = f"{options.client_id}-{secrets.token_hex(3)}"
    digest = hashlib.sha256(client_id.encode()).hexdigest()[:16]  # a client id may hold + or # or be long
    reader = _Reader(names, token, f"{BARRIER}/{digest}", secret)
    paho = mqtt.require_paho()
    try:
        client = mqtt.new_client(broker, options, client_id, reconnect=False)
        client.on_connect, client.on_disconnect = reader.on_connect, reader.on_disconnect
        client.on_subscribe, client.on_publish, client.on_message = (reader.on_subscribe, reader.on_publish,
                                                                      reader.on_message)
        client.connect(broker.host, broker.port, mqtt.KEEPALIVE, clean_start=True)
    except (OSError, ssl.SSLError) as exc:
        return None, f"cannot reach {broker} ({first_line(exc)})"
    client.loop_start()
    try:
        if not reader.wait(lambda: reader.connack is not None):
            return reader, f"no answer from {broker} within {WAIT:g} s"
        if reader.connack.is_failure:
            return reader, f"the broker refused the connection ({reader.connack})"
        publish_topics = list(names)
        for i, start in enumerate(range(0, len(publish_topics), CHUNK)):
            chunk = publish_topics[start: start + CHUNK] + ([reader.barrier] if barrier and i == 0 else [])
            _, mid = client.subscribe([(name, paho.SubscribeOptions(qos=0)) for name in chunk])
            if not reader.wait(lambda: mid in reader.subacks):
                return reader, f"no SUBACK within {WAIT:g} s"
            refused = [(name, code) for name, code in zip(chunk, reader.subacks[mid]) if code.is_failure]
            if refused and refused[-1][0] == reader.barrier:
                reader.refused = True
                return reader, None
            if refused:
                return reader, f"the broker refused the subscription to {refused[0][0]} ({refused[0][1]})"
            if barrier:
                client.publish(reader.barrier, b"", qos=1)
                ended = reader.wait(lambda: reader.barriers > i or reader.refused)
            else:
                ended = reader.wait(lambda: time.monotonic() - reader.last > QUIET)
            if reader.refused:
                return reader, None
            if not ended:
                return reader, f"the retained predictions did not end within {WAIT:g} s"
        return reader, None
    finally:
        mqtt.stop_network(client)
