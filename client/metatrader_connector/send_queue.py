"""What the dispatcher sends next: fresh frames handed over in memory, the rest from the outbox.

A frame is offered here with its body once it is written to the outbox (a page of ticks while
its commit's fsync still runs: the outbox says why that is safe), so the dispatcher does not
read SQLite on the hot path. Everything that is not fresh is found again
in the outbox by a recovery pass: frames left from before a restart, frames a dropped link gave
back, frames released after an `unavailable` backoff, and fresh frames that were dropped here
(nobody connected, or more than `limit` waiting — bodies are not kept in memory while the
bridge is away). A recovery pass also runs every `recovery_every_s`, so a frame can never be
stranded by a missed offer. Producers may be threads: a deque and a flag are all they touch.
"""

from __future__ import annotations

import collections
import time


class SendQueue:
    def __init__(self, limit: int = 1000, recovery_every_s: float = 1.0) -> None:
        self._fresh: collections.deque[tuple[int, bytes, int]] = collections.deque()
        self._limit = limit
        self._every = recovery_every_s
        self._recover = True  # the outbox may hold frames from before this process
        self._last_recovery = 0.0

    def offer(self, frame_id: int, body: bytes, ticks: int) -> None:
        """A frame just stored in the outbox (any thread), and how many ticks it carries."""
        if len(self._fresh) >= self._limit:
            self._recover = True  # it is in the outbox: the next recovery pass finds it
            return
        self._fresh.append((frame_id, body, ticks))

    def take_fresh(self) -> list[tuple[int, bytes, int]]:
        """Every fresh frame offered so far, oldest first."""
        taken = []
        while self._fresh:
            taken.append(self._fresh.popleft())
        return taken

    def drop_fresh(self) -> None:
        """No link to send on: forget the bodies, recover from the outbox later."""
        self._fresh.clear()
        self._recover = True

    def need_recovery(self) -> None:
        """Some frame in the outbox is neither fresh nor in flight any more."""
        self._recover = True

    def recovery_due(self) -> bool:
        return self._recover or time.monotonic() - self._last_recovery >= self._every

    def recovered(self, complete: bool) -> None:
        """A recovery pass ended; `complete` if it saw every frame in the outbox."""
        self._recover = not complete
        self._last_recovery = time.monotonic()
