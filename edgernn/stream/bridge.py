"""``edgernn stream --mqtt``: sensor readings from MQTT topics in, one JSON prediction per reading out, every
topic its own stream (``topics``), resumable across restarts of the bridge and of the broker.

The order of things, per batch of messages that arrived together:
1. each message is parsed (``payloads``); a bad one is logged with its topic and skipped; a reading whose time is
   not after the last one stepped for its topic (a QoS 1 redelivery) is skipped;
2. the readings are stepped, one invoke per round (``TopicStreams.step``), and each prediction is published
   (QoS 1 by default) to the ``--publish`` topic;
3. when a save is due (``--save-every`` readings unsaved, the broker's in-flight window nearly used up, or the
   oldest unsaved reading ``SAVE_WITHIN`` seconds old: ``Bridge._save_due``), and once the broker has acknowledged
   every prediction published so far, all topics' states are saved atomically (``--state-file``), and only then
   are their readings acknowledged to the broker.

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
acknowledged.

Without ``--state-file`` readings are acknowledged as soon as their predictions are published, and a restart
starts every topic afresh. SIGTERM, SIGINT and SIGHUP finish the batch in hand, save, acknowledge and exit (0,
or 130 for SIGINT).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgernn import locking
from edgernn.runtime.errors import EXIT_INTERRUPTED, EXIT_OK, EdgernnError
from edgernn.stream import mqtt, payloads, retained
from edgernn.stream.journal import PublishedJournal, new_token
from edgernn.stream.readers import Stop
from edgernn.stream.service import signals_stop
from edgernn.stream.lines import ANOMALY_LEVEL
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


@dataclass
class BridgeReport:
    readings: int = 0
    bad: int = 0
    duplicates: int = 0
    not_republished: int = 0  # stepped again after a kill -9, their predictions already at the broker
    refused: int = 0
    saves: int = 0
    topics: set = field(default_factory=set)


class Bridge:
    """The loop: ``Connection`` messages through ``TopicStreams``, predictions back, states saved, acks sent."""

    def __init__(self, streams: TopicStreams, connection, config: BridgeConfig, err=None,
                 journal: PublishedJournal | None = None, published: dict | None = None, learn=None):
        self.streams, self.connection, self.config = streams, connection, config
        self.journal = journal  # with --state-file: the predictions acknowledged since the last save
        self._published = published or {}  # topic -> highest key at the broker before a kill (journal, retained)
        self._learn = learn  # () -> (retained marks, note): ``retained.read``, once connected
        self._own = retained.reading_pattern(config.publish)
        self.report = BridgeReport()
        self._err = err or sys.stderr
        self._unacked: list[mqtt.Incoming] = []  # awaiting a save (with --state-file)
        self._unsaved, self._oldest = 0, 0.0

    def run(self, stop: Stop) -> None:
        if self._learn is not None:
            self.learn(stop)
        while not stop:
            if self.connection.fatal:
                raise EdgernnError(self.connection.fatal)
            batch = self.connection.take(POLL, BATCH)
            if batch:
                self.handle(batch)
            if self.config.state_file is None:
                self.connection.ack(self._unacked)
                self._unacked.clear()
            elif self._save_due():
                self.save()
        if self._unacked:
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
        print(f"{len(marks)} topic(s)' last prediction read back from the broker (retained)", file=self._err,
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
        """Parse, skip what must be skipped, step the rest in rounds, publish one prediction per reading."""
        accepted = []
        for message in batch:
            if message.retain and self._own.match(message.topic):
                continue  # our own last prediction: a new subscription gets retained ones, noLocal or not
            reading = self._reading(message)
            if reading is not None:
                accepted.append((message, reading, self.streams.slots[message.topic]))
        self._unacked.extend(batch)
        if not accepted:
            return
        results = self.streams.step_checked([(slot, reading.value) for _, reading, slot in accepted])
        for (message, reading, _), result in zip(accepted, results):
            if reading.key is not None and reading.key <= self._published.get(message.topic, -math.inf):
                self.report.not_republished += 1  # stepped again after a kill; its prediction is out already
                continue
            confirmed = None
            if self.journal is not None and reading.key is not None:
                confirmed = functools.partial(self.journal.record, message.topic, reading.key)
            self.connection.publish(self.config.publish.replace("{topic}", message.topic),
                                    payloads.prediction(reading, result), confirmed)
            if self.config.anomalies and result.get("anomaly"):
                print(f"topic {message.topic}: anomaly: {reading.value:.9g} at {reading.ts} (score "
                      f"{result['score']:.3g}, level {self.config.interval:g})", file=self._err, flush=True)
        if not self._unsaved:
            self._oldest = time.monotonic()
        self._unsaved += len(accepted)
        self.report.readings += len(accepted)

    def _reading(self, message: mqtt.Incoming) -> payloads.Reading | None:
        try:
            columns = self.streams.columns
            reading = payloads.parse(message.payload, self.config.field, self.config.time_field,
                                     columns.features if columns is not None else None)
            if self.config.on_nan == "raise" and not payloads.finite(reading):
                raise payloads.BadPayload(f"the value {reading.value} is not finite (--on-nan raise)")
        except payloads.BadPayload as exc:
            self.report.bad += 1
            print(f"topic {message.topic}: {exc}; skipped", file=self._err, flush=True)
            return None
        new = message.topic not in self.streams.slots
        slot = self.streams.slot(message.topic)
        if slot is None:
            self.report.refused += 1
            return None
        if new and self.journal is not None:
            self.journal.announce(message.topic)
        if not self.streams.claim(slot, reading.key):
            self.report.duplicates += 1
            return None
        self.report.topics.add(message.topic)
        return reading

    def _last_key(self, topic: str) -> float:
        slot = self.streams.slots.get(topic)
        last = None if slot is None else self.streams.last_key[slot]
        return -math.inf if last is None else last

    def save(self, final: bool = False) -> None:
        """Save every topic's state once the broker has every prediction, then acknowledge the readings."""
        if not self.connection.wait_published(PUBACK_WAIT):
            if final:
                print(f"note: the broker has not acknowledged every prediction; the state is left at the last "
                      f"save, and the {len(self._unacked)} readings since are delivered again at the next start",
                      file=self._err, flush=True)
            return  # disconnected: paho publishes them again once reconnected; the save waits for that
        token = new_token()
        self.streams.save(self.config.state_file, journal=token)
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
    if options.password_file is None:
        return options.password
    if options.password is not None:
        raise EdgernnError("give --password or --password-file, not both")
    text = Path(options.password_file).read_text(encoding="utf-8")
    return text.splitlines()[0] if text else ""


