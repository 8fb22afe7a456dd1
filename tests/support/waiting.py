"""Waiting on a condition in a test: poll it, and after a generous bound fail naming what
never happened. The bound only turns a broken behaviour into a failure instead of a hang;
it says nothing about speed (speed lives in bench/)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(condition: Callable[[], object], what: str, within_s: float = 30.0) -> None:
    async def poll() -> None:
        while not condition():  # noqa: ASYNC110 - polls state the code under test owns
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(poll(), within_s)
    except TimeoutError:
        raise AssertionError(f"{what}: not within {within_s:g} s") from None
