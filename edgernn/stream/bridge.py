"""``edgernn bridge``: sensor readings from MQTT topics in, one JSON prediction per reading out, every
topic its own stream (``topics``), resumable across restarts of the bridge and of the broker.

The order of things, per batch of messages that arrived together:
1. each message is parsed (``payloads``); a bad one, or one on a topic no answer can be published for, is logged
   (topic shortened), counted and skipped; a reading with a time goes to its topic's reorder window (``order``):
   a repeat of one stepped or held is counted as a duplicate, a late or far-ahead one is published to the late
   topic, logged and counted, the rest are held and released in time order (window full, regular step, hold
   time, exit); a reading without a time is stepped as it comes, after what its topic holds;
2. the released readings are stepped, one invoke per round (``TopicStreams.step``), and each prediction is
   published (QoS 1 by default) to the ``--publish`` topic;
3. when a save is due (``--save-every`` readings unsaved, the broker's in-flight window nearly used up, or the
   oldest unsaved reading ``SAVE_WITHIN`` seconds old: ``Bridge._save_due``), and once the broker has acknowledged
   every prediction published so far, all topics' states, the readings still held and the keys stepped are saved
   atomically (``--state-file``), and only then are the messages acknowledged to the broker: a held reading is
   acknowledged once a save holds it (without a state file, once it is stepped).

What a ``kill -9`` costs: nothing is lost, and a reading with a time is published once. The readings since the
last save were not acknowledged, so the broker (which keeps the session, see ``mqtt``) delivers them again to
the restarted bridge; they are stepped again from the saved state (the same states, the same predictions). Those
whose predictions reached the broker are not published again: the journal (``journal``) has those the broker
acknowledged, and the broker's retained predictions (``retained``, read at start before any reading is taken)
those in flight at the kill that it received. A prediction the broker never received is published. With
``--no-retain`` (or a broker that keeps no retained messages) predictions in flight at the kill are published a
second time (identical, same ``ts``: a subscriber that keeps the last ``ts`` per topic drops them). A reading
without a time (a plain number) has nothing to recognise it by: it is stepped twice when the kill falls between
a save and its acknowledgements, and its prediction may come twice. The state file is written at start, so a
kill before the first save of a run is covered too. A broker restart loses only what the broker itself loses
(enable its ``persistence``); the bridge reconnects with backoff, keeps its states and republishes what was not
acknowledged; what the restored broker delivers again is recognised by its ``ts``, and what publishers send out
of order after reconnecting is put back in order by the window.

Without ``--state-file`` readings are acknowledged as soon as their predictions are published, and a restart
starts every topic afresh. SIGTERM, SIGINT and SIGHUP finish the batch in hand, step every held reading, save,
acknowledge and exit (0, or 130 for SIGINT). Nothing from the wire makes the bridge exit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import secrets
import signal
import stat
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgernn.runtime import locking
from edgernn.errors import EXIT_INTERRUPTED, EXIT_OK, EdgernnError
from edgernn.stream.log_limit import LimitedLog
from edgernn.stream import mqtt, payloads, retained
from edgernn.stream.journal import PublishedJournal, new_token
from edgernn.stream.readers import Stop
from edgernn.stream.service import check_interval_options, signals_stop
from edgernn.stream.lines import ANOMALY_LEVEL
from edgernn.stream.order import MAX_WINDOW, TopicOrder, Verdict
from edgernn.stream.topics import TopicStreams

SAVE_WITHIN = 1.0  # seconds: a quiet sensor's last readings are saved (and acknowledged) this soon
# unacknowledged readings at which a dry queue means "save now": Mosquitto sends a client at most
# max_inflight_messages (default 20) unacknowledged QoS 1 messages, then waits for acknowledgements
ACK_WINDOW = 16
BATCH = 4096  # messages taken at once; readings beyond it wait for the next batch
POLL = 0.2  # seconds between looks at a stop request while no message arrives
PUBACK_WAIT = 5.0  # seconds a save or an exit waits for the broker to acknowledge the predictions


@dataclass
class BridgeConfig:
    publish: str  # the prediction topic, ``{topic}`` standing for the reading's topic
    field: str = "value"
    time_field: str = "ts"
    on_nan: str = "skip"
    state_file: Path | None = None
    save_every: int = 100
    interval: float | None = None  # publish each prediction's interval at this level (and score each reading)
    adaptive: bool = False
    anomalies: bool = False  # also log each anomalous reading (topic, value, score) on stderr
    keep_anomalies: bool = False  # with anomalies: feed flagged readings as read, not clipped to their interval
    reorder_window: int = 16  # readings of a topic that may overtake an older one (``order``)
    reorder_hold: float = 2.0  # seconds (connected) a reading waits at most for older ones
    max_ahead: float = 86400.0  # a ts this far beyond the topic's clock and the wall clock is refused
    late_topic: str = "{publish}/late"  # where late and refused readings go; {publish}: the prediction topic
    summary_every: float = 60.0  # seconds between summary lines on stderr (0: only the final one)


@dataclass
class BridgeReport:
    readings: int = 0
    bad: int = 0
    duplicates: int = 0  # QoS 1 repeats of a reading already stepped or held
    late: int = 0  # older than the topic's clock: not stepped, sent to the late topic
    ahead: int = 0  # ts too far ahead: refused, sent to the late topic
    unpublishable: int = 0  # topics the bridge cannot publish an answer for (too long, too deep, not UTF-8)
    not_republished: int = 0  # stepped again after a kill -9, their predictions already at the broker
    refused: int = 0
    saves: int = 0
    topics: set = field(default_factory=set)

    def line(self) -> str:
        return (f"{self.saves} saves; {self.readings} readings from {len(self.topics)} topic(s) predicted; "
                f"{self.duplicates} duplicates skipped, {self.late} late, {self.ahead} too far ahead, "
                f"{self.not_republished} not published again, {self.bad} bad payload(s), {self.unpublishable} "
                f"unpublishable topic(s), {self.refused} over --max-topics")


class Bridge:
    """The loop: ``Connection`` messages through ``TopicOrder`` and ``TopicStreams``, predictions back, states
    saved, acks sent."""

    def __init__(self, streams: TopicStreams, connection, config: BridgeConfig, err=None,
                 journal: PublishedJournal | None = None, published: dict | None = None, learn=None):
        self.streams, self.connection, self.config = streams, connection, config
        self.order = TopicOrder(streams, config.reorder_window, config.reorder_hold, config.max_ahead)
        self.journal = journal  # with --state-file: the predictions acknowledged since the last save
        self._published = published or {}  # topic -> highest key at the broker before a kill (journal, retained)
        self._learn = learn  # () -> (retained marks, note): ``retained.read``, once connected
        self._own = retained.reading_pattern(config.publish)
        self._late = config.late_topic.replace("{publish}", config.publish)
        self.report = BridgeReport()
        self._err = err or sys.stderr
        self._unacked: list[mqtt.Incoming] = []  # awaiting a save (with --state-file)
        self._unsaved, self._oldest = 0, 0.0
        self._log = LimitedLog(self._err)  # per kind: bad, late, ahead, unpublishable
        self._summary = (time.monotonic(), self.report.line())  # a summary only once something changed
        self.secret = b""  # the state file's key for signing retained predictions
        self._session = 0  # the connection the hold times started on
        self._checked: set[str] = set()  # topics whose names passed the checks in ``_reading``

    def run(self, stop: Stop) -> None:
        if self._learn is not None:
            self.learn(stop)
        while not stop:
            if self.connection.fatal:
                raise EdgernnError(self.connection.fatal)
            batch = self.connection.take(min(POLL, self.order.next_due(time.monotonic())), BATCH)
            if self.connection.session != self._session:  # reconnected: held readings wait afresh
                self._session = self.connection.session
                self.order.rearm(time.monotonic())
            self.handle(batch)
            if self.config.state_file is None:
                self.connection.ack(self._unacked)
                self._unacked.clear()
            elif self._save_due():
                self.save()
            self._summarise()
        self._step(self.order.release(everything=True))  # at the end, nothing waits for older readings
        if self.config.state_file is None:
            self.connection.ack(self._unacked)
        elif self._unacked or self._unsaved:
            self.save(final=True)

    def learn(self, stop: Stop) -> None:
        """Once connected (the broker has then dropped the killed bridge's connection), merge the retained
        predictions of the restored state into the journal's marks, before any reading is taken."""
        while not self.connection.connected:
            if stop or self.connection.fatal:
                return
            time.sleep(POLL / 4)
        marks, note = self._learn()
        for topic, key in marks.items():
            self._published[topic] = max(key, self._published.get(topic, -math.inf))
        print(f"last predictions read back from the broker (retained): {len(marks)} topic(s)", file=self._err,
              flush=True)
        if note:
            print(f"note: the retained predictions may be incomplete ({note}); predictions in flight at the last "
                  "kill may be published again", file=self._err, flush=True)

    def _save_due(self) -> bool:
        """``--save-every`` readings unsaved; or the queue ran dry with ``ACK_WINDOW`` readings unacknowledged (the
        broker may be holding the next ones back until we acknowledge); or the oldest unsaved is ``SAVE_WITHIN``
        seconds old (a quiet sensor)."""
        if not self._unacked:
            return False
        return (self._unsaved >= self.config.save_every
                or (len(self._unacked) >= ACK_WINDOW and self.connection.messages.empty())
                or time.monotonic() - self._oldest >= SAVE_WITHIN)

    def handle(self, batch: list[mqtt.Incoming]) -> None:
        """Sort each message out (a reading held in its topic's window, or skipped with a trace), then step and
        publish what the windows release."""
        now = time.monotonic()
        ready = []  # readings without a time, and those the windows release as each reading comes
        for message in batch:
            if not self._take(message, now, ready):
                if not self._unacked:
                    self._oldest = now
                self._unacked.append(message)
        self._step(ready + self.order.release(now, waiting=self.connection.connected))

    def _take(self, message: mqtt.Incoming, now: float, ready: list) -> bool:
        """Whether ``message`` is acknowledged once its reading is stepped (held without a state file); else it
        is acknowledged with the next save (or at once without a state file)."""
        if message.retain and self._own.match(message.topic):
            return False  # our own last prediction: a new subscription gets retained ones, noLocal or not
        reading = self._reading(message)
        if reading is None:
            return False
        slot = self.streams.slots[message.topic]
        if reading.key is None:  # no time to order it by: stepped as it comes, after what its topic holds
            ready.extend(self.order.release_slot(slot, everything=True))
            ready.append((slot, (message.topic, reading, None)))
            return False
        later = self.config.state_file is None  # with one, the save holds what is held: acknowledged then
        ack = dataclasses.replace(message, payload=b"") if later else None  # held: not its payload
        verdict = self.order.offer(slot, reading.key, (message.topic, reading, ack), now)
        if verdict is Verdict.DUPLICATE:
            self.report.duplicates += 1
        elif verdict is not Verdict.HELD:
            self._refuse(message.topic, slot, reading, verdict)
        ready.extend(self.order.release_slot(slot))
        return later and verdict is Verdict.HELD

    def _step(self, released: list[tuple[int, tuple]]) -> None:
        """Step the released readings in rounds and publish one prediction each (in each topic's key order)."""
        if not released:
            return
        results = self.streams.step_checked([(slot, item[1].value) for slot, item in released])
        for (_, (topic, reading, message)), result in zip(released, results):
            if message is not None:
                self._unacked.append(message)
            if reading.key is not None and reading.key <= self._published.get(topic, -math.inf):
                self.report.not_republished += 1  # stepped again after a kill; its prediction is out already
                continue
            confirmed = None
            if self.journal is not None and reading.key is not None:
                confirmed = functools.partial(self.journal.record, topic, reading.key)
            self.connection.publish(self.config.publish.replace("{topic}", topic),
                                    payloads.prediction(reading, result), confirmed)
            if self.config.anomalies and result.get("anomaly"):
                print(f"topic {mqtt.shortened(topic)}: anomaly: {reading.value:.9g} at {reading.ts} (score "
                      f"{result['score']:.3g}, level {self.config.interval:g})", file=self._err, flush=True)
        self._unsaved += len(released)
        self.report.readings += len(released)

    def _refuse(self, topic: str, slot: int, reading: payloads.Reading, verdict: Verdict) -> None:
        """A late or far-ahead reading: not stepped; counted, logged, and published to the late topic."""
        clock = self.streams.last_key[slot]
        late = self._late.replace("{topic}", topic)
        if verdict is Verdict.LATE:
            self.report.late += 1
            why = f"is late (the topic is at {clock:.17g}; beyond the reorder window)"
        else:
            self.report.ahead += 1
            why = f"is more than --max-ahead {self.config.max_ahead:g} beyond the topic's clock and the wall clock"
        self._log(verdict.value, f"topic {mqtt.shortened(topic)}: the reading at ts {reading.ts!r:.40} {why}; not "
                                 f"stepped, sent to {mqtt.shortened(late)}")
        if mqtt.publishable(late) is None:
            self.connection.publish(late, payloads.refusal(reading, verdict.value, clock), retain=False)

    def _reading(self, message: mqtt.Incoming) -> payloads.Reading | None:
        """The message's reading, its topic given a slot; None (logged, counted) for one not to be stepped."""
        topic = message.topic
        known = message.valid_topic and topic in self._checked  # checked (this run's --publish) when first read
        problem = None if known else "the topic is not valid UTF-8" if not message.valid_topic else (
            mqtt.readable(topic) or mqtt.publishable(self.config.publish.replace("{topic}", topic))
            or mqtt.publishable(self._late.replace("{topic}", topic)))
        if problem is not None:
            self.report.unpublishable += 1
            self._log("unpublishable", f"topic {mqtt.shortened(topic)}: no answer can be published for it "
                                       f"({problem}); skipped")
            return None
        try:
            streams = self.streams
            reading = payloads.parse(message.payload, self.config.field, self.config.time_field,
                                     streams.columns.features if streams.takes_rows else None)
            if self.config.on_nan == "raise" and not payloads.finite(reading):
                raise payloads.BadPayload(f"the value {reading.value} is not finite (--on-nan raise)")
        except payloads.BadPayload as exc:
            self.report.bad += 1
            self._log("bad", f"topic {mqtt.shortened(topic)}: {exc}; skipped")
            return None
        new = topic not in self.streams.slots
        slot = self.streams.slot(topic)
        if slot is None:
            self.report.refused += 1
            return None
        self._checked.add(topic)  # as many as the topics with a slot
        if new and self.journal is not None:
            self.journal.announce(topic)
        self.report.topics.add(topic)
        return reading

    def _summarise(self) -> None:
        """The summary line every ``summary_every`` seconds, when something changed."""
        when, last = self._summary
        if self.config.summary_every <= 0 or time.monotonic() - when < self.config.summary_every:
            return
        line = self.report.line()
        if line != last:
            print(line, file=self._err, flush=True)
        self._summary = (time.monotonic(), line)

    def _last_key(self, topic: str) -> float:
        slot = self.streams.slots.get(topic)
        last = None if slot is None else self.streams.last_key[slot]
        return -math.inf if last is None else last

    def restore_held(self, record) -> None:
        """Put back the readings a saved state held (``_held_record``): acknowledged already, so only there.
        Untrusted input: an entry that is not ``[slot, ts, value]`` (``[topic, ...]`` before) of a topic with a
        slot is ignored."""
        if not isinstance(record, list):
            return
        names = list(self.streams.slots)  # in slot order
        for entry in record[: len(self.streams.slots) * (MAX_WINDOW + 1)]:
            try:
                topic, ts, value = entry
                rows = self.streams.takes_rows
                if isinstance(value, list) != rows or (rows and len(value) != self.streams.predictor.features):
                    continue
                value = tuple(map(float, value)) if isinstance(value, list) else float(value)
                reading = payloads.Reading(value, ts, payloads.order_key(ts))
            except (TypeError, ValueError, payloads.BadPayload):
                continue
            if isinstance(topic, int) and not isinstance(topic, bool) and 0 <= topic < len(names):
                topic = names[topic]  # held readings name their topic by slot (a topic can be 1 KiB long)
            if isinstance(topic, str) and topic in self.streams.slots:
                self.report.topics.add(topic)
                self.order.offer(self.streams.slots[topic], reading.key, (topic, reading, None))

    def _held_record(self) -> list:
        """Each held reading as ``[slot, ts, value]``, numbers as text (NaN and inf are readings too); the slot, not
        the topic: a topic written once per held reading made the state 16 times its topics' size."""
        record = []
        for slot, held in self.order.held.items():
            for entry in held:
                _, reading, _ = entry.item
                value = list(map(repr, reading.value)) if isinstance(reading.value, tuple) else repr(reading.value)
                record.append([slot, reading.ts, value])
        return record

    def write_state(self, token: str) -> None:
        """Every topic's state, its clock, recent keys and held readings, the journal's token and the key."""
        self.streams.save(self.config.state_file, journal=token, secret=self.secret.hex(),
                          seen=self.order.record(), held=self._held_record())

    def save(self, final: bool = False) -> None:
        """Save every topic's state (and the readings held) once the broker has every prediction, then
        acknowledge the readings."""
        if not self.connection.wait_published(PUBACK_WAIT):
            if final:
                print(f"note: the broker has not acknowledged every prediction; the state is left at the last "
                      f"save, and the {len(self._unacked)} readings since are delivered again at the next start",
                      file=self._err, flush=True)
            return  # disconnected: paho publishes them again once reconnected; the save waits for that
        token = new_token()
        self.write_state(token)
        if self.journal is not None:  # the state now covers every prediction but those not stepped again yet
            self._published = {topic: key for topic, key in self._published.items() if key > self._last_key(topic)}
            self.journal.reset(token, self._published)
            self.connection.tag(token)
        self.connection.ack(self._unacked)
        self._unacked.clear()
        self._unsaved = 0
        self.report.saves += 1


@dataclass
class BrokerOptions(mqtt.ClientOptions):
    """What the command line says about the broker: the client's options, plus where and what to read."""

    url: str = ""
    subscribe: list[str] = field(default_factory=list)
    password_file: str | None = None


def _password(options: BrokerOptions) -> str | None:
    """--password, or the first line of --password-file: UTF-8 text, read without following it into a FIFO or
    reading a huge file (one-line errors)."""
    if options.password_file is None:
        return options.password
    if options.password is not None:
        raise EdgernnError("give --password or --password-file, not both")
    name = options.password_file
    fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise EdgernnError(f"--password-file {name} is not a regular file")
        data = handle.read(mqtt.MAX_TOPIC_BYTES + 2)
    if len(data) > mqtt.MAX_TOPIC_BYTES + 1:
        raise EdgernnError(f"--password-file {name} is longer than a password can be ({mqtt.MAX_TOPIC_BYTES} bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise EdgernnError(f"--password-file {name} is not UTF-8 text") from None
    return text.splitlines()[0] if text.strip("\r\n") else ""


def _client(broker_options: BrokerOptions, config: BridgeConfig) -> mqtt.ClientOptions:
    """The client's options, every one checked before connecting (EdgernnError, one line)."""
    for topic_filter in broker_options.subscribe:
        mqtt.check_filter(topic_filter)
    late = config.late_topic.replace("{publish}", config.publish)
    mqtt.check_publish_template(late, "--late-topic")
    if late == config.publish:
        raise EdgernnError("--late-topic must differ from --publish")
    client = mqtt.ClientOptions(**{f.name: getattr(broker_options, f.name)
                                   for f in dataclasses.fields(mqtt.ClientOptions)})
    client.client_id = client.client_id or mqtt.default_client_id(config.state_file, broker_options.subscribe)
    client.password = _password(broker_options)
    mqtt.check_identity(client.client_id, client.username, client.password)
    return client


def _secret(saved: dict) -> bytes | None:
    """The state's key for signing retained predictions (None: none valid saved)."""
    text = saved.get("secret")
    if isinstance(text, str) and len(text) == 64:
        try:
            return bytes.fromhex(text)
        except ValueError:
            return None
    return None


def run(bundle, broker_options: BrokerOptions, config: BridgeConfig, *, variant: str, backend: str,
        reset_state: bool, max_topics: int, err=None, trust=None) -> int:
    """``edgernn bridge``: returns the exit code. Raises EdgernnError/OSError for bad input (one line)."""
    err = err or sys.stderr
    broker = mqtt.parse_url(broker_options.url)
    mqtt.check_publish_template(config.publish)
    if not broker_options.subscribe:
        raise EdgernnError("the bridge needs at least one --subscribe topic filter, e.g. 'sensors/+/temperature'")
    check_interval_options(config.interval, config.adaptive, config.anomalies, config.keep_anomalies, None)
    mqtt.check_identity(None, broker.username, broker.password)
    client = _client(broker_options, config)
    mqtt.require_paho()  # before the model loads: a missing extra is the first thing to say
    if config.state_file is not None and config.state_file.is_dir():
        raise EdgernnError(f"--state-file {config.state_file} is a directory")
    if config.anomalies and config.interval is None:
        config.interval = ANOMALY_LEVEL
    streams = TopicStreams(bundle, variant, backend, config.on_nan, max_topics, err, config.interval,
                           config.adaptive, trust=trust, clean=config.anomalies and not config.keep_anomalies)
    if streams.predictor.backend_note:
        print(f"note: {streams.predictor.backend_note}", file=err, flush=True)
    stop = Stop()
    with contextlib.ExitStack() as stack:
        if config.state_file is not None:
            stack.enter_context(locking.locked(config.state_file, "state file"))
            if config.state_file.exists() and not reset_state:
                streams.restore(config.state_file)
                print(f"resumed {len(streams.slots)} topic(s) from {config.state_file}", file=err, flush=True)
        connection = mqtt.Connection(broker, client, broker_options.subscribe, err)
        bridge = _durable(stack, streams, connection, broker, client, config, err)
        stack.enter_context(signals_stop(stop))
        connection.start()
        stack.callback(connection.close)
        bridge.run(stop)
    print(bridge.report.line(), file=err, flush=True)
    return EXIT_INTERRUPTED if stop.signal == signal.SIGINT else EXIT_OK


def _durable(stack, streams: TopicStreams, connection, broker, client, config: BridgeConfig, err) -> Bridge:
    """The bridge, and with --state-file what makes it resumable: its journal, the retained read-back, the
    signing key, the restored duplicate window and held readings, and a state naming them all from the start."""
    if config.state_file is None:
        return Bridge(streams, connection, config, err)
    journal = PublishedJournal(config.state_file)
    published = journal.load(streams.journal_token)  # None: not this state's journal, not obeyed
    secret = _secret(streams.saved)
    learn = None
    if streams.journal_token is not None and secret is not None and client.retain and "{topic}" in config.publish:
        known = sorted(set(streams.slots) | (journal.topics if published is not None else set()))
        learn = functools.partial(retained.read, broker, client, known, config.publish, streams.journal_token,
                                  secret)
    fresh = streams.journal_token is None or secret is None
    journal.open(streams.journal_token or new_token(), keep=published is not None)
    stack.callback(journal.close)
    bridge = Bridge(streams, connection, config, err, journal, published, learn)
    bridge.secret = secret or secrets.token_bytes(32)
    bridge.order.restore(streams.saved.get("seen"))
    bridge.restore_held(streams.saved.get("held"))
    if fresh:  # a state naming the journal and the key from the start: a kill before the first save finds both
        bridge.write_state(journal.token)
    connection.tag(journal.token)
    connection.sign(bridge.secret)
    return bridge
