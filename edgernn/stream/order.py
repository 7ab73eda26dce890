"""Per topic, readings put back in time order before they are stepped; repeats, late and far-ahead readings told
apart, so none is dropped without a trace.

Why: after a reconnect a QoS 1 publisher (paho) sends the reading published during the reconnection before the
ones it queued while away, so out-of-order arrival is normal, not a redelivery. Each reading with a time (its
ordering ``key``) is *held* in its topic's window, kept sorted, and *released* (stepped) lowest key first when:
- the window is full: more than ``window`` readings held, so a reading may be overtaken by up to ``window``
  newer readings of its topic and still be stepped in its place (a count of readings, not seconds of ``ts``:
  a reconnect burst is so many readings whatever the sensor's rate, and ``ts`` may be a counter);
- it continues the topic's regular step (its key is the last stepped key plus the previous gap): nothing can
  come between, so a regularly sampled sensor pays no waiting at all;
- it, or a newer reading held, has waited ``hold`` seconds (wall clock): a quiet or irregular sensor's
  readings are still stepped soon;
- the bridge stops (``release(everything=True)``).

What is not held: a key already stepped recently (``SEEN`` keys per topic, saved with the state) or held is a
*duplicate* (a QoS 1 repeat); a key below the last stepped one is *late* (the state has moved on: not stepped);
a key more than ``max_ahead`` beyond both the topic's clock and the wall clock is *ahead* (refused; it never
moves the clock, so one forged ``ts`` cannot silence a topic). The clock is ``TopicStreams.last_key``: the key
of the last reading stepped into the slot's state.
"""

from __future__ import annotations

import bisect
import enum
import math
import time
from collections import deque
from dataclasses import dataclass, field

SEEN = 64  # stepped keys remembered per topic: a QoS 1 repeat of one of them is recognised as a duplicate


class Verdict(enum.Enum):
    HELD = "held"
    DUPLICATE = "duplicate"
    LATE = "late"
    AHEAD = "ahead"


@dataclass(order=True)
class Held:
    key: float
    arrived: float = field(compare=False)  # monotonic seconds
    item: object = field(compare=False)  # the caller's: what to step once released


class TopicOrder:
    """The reorder windows of every slot of a ``TopicStreams``, with its ``last_key`` as each slot's clock."""

    def __init__(self, streams, window: int = 16, hold: float = 1.0, max_ahead: float = 86400.0):
        self.streams, self.window, self.hold, self.max_ahead = streams, window, hold, max_ahead
        self.held: dict[int, list[Held]] = {}  # slot -> held readings, sorted by key (only slots holding some)
        self._seen: dict[int, deque] = {}
        self._seen_keys: dict[int, set] = {}
        self._gap: dict[int, float] = {}

    def offer(self, slot: int, key: float, item, now: float | None = None) -> Verdict:
        """Hold a reading (``HELD``), or say why not; ``item`` comes back from ``release``."""
        clock = self.streams.last_key[slot]
        held = self.held.get(slot, ())
        if key in self._seen_keys.get(slot, ()) or key == clock or any(h.key == key for h in held):
            return Verdict.DUPLICATE
        if key > max(-math.inf if clock is None else clock, time.time()) + self.max_ahead:
            return Verdict.AHEAD
        if clock is not None and key < clock:
            return Verdict.LATE
        bisect.insort(self.held.setdefault(slot, []), Held(key, time.monotonic() if now is None else now, item))
        return Verdict.HELD

    def release(self, now: float | None = None, everything: bool = False) -> list[tuple[int, object]]:
        """The readings due, ``(slot, item)``, each topic's in key order; each becomes its slot's clock."""
        now = time.monotonic() if now is None else now
        out = []
        for slot in list(self.held):
            held = self.held[slot]
            aged = [h.key for h in held if now - h.arrived >= self.hold]
            cut = math.inf if everything else max(aged, default=-math.inf)
            while held and (held[0].key <= cut or len(held) > self.window or self._continues(slot, held[0].key)):
                entry = held.pop(0)
                self._stepped(slot, entry.key)
                out.append((slot, entry.item))
            if not held:
                del self.held[slot]
        return out

    def next_due(self, now: float) -> float:
        """Seconds until the next reading's hold ends (inf when none is held)."""
        arrived = min((h.arrived for held in self.held.values() for h in held), default=math.inf)
        return max(0.0, arrived + self.hold - now)

    def _continues(self, slot: int, key: float) -> bool:
        clock, gap = self.streams.last_key[slot], self._gap.get(slot)
        if clock is None or gap is None or gap <= 0:
            return False
        return abs(key - clock - gap) <= 1e-12 * max(abs(key), abs(clock), 1.0)

    def _stepped(self, slot: int, key: float) -> None:
        clock = self.streams.last_key[slot]
        if clock is not None:
            self._gap[slot] = key - clock
        self.streams.last_key[slot] = key
        seen = self._seen.setdefault(slot, deque(maxlen=SEEN))
        keys = self._seen_keys.setdefault(slot, set())
        if len(seen) == SEEN:
            keys.discard(seen[0])
        seen.append(key)
        keys.add(key)

    def mark_stepped(self, slot: int, key: float) -> None:
        """A reading stepped without holding (no reorder window in play): the clock and the seen keys follow."""
        self._stepped(slot, key)

    # -- saving ------------------------------------------------------------------------------------------------

    def record(self) -> list:
        """Each slot's recent stepped keys, for the state file (``restore``)."""
        return [[slot, list(seen)] for slot, seen in self._seen.items()]

    def restore(self, record) -> None:
        """What ``record`` gave, type-checked (a state file is untrusted); anything malformed is ignored (the
        seen keys only sharpen the duplicate test: without them a repeat below the clock counts as late)."""
        if not isinstance(record, list):
            return
        slots = len(self.streams.last_key)
        for entry in record:
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], int)
                    and not isinstance(entry[0], bool) and 0 <= entry[0] < slots and isinstance(entry[1], list)):
                continue
            keys = [float(k) for k in entry[1][-SEEN:] if isinstance(k, (int, float)) and not isinstance(k, bool)
                    and math.isfinite(k)]
            self._seen[entry[0]] = deque(keys, maxlen=SEEN)
            self._seen_keys[entry[0]] = set(keys)
