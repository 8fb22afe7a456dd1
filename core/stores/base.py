"""What every store has in common: a name, a real health round trip, and a close."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from aitrading.core.infrastructure.central_hub import Health
from aitrading.core.security.redaction import redact


class StoreNotConfiguredError(RuntimeError):
    """A store without an embedded default was asked for, but its URL is not set."""

    def __init__(self, store: str, setting: str) -> None:
        self.store = store
        self.setting = setting
        super().__init__(f"{store} is not configured: set {setting}")


class Store(Protocol):
    name: str

    async def health(self) -> Health: ...

    async def close(self) -> None: ...


async def timed_health(
    store: str, probe: Callable[[], Awaitable[object]], timeout_s: float
) -> Health:
    """Run one real round trip with a timeout and turn its outcome into `Health`.

    Failure reasons are redacted: a driver's message may contain the DSN it used.
    """
    started = time.perf_counter()
    try:
        await asyncio.wait_for(probe(), timeout_s)
    except TimeoutError:
        return Health.unhealthy(f"{store} did not answer within {timeout_s:g}s")
    except Exception as exc:
        detail = redact(str(exc)) or type(exc).__name__
        return Health.unhealthy(f"{store}: {type(exc).__name__}: {detail}")
    elapsed_ms = (time.perf_counter() - started) * 1000
    return Health.healthy(f"round trip {elapsed_ms:.1f} ms")
