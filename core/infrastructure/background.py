"""The one task a component runs between its start and its stop.

Every background worker (the checkpointer, the entitlement watcher, the fan-out, the live
feed, the order sweeper, ...) had the same five lines to cancel its task and wait for it, and
they swallowed a cancellation of the stopping task itself along with the worker's. `stop()`
here re-raises that one: a shutdown that is itself cancelled (a pod's grace period ending)
ends instead of carrying on as if nothing happened.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


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
