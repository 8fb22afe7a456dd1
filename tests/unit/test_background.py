"""BackgroundTask: what every worker's start and stop share."""

from __future__ import annotations

import asyncio

import pytest

from aitrading.core.infrastructure.background import BackgroundTask


async def test_stop_cancels_the_task_and_waits_for_its_end() -> None:
    ended = asyncio.Event()

    async def work() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            ended.set()

    loop = BackgroundTask("worker")
    assert await loop.stop() is False  # never started
    loop.start(work())
    await asyncio.sleep(0)
    assert loop.running
    with pytest.raises(RuntimeError, match="worker is already running"):
        loop.start(work())
    assert await loop.stop() is True
    assert ended.is_set()
    assert not loop.running


async def test_a_cancelled_stop_is_not_swallowed() -> None:
    """The stopping task is cancelled while it waits for a worker that takes its time to
    end: the old pattern (suppress CancelledError around the await) swallowed that."""
    release = asyncio.Event()

    async def slow_to_end() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await release.wait()  # cleanup that takes a while

    loop = BackgroundTask("slow")
    loop.start(slow_to_end())
    await asyncio.sleep(0)
    stopping = asyncio.create_task(loop.stop())
    await asyncio.sleep(0.01)
    stopping.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await stopping


async def test_health_names_a_task_that_ended_by_itself() -> None:
    """A worker whose task died is reported (it used to vanish silently)."""
    from aitrading.core.infrastructure.central_hub import HealthStatus

    async def crash() -> None:
        raise ConnectionError("store went away")

    loop = BackgroundTask("feed")
    assert loop.health().status is HealthStatus.UNHEALTHY  # not started
    loop.start(asyncio.Event().wait())
    await asyncio.sleep(0)
    assert loop.health().status is HealthStatus.HEALTHY
    await loop.stop()
    loop.start(crash())
    while loop.running:  # noqa: ASYNC110 - the task ends at its first step
        await asyncio.sleep(0)
    health = loop.health()
    assert health.status is HealthStatus.UNHEALTHY
    assert "ConnectionError: store went away" in health.reason