def run(bundle, broker_options: BrokerOptions, config: BridgeConfig, *, variant: str, backend: str,
        reset_state: bool, max_topics: int, err=None) -> int:
    """``edgernn stream --mqtt``: returns the exit code. Raises EdgernnError/OSError for bad input (one line)."""
    err = err or sys.stderr
    broker = mqtt.parse_url(broker_options.url)
    mqtt.check_publish_template(config.publish)
    if not broker_options.subscribe:
        raise EdgernnError("--mqtt needs at least one --subscribe topic filter, e.g. 'sensors/+/temperature'")
    mqtt.require_paho()  # before the model loads: a missing extra is the first thing to say
    client = mqtt.ClientOptions(**{f.name: getattr(broker_options, f.name)
                                   for f in dataclasses.fields(mqtt.ClientOptions)})
    client.client_id = client.client_id or mqtt.default_client_id(config.state_file, broker_options.subscribe)
    client.password = _password(broker_options)
    if config.state_file is not None and config.state_file.is_dir():
        raise EdgernnError(f"--state-file {config.state_file} is a directory")
    if config.anomalies and config.interval is None:
        config.interval = ANOMALY_LEVEL
    if config.adaptive and config.interval is None:
        raise EdgernnError("--adaptive needs --interval or --anomalies")
    streams = TopicStreams(bundle, variant, backend, config.on_nan, max_topics, err, config.interval,
                           config.adaptive)
    if streams.predictor.backend_note:
        print(f"note: {streams.predictor.backend_note}", file=err, flush=True)
    stop = Stop()
    with contextlib.ExitStack() as stack:
        if config.state_file is not None:
            stack.enter_context(locking.locked(config.state_file, "state file"))
            if config.state_file.exists() and not reset_state:
                streams.restore(config.state_file)
                print(f"resumed {len(streams.slots)} topic(s) from {config.state_file}", file=err, flush=True)
        journal, published, learn = None, None, None
        connection = mqtt.Connection(broker, client, broker_options.subscribe, err)
        if config.state_file is not None:
            journal = PublishedJournal(config.state_file)
            published = journal.load(streams.journal_token)  # None: not this state's journal, not obeyed
            if streams.journal_token is not None and client.retain and "{topic}" in config.publish:
                known = sorted(set(streams.slots) | (journal.topics if published is not None else set()))
                learn = functools.partial(retained.read, broker, client, known, config.publish,
                                          streams.journal_token)
            journal.open(streams.journal_token or new_token(), keep=published is not None)
            stack.callback(journal.close)
            if streams.journal_token is None:  # a state naming the journal from the start: a kill before the
                streams.save(config.state_file, journal=journal.token)  # first save finds both
            connection.tag(journal.token)
        stack.enter_context(signals_stop(stop))
        connection.start()
        stack.callback(connection.close)
        bridge = Bridge(streams, connection, config, err, journal, published, learn)
        bridge.run(stop)
    report = bridge.report
    print(f"{report.saves} saves; {report.readings} readings from {len(report.topics)} topic(s) predicted; {report.duplicates} "
          f"redelivered skipped, {report.not_republished} not published again, {report.bad} bad payload(s), "
          f"{report.refused} over --max-topics",
          file=err, flush=True)
    return EXIT_INTERRUPTED if stop.signal == signal.SIGINT else EXIT_OK
