"""Many MQTT topics through one predictor: a slot per topic, created on its first reading, and one invoke per
round of readings that arrive together.

Why one predictor: an invoke over ``streams=N`` costs little more than over one stream, so 500 sensors cost a
few invokes per batch of messages instead of 500. The interpreter's batch size is fixed when it is loaded, so
the predictor grows by reloading it with twice the streams and moving every stream's state across (hidden
states, last values, window buffers: ``StreamingPredictor.restore_state``); capacities are powers of two from 1
up to ``max_topics`` (at most 65536, the predictor's own limit). A topic beyond the limit is refused and logged
once; a topic keeps its slot for the life of the state file.

A round holds at most one reading per topic: a topic with several readings in one batch (a backlog after a
restart) is stepped once per round, in arrival order. Streams without a reading in a round are fed NaN, which
the predictor (loaded with ``on_nan="skip"``) leaves untouched, so every topic sees exactly its own readings:
the same predictions as a lone ``StreamingPredictor`` over that topic's values. ``hold`` is applied here,
per topic, before the round (a held topic is fed its own last value).

Per topic, the ordering key of the last reading stepped (``payloads.Reading.key``), the topic's clock, is kept
and saved with the states; what arrives out of order, twice, late or too far ahead is sorted out before the
step (``order``), whose record (recent keys, held readings) and the bridge's secret are saved here too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from edgernn.runtime import StreamingPredictor
from edgernn.errors import EdgernnError, StateError
from edgernn.runtime.state_file import read_state
from edgernn.stream.mqtt import shortened

MAX_TOPICS = 1 << 16  # StreamingPredictor's limit on streams
_RESET = "use --reset-state to start over"


class TopicStreams:
    """The topics seen so far, each a stream of one predictor, saved and restored together."""

    def __init__(self, bundle, variant: str, backend: str, on_nan: str = "skip", max_topics: int = 1024, err=None,
                 interval: float | None = None, adaptive: bool = False, trust=None, clean: bool = False):
        """``interval``: also give each prediction its interval at that level and score each reading against
        its own prediction (``edgernn.runtime.intervals``), per topic; ``adaptive`` tracks the width; ``clean``
        feeds a flagged reading to its topic's model clipped to its interval; ``trust``:
        the bundle must be signed by one of these keys (``edgernn.runtime.signing``)."""
        if not 1 <= max_topics <= MAX_TOPICS:
            raise ValueError(f"max_topics must be from 1 to {MAX_TOPICS}, got {max_topics}")
        def load(streams: int, on: str):
            return StreamingPredictor.load(bundle, variant=variant, backend=on, streams=streams, on_nan="skip",
                                           trust=trust)

        self.hold = on_nan == "hold"
        self.max_topics = max_topics
        self.predictor = load(1, backend)
        chosen = self.predictor.backend_name  # a preference list is resolved once: growing never switches backend
        self._load = lambda streams: load(streams, chosen)
        manifest = self.predictor.manifest
        self.columns, self.takes_rows = manifest.columns, manifest.takes_rows  # rows in, named outputs out
        if self.takes_rows and interval is not None:
            raise EdgernnError("this bundle's model is multivariate; its intervals are not calibrated yet (drop "
                             "--interval/--adaptive/--anomalies)")
        self._names = self.columns.output_names()  # several outputs: a prediction by name
        self._interval = {"level": interval, "adaptive": adaptive, "clean": clean}
        self.monitor = self.predictor.monitor(**self._interval) if interval is not None else None
        self.slots: dict[str, int] = {}  # topic -> stream index, in order of first reading
        self.journal_token: str | None = None  # the restored state's journal (``edgernn.stream.journal``)
        self.saved: dict = {}  # the restored state's MQTT record (untrusted: its reader checks what it takes)
        self.last_key: list[float | None] = []  # per slot: the key of the last reading stepped
        self._refused: set[str] = set()
        self._err = err or sys.stderr

    # -- topics --------------------------------------------------------------------------------------------------

    def slot(self, topic: str) -> int | None:
        """``topic``'s stream, created (and the predictor grown) on its first reading; None beyond the limit."""
        slot = self.slots.get(topic)
        if slot is not None:
            return slot
        if len(self.slots) >= self.max_topics:
            if topic not in self._refused and len(self._refused) < 1000:
                self._refused.add(topic)
                print(f"topic {shortened(topic)}: more than {self.max_topics} topics (--max-topics); its readings are "
                      "skipped", file=self._err, flush=True)
            return None
        slot = len(self.slots)
        if slot >= self.predictor.streams:
            self._grow(min(self.predictor.streams * 2, self.max_topics))
        self.slots[topic] = slot
        self.last_key.append(None)
        return slot

    def _grow(self, streams: int) -> None:
        old, bigger = self.predictor, self._load(streams)
        state = bigger.state
        for name, value in old.state.items():
            state[name][: old.streams] = value
        bigger.restore_state(state, old.steps)
        self.predictor = bigger
        if self.monitor is not None:  # each topic keeps its pending prediction, width and counts
            self.monitor = self._grown_monitor(self.monitor.state(), streams)

    def _grown_monitor(self, record: dict, streams: int):
        """A monitor for ``streams`` streams: the old ones as ``record`` left them, the new ones fresh."""
        monitor = self.predictor.monitor(**self._interval)
        fresh, kept = monitor.state(), len(record["previous"])  # a new monitor's record: one entry per stream
        monitor.restore({key: record[key] + value[kept:] if isinstance(value, list) else record.get(key, value)
                         for key, value in fresh.items()})
        return monitor

    # -- stepping ------------------------------------------------------------------------------------------------

    def step(self, readings: list[tuple[int, float]]) -> list[float]:
        """Step ``(slot, value)`` readings (each topic's in its order) in rounds of at most one per slot;
        returns one prediction per reading, in the same order."""
        return [result["prediction"] for result in self.step_checked(readings)]

    def step_checked(self, readings: list[tuple[int, float]]) -> list[dict]:
        """Like ``step``, one dict per reading: ``prediction``, and with an interval monitor also ``low``,
        ``high`` (the next value's interval) and ``score``, ``anomaly`` (this reading against its prediction)."""
        predictions: list = [None] * len(readings)
        pending = list(range(len(readings)))
        while pending:
            taken: dict[int, int] = {}  # slot -> the reading it takes this round
            later = []
            for i in pending:
                if readings[i][0] in taken:
                    later.append(i)
                else:
                    taken[readings[i][0]] = i
            self._round(list(taken.values()), readings, predictions)
            pending = later
        return predictions

    def _round(self, indices: list[int], readings, predictions: list) -> None:
        """One reading of each topic in ``indices`` stepped together: a number per topic, or a row of F for a model
        reading rows (F = 1 too), idle topics NaN (skipped); each prediction a number, or the outputs by name."""
        predictor = self.predictor
        streams, rows = predictor.streams, self.takes_rows
        inputs = np.full((streams, predictor.features) if rows else streams, np.nan)
        slots = [readings[i][0] for i in indices]
        inputs[slots] = [readings[i][1] for i in indices]
        fed = inputs  # what the predictor steps: a missing reading held (--on-nan hold), the others as read
        if self.hold and not np.isfinite(inputs[slots]).all():
            fed = inputs.copy()
            fed[slots] = np.where(np.isfinite(inputs[slots]), inputs[slots],
                                  predictor.state["last"].reshape(inputs.shape)[slots])
        if self.monitor is not None:  # intervals: one value per stream
            return self._checked_round(indices, slots, inputs, fed, predictions)
        out = predictor.step(fed if streams > 1 else fed[0] if rows else float(fed[0]))
        out = np.asarray(out, dtype=np.float64).reshape(streams, -1).tolist()
        for i, slot in zip(indices, slots):
            values = out[slot]
            predictions[i] = {"prediction": values[0] if len(values) == 1 else dict(zip(self._names, values))}

    def _checked_round(self, indices, slots, values, fed, predictions: list) -> None:
        """A round through the interval monitor: each reading scored against its prediction (a held one is
        stepped, not scored), the next value's interval with each prediction."""
        active = np.zeros(self.predictor.streams, dtype=bool)
        active[slots] = True
        checked = self.monitor.step_some(values, active, fed)
        fields = [np.atleast_1d(np.asarray(f, dtype=np.float64)) for f in checked]
        for i, slot in zip(indices, slots):
            row = {name: float(field[slot]) for name, field in zip(checked._fields, fields)}
            row["anomaly"] = bool(row["anomaly"])
            row.pop("residual")
            predictions[i] = row

    # -- saving --------------------------------------------------------------------------------------------------

    def save(self, path: Path, journal: str | None = None, **more) -> None:
        """Every topic's state, slot and last key in one atomic write (``StreamingPredictor.save_state``);
        ``journal``: the token of the journal of acknowledged predictions that follows this save; ``more``: the
        bridge's other JSON records (``saved`` after a ``restore``)."""
        topics = [[topic, self.last_key[slot]] for topic, slot in self.slots.items()]
        extra = {"mqtt": {**more, "topics": topics, "journal": journal}}
        if self.monitor is not None:
            extra["monitor"] = self.monitor.state()
        self.predictor.save_state(path, extra=extra)

    def restore(self, path: Path) -> None:
        """Load what ``save`` wrote: the predictor at the saved capacity, then the topics (type-checked: a
        state file is untrusted input). Raises StateError (one line)."""
        meta, _ = read_state(path, {})
        streams = meta.get("streams")
        if isinstance(streams, bool) or not isinstance(streams, int) or not 1 <= streams <= MAX_TOPICS:
            raise StateError(f"state file {path} has a malformed stream count; {_RESET}")
        if streams != self.predictor.streams:
            self.predictor = self._load(streams)
            if self.monitor is not None:
                self.monitor = self.predictor.monitor(**self._interval)
        extra = self.predictor.load_state(path)
        if self.monitor is not None:
            self.monitor.restore(extra.get("monitor"), f"state file {path}")
        topics = extra.get("mqtt", {}).get("topics") if isinstance(extra.get("mqtt"), dict) else None
        if not isinstance(topics, list) or len(topics) > streams or not all(
                isinstance(t, list) and len(t) == 2 and isinstance(t[0], str)
                and (t[1] is None or (isinstance(t[1], (int, float)) and not isinstance(t[1], bool)))
                for t in topics):
            raise StateError(f"state file {path} has no valid MQTT topic record (written by the line service?); "
                             f"{_RESET}")
        if len({t[0] for t in topics}) != len(topics):
            raise StateError(f"state file {path} names a topic twice; {_RESET}")
        if len(topics) > self.max_topics:
            raise StateError(f"state file {path} holds {len(topics)} topics, more than --max-topics "
                             f"{self.max_topics}; raise it")
        token = extra["mqtt"].get("journal")
        self.saved = extra["mqtt"]
        self.journal_token = token if isinstance(token, str) and token.isalnum() and len(token) <= 64 else None
        self.slots = {topic: slot for slot, (topic, _) in enumerate(topics)}
        self.last_key = [key if key is None else float(key) for _, key in topics]
