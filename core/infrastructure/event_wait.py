"""Wait for an asyncio.Event with a timeout without losing a cancellation.

Python 3.11's `asyncio.wait_for` drops a cancellation that arrives while the awaited
future completes (the event was set in the same loop turn): it returns the result instead,
and a loop that waits again never ends. A data-bridge connection's order task hit this when
a wake-up and the connection's close came together; the handler waited for it forever
and a shutdown hung (30 s in the tests, the whole grace period in a pod). `asyncio.timeout`
does not have the race, so every wait inside a long-running loop goes through here; and a
cancellation swallowed elsewhere in the loop is raised at its next wait.
"""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout_s: float) -> bool:
    """True once `event` is set, False after `timeout_s`; a cancellation always propagates.

    Also one that a library swallowed earlier in the caller's loop (redis-py and others can
    eat a CancelledError mid-call): the task still counts it (`Task.cancelling()`), so the
    next wait raises it instead of waiting again."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return False
    return True
