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
- it, or a newer reading held, has waited ``hold`` seconds (wall clock) while the bridge was connected: a
  quiet or irregular sensor's readings are still stepped soon. The wait starts again at each reconnection
  (``rearm``): while the broker is away nothing older can arrive, and after a broker fault the publishers
  reconnect (and send what they queued) up to their own backoff later;
- the bridge stops (``release(everything=True)``).

What is not held: a key already stepped or held is a *duplicate* (a QoS 1 repeat: a broker restarted from its store
may deliver again readings acknowledged long before). The keys stepped are remembered as runs of evenly spaced keys
(first, step, count), ``RUNS`` per topic, saved with the state: a regularly sampled topic's whole history is one
run, an irregular one's last hundred or so keys fit. A key below the last stepped one is *late* (the state has
moved on: not stepped); a key more than ``max_ahead`` beyond both the topic's clock and the wall clock is *ahead*
(refused; it never moves the clock, so one forged ``ts`` cannot silence a topic). The clock is
``TopicStreams.last_key``: the key of the last reading stepped into the slot's state.
"""

from __future__ import annotations

import bisect
import enum
import math
import time
from dataclasses import dataclass, field

RUNS = 64  # runs of evenly spaced stepped keys remembered per topic (a repeat among them is a duplicate)
MAX_WINDOW = 4096  # the largest --reorder-window: a restore takes this many held readings a topic, whatever the
# window now (a restart with a smaller one lost the acknowledged readings beyond it)


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

    def __init__(self, streams, window: int = 16, hold: float = 2.0, max_ahead: float = 86400.0):
        self.streams, self.window, self.hold, self.max_ahead = streams, window, hold, max_ahead
        self.held: dict[int, list[Held]] = {}  # slot -> held readings, sorted by key (only slots holding some)
        self._runs: dict[int, list[list[float]]] = {}  # slot -> [first, step, count] runs, oldest first
        self._gap: dict[int, float] = {}
        self._earliest = math.inf  # no held reading arrived before this (may be earlier than the truth)

    def offer(self, slot: int, key: float, item, now: float | None = None) -> Verdict:
        """Hold a reading (``HELD``), or say why not; ``item`` comes back from ``release``."""
        clock = self.streams.last_key[slot]
        held = self.held.get(slot, ())
        if key == clock or any(h.key == key for h in held) or self._stepped_before(slot, key):
            return Verdict.DUPLICATE
        if key > max(-math.inf if clock is None else clock, time.time()) + self.max_ahead:
            return Verdict.AHEAD
        if clock is not None and key < clock:
            return Verdict.LATE
        arrived = time.monotonic() if now is None else now
        bisect.insort(self.held.setdefault(slot, []), Held(key, arrived, item))
        self._earliest = min(self._earliest, arrived)
        return Verdict.HELD

    def release(self, now: float | None = None, everything: bool = False,
                waiting: bool = True) -> list[tuple[int, object]]:
        """The readings whose hold time is up (``everything``: all), ``(slot, item)``, each topic's in key order;
        each becomes its slot's clock. ``waiting``: whether the hold time runs (not while disconnected). O(1)
        until some hold ends: a bridge calls this after every batch, over up to 65536 topics."""
        now = time.monotonic() if now is None else now
        if not everything and (not waiting or now - self._earliest < self.hold):
            return []  # nothing has waited long enough (the window and the step release in ``release_slot``)
        out = []
        for slot in list(self.held):
            held = self.held[slot]
            aged = [h.key for h in held if waiting and now - h.arrived >= self.hold]
            cut = math.inf if everything else max(aged, default=-math.inf)
            while held and (held[0].key <= cut or len(held) > self.window or self._continues(slot, held[0].key)):
                entry = held.pop(0)
                self._stepped(slot, entry.key)
                out.append((slot, entry.item))
            if not held:
                del self.held[slot]
        self._earliest = min((h.arrived for held in self.held.values() for h in held), default=math.inf)
        return out

    def release_slot(self, slot: int, everything: bool = False) -> list[tuple[int, object]]:
        """What the window or the regular step releases on ``slot`` right after an ``offer``: decided reading
        by reading, so a batch decides as the same readings one by one would (a redelivery after a kill -9
        comes in other batches). ``everything``: all of the slot's (before a reading without a time)."""
        held, out = self.held.get(slot), []
        while held and (everything or len(held) > self.window or self._continues(slot, held[0].key)):
            entry = held.pop(0)
            self._stepped(slot, entry.key)
            out.append((slot, entry.item))
        if held == []:
            del self.held[slot]
        return out

    def rearm(self, now: float) -> None:
        """Every held reading waits ``hold`` seconds from ``now`` (a reconnection)."""
        for held in self.held.values():
            for entry in held:
                entry.arrived = now
        self._earliest = now if self.held else math.inf

    def next_due(self, now: float) -> float:
        """Seconds until the next reading's hold ends (inf when none is held)."""
        return max(0.0, self._earliest + self.hold - now) if self.held else math.inf

    def _continues(self, slot: int, key: float) -> bool:
        clock, gap = self.streams.last_key[slot], self._gap.get(slot)
        if clock is None or gap is None or gap <= 0:
            return False
        return _close(key, clock + gap)

    def _stepped(self, slot: int, key: float) -> None:
        clock = self.streams.last_key[slot]
        if clock is not None and math.isfinite(key - clock):  # -1e308 then 1e308 would overflow
            self._gap[slot] = key - clock
        self.streams.last_key[slot] = key
        runs = self._runs.setdefault(slot, [])
        if runs and runs[-1][2] == 1 and key > runs[-1][0] and math.isfinite(key - runs[-1][0]):
            runs[-1][1:] = [key - runs[-1][0], 2]
        elif runs and _close(runs[-1][0] + runs[-1][1] * runs[-1][2], key):
            runs[-1][2] += 1
        else:
            runs.append([key, 0.0, 1])
            if len(runs) > RUNS:
                runs.pop(0)

    def _stepped_before(self, slot: int, key: float) -> bool:
        for first, step, count in self._runs.get(slot, ()):
            if count == 1 or step <= 0:
                if key == first:
                    return True
                continue
            i = round((key - first) / step)
            if 0 <= i < count and _close(first + i * step, key):
                return True
        return False

    def mark_stepped(self, slot: int, key: float) -> None:
        """A reading stepped without holding (no reorder window in play): the clock and the seen keys follow."""
        self._stepped(slot, key)

    # -- saving ------------------------------------------------------------------------------------------------

    def record(self) -> list:
        """Each slot's runs of stepped keys, for the state file (``restore``)."""
        return [[slot, runs] for slot, runs in self._runs.items()]

    def restore(self, record) -> None:
        """What ``record`` gave, type-checked (a state file is untrusted); anything malformed is ignored (the
        runs only sharpen the duplicate test: without them a repeat below the clock counts as late)."""
        if not isinstance(record, list):
            return
        slots = len(self.streams.last_key)
        for entry in record:
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], int)
                    and not isinstance(entry[0], bool) and 0 <= entry[0] < slots and isinstance(entry[1], list)):
                continue
            runs = [[float(first), float(step), int(count)] for first, step, count in
                    (run for run in entry[1][-RUNS:] if isinstance(run, list) and len(run) == 3)
                    if all(_number(v) for v in (first, step, count)) and count >= 1]
            clock = self.streams.last_key[entry[0]]
            runs = [run for run in (_upto(run, clock) for run in runs) if run is not None]
            self._runs[entry[0]] = runs
            if runs and runs[-1][2] >= 2 and clock is not None and _close(runs[-1][0] + runs[-1][1] * (
                    runs[-1][2] - 1), clock):
                self._gap[entry[0]] = runs[-1][1]  # a regular topic's next reading goes through at once


def _upto(run: list, clock: float | None) -> list | None:
    """``run`` cut to the keys up to ``clock`` (None: none): a key beyond the clock was never stepped, and a
    forged run reaching past it would silence every later reading of its topic as a duplicate."""
    first, step, count = run
    if clock is None or (first > clock and not _close(first, clock)):
        return None
    span = clock / step - first / step if step > 0 else 0.0  # steps from first to the clock (no overflow)
    if count > 1 and step > 0 and span < count - 1:
        count = int(span + 1e-6) + 1  # + 1e-6: the key at the clock, to float rounding
    return [first, step, count]


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _close(a: float, b: float) -> bool:
    """Equal keys, to float rounding (``first + i * step`` of a run of epoch times)."""
    return abs(a - b) <= 1e-12 * max(abs(a), abs(b), 1.0)
