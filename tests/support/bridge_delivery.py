"""Wait until a data-bridge has delivered its journal: every acked tick reached database-service.

An ack means the tick is in the bridge's fsynced journal; storage in ClickHouse follows. Tests
that read ticks back right after their acks wait on this condition first (generous timeout),
read from the bridge's own counters.
"""

from __future__ import annotations

import asyncio
import re
import time

import httpx

_COUNTER = re.compile(r"^aitrading_data_bridge_ticks_(journaled|delivered)_total (\S+)$", re.M)


async def journal_counts(bridge: str) -> dict[str, float]:
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"{bridge}/metrics")).text
    return {kind: float(value) for kind, value in _COUNTER.findall(text)}


async def wait_delivered(bridge: str, timeout_s: float = 60.0) -> None:
    """Return once the bridge's delivered count has caught up with its journaled count."""
    deadline = time.monotonic() + timeout_s
    counts: dict[str, float] = {}
    while time.monotonic() < deadline:
        counts = await journal_counts(bridge)
        if counts.get("delivered", -1.0) >= counts.get("journaled", 0.0):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"data-bridge never delivered its journal: {counts}")
