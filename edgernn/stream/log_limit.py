"""Log lines of one kind in full at first, then one in a thousand: a sensor that sends junk for a month cannot
fill the journal, and the counts stay exact (the summaries say them)."""

from __future__ import annotations

LOG_FIRST = 100  # lines per kind before only every 1000th is logged


class LimitedLog:
    """``log(kind, text)``: print ``text`` to ``err`` for the first ``LOG_FIRST`` of its kind, then for every
    1000th (saying so once, at the switch)."""

    def __init__(self, err, first: int = LOG_FIRST):
        self._err, self._first = err, first
        self.counts: dict[str, int] = {}

    def __call__(self, kind: str, text: str) -> None:
        count = self.counts[kind] = self.counts.get(kind, 0) + 1
        if count <= self._first or count % 1000 == 0:
            more = f" ({count} so far; from now on every 1000th is logged)" if count == self._first else ""
            print(text + more, file=self._err, flush=True)
