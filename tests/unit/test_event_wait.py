"""`wait_event` never loses a cancellation (Python 3.11's `asyncio.wait_for` does, when the
event is set in the same loop turn: a data-bridge connection's order task then never ended)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from aitrading.core.infrastructure.event_wait import wait_event


async def test_it_says_whether_the_event_came_or_the_time_ran_out() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    event.set()
    assert await wait_event(event, 10) is True


async def test_a_cancellation_that_meets_the_event_still_ends_a_waiting_loop() -> None:
    event = asyncio.Event()
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        while True:  # the shape of every background loop that waits for a wake-up
            event.clear()
            await wait_event(event, 10)
            rounds += 1

    task = asyncio.create_task(loop())
    for _ in range(3):
        await asyncio.sleep(0)
    event.set()
    await asyncio.sleep(0)  # the wake-up is under way when the cancellation comes
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(task), 5)
    assert task.cancelled()


async def test_a_cancellation_swallowed_earlier_in_the_loop_ends_it_at_the_next_wait() -> None:
    """What a data-bridge order task met: a store call ate the CancelledError, the loop went
    on and waited again, and the connection's handler waited for it forever."""
    event = asyncio.Event()
    started = asyncio.Event()

    async def swallowing_call() -> None:
        started.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)

    async def loop() -> None:
        while True:
            await swallowing_call()
            await wait_event(event, 10)

    task = asyncio.create_task(loop())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(task), 5)
