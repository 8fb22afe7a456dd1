"""The one task a component runs between its start and its stop.

Every background worker (the checkpointer, the entitlement watcher, the fan-out, the live
feed, the order sweeper, ...) had the same five lines to cancel its task and wait for it, and
they swallowed a cancellation of the stopping task itself along with the worker's. `stop()`
here re-raises that one: a shutdown that is itself cancelled (a pod's grace period ending)
ends instead of carrying on as if nothing happened.

`Worker` makes such a worker a hub component: registered (or attached) once, started and
stopped with the hub, and its health is the task's — a worker whose task died is reported
instead of silently missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from aitrading.core.infrastructure.central_hub import Health


class BackgroundTask:
    def __init__(self, name: str) -> None:
        self.name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        if self._task is not None:
            work.close()
            raise RuntimeError(f"{self.name} is already running")
        self._task = asyncio.create_task(work, name=self.name)

    async def stop(self) -> bool:
        """Cancel the task and wait for it to end; whether it had been started."""
        task, self._task = self._task, None
        if task is None:
            return False
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the stop itself was cancelled: say so
        return True

    def health(self) -> Health:
        """Healthy while the task runs; unhealthy, naming why, once it ended by itself."""
        task = self._task
        if task is None:
            return Health.unhealthy(f"{self.name} is not running")
        if not task.done():
            return Health.healthy(f"{self.name} running")
        if task.cancelled():
            return Health.unhealthy(f"{self.name} was cancelled")
        error = task.exception()
        ended = f"{type(error).__name__}: {error}" if error is not None else "it returned"
        return Health.unhealthy(f"{self.name} stopped ({ended})")


class Worker:
    """A hub component whose work is one background task; subclasses write `start`/`stop`
    around `self._loop` and may refine `health`."""

    depends_on: tuple[str, ...] = ()
    critical = False

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop = BackgroundTask(name)

    async def health(self) -> Health:
        return self._loop.health()
