"""When the next capture round is due: rounds on a fixed rate, not a fixed pause.

MT5 has no push, so a tick waits in the terminal until the next round reads it. With a pause of
`interval` between rounds, every round's own work (reading the terminal, the outbox commit's
fsync, the hop back to the event loop between bursts) was added to the period, and a tick's
worst wait was the interval plus all of that. Rounds due at `start + k * interval` keep the worst
wait at the interval whatever a round costs. A round that starts late — a slow fsync, a busy
machine — moves the schedule on rather than being followed by a burst of back-to-back rounds to
catch up: a missed round reads nothing the next one does not.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class CaptureClock:
    """The due time of the next capture round, for one connector (one outbox thread and the
    event loop between its bursts ask it, never at the same time). It owns the time source
    and the sleep the capture burst uses, so a test can drive a connector's rounds on a
    fake clock and see when each one started."""

    def __init__(
        self,
        interval_s: float,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"capture interval must be positive, not {interval_s}")
        self.interval_s = interval_s
        self._now = now
        self._sleep = sleep
        self._due: float | None = None  # None: the first round is due at once

    def now(self) -> float:
        """The clock's time, in seconds (monotonic)."""
        return self._now()

    def sleep(self, seconds: float) -> None:
        """Block the calling thread (the outbox thread, between rounds) for `seconds`."""
        self._sleep(seconds)

    def delay(self) -> float:
        """Seconds until the next round is due; 0 when it is due now or overdue."""
        if self._due is None:
            return 0.0
        return max(0.0, self._due - self._now())

    def round_started(self) -> None:
        """A round starts now: the next one is due an interval after this one's slot, or an
        interval from now when this one started more than an interval late."""
        now = self._now()
        due = now if self._due is None else self._due
        following = due + self.interval_s
        self._due = following if following > now else now + self.interval_s
