"""The circuit breaker's table, and its timing on a fake clock (no sleeping)."""

from __future__ import annotations

import pytest

from aitrading.core.infrastructure.circuit_breaker import (
    BreakerEvent,
    BreakerState,
    CircuitBreaker,
    next_state,
)


@pytest.mark.parametrize(
    ("state", "event", "failures", "expected"),
    [
        (BreakerState.CLOSED, BreakerEvent.FAILURE, 2, BreakerState.CLOSED),
        (BreakerState.CLOSED, BreakerEvent.FAILURE, 3, BreakerState.OPEN),
        (BreakerState.CLOSED, BreakerEvent.SUCCESS, 0, BreakerState.CLOSED),
        (BreakerState.CLOSED, BreakerEvent.COOLDOWN_OVER, 0, BreakerState.CLOSED),
        (BreakerState.OPEN, BreakerEvent.COOLDOWN_OVER, 3, BreakerState.HALF_OPEN),
        (BreakerState.OPEN, BreakerEvent.FAILURE, 4, BreakerState.OPEN),
        (BreakerState.HALF_OPEN, BreakerEvent.SUCCESS, 0, BreakerState.CLOSED),
        (BreakerState.HALF_OPEN, BreakerEvent.FAILURE, 1, BreakerState.OPEN),
        (BreakerState.HALF_OPEN, BreakerEvent.COOLDOWN_OVER, 0, BreakerState.HALF_OPEN),
    ],
)
def test_the_transition_table(
    state: BreakerState, event: BreakerEvent, failures: int, expected: BreakerState
) -> None:
    assert next_state(state, event, failures, threshold=3) is expected


def test_opens_after_threshold_and_half_opens_on_time_with_one_trial() -> None:
    clock_value = [0.0]
    breaker = CircuitBreaker(threshold=3, cooldown_s=10.0, clock=lambda: clock_value[0])
    for _ in range(3):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state is BreakerState.OPEN
    clock_value[0] = 9.9
    assert not breaker.allow()  # still cooling down
    clock_value[0] = 10.0
    assert breaker.allow()  # the one trial
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow()  # only one at a time
    breaker.failure()  # the trial failed: open for another cooldown
    assert breaker.state is BreakerState.OPEN
    clock_value[0] = 15.0
    assert not breaker.allow()
    clock_value[0] = 20.0
    assert breaker.allow()  # this trial's caller is cancelled: it never reports
    clock_value[0] = 29.9
    assert not breaker.allow()
    clock_value[0] = 30.0
    assert breaker.allow()  # a lost trial does not block for ever
    breaker.success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    assert breaker.allow()
