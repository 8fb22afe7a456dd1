"""A circuit breaker as an explicit state machine: one enum, one transition function.

CLOSED lets calls through and counts consecutive failures; `threshold` of them open it.
OPEN refuses calls until `cooldown_s` has passed, then lets exactly one trial through
(HALF_OPEN); the trial's success closes it, its failure opens it again for another cooldown,
and a trial that never reports back is replaced by a new one after a cooldown.
The clock is injectable so the timing is testable without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerEvent(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    COOLDOWN_OVER = "cooldown_over"


def next_state(
    state: BreakerState, event: BreakerEvent, failures: int, threshold: int
) -> BreakerState:
    """The one transition function (`failures` counts this failure already)."""
    if event is BreakerEvent.SUCCESS:
        return BreakerState.CLOSED
    if event is BreakerEvent.COOLDOWN_OVER:
        return BreakerState.HALF_OPEN if state is BreakerState.OPEN else state
    if state is BreakerState.HALF_OPEN or failures >= threshold:
        return BreakerState.OPEN
    return state


@dataclass
class CircuitBreaker:
    threshold: int = 5
    cooldown_s: float = 10.0
    clock: Callable[[], float] = time.monotonic
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    trial_out: bool = field(default=False)  # the half-open trial is under way
    trial_started: float = 0.0
    transitions: int = 0

    def allow(self) -> bool:
        """Whether a call may go ahead now."""
        if self.state is BreakerState.OPEN and self.clock() - self.opened_at >= self.cooldown_s:
            self._apply(BreakerEvent.COOLDOWN_OVER)
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.HALF_OPEN and (
            not self.trial_out or self.clock() - self.trial_started >= self.cooldown_s
        ):  # a trial that never reported back (its caller was cancelled) does not block
            self.trial_out, self.trial_started = True, self.clock()
            return True
        return False

    def success(self) -> None:
        self.failures = 0
        self._apply(BreakerEvent.SUCCESS)

    def failure(self) -> None:
        self.failures += 1
        self._apply(BreakerEvent.FAILURE)

    def _apply(self, event: BreakerEvent) -> None:
        new = next_state(self.state, event, self.failures, self.threshold)
        if new is not self.state:
            self.transitions += 1
            if new is BreakerState.OPEN:
                self.opened_at = self.clock()
            self.trial_out = False
        self.state = new
