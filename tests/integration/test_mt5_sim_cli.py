"""`aitrading mt5-sim` ends on SIGTERM the way it ends on its duration: capture stops, what
was captured is acked, and the final count is exactly what storage holds from it."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import pytest

from aitrading.client.metatrader_connector.simulator import DEFAULT_SYMBOLS
from tests.support.bridge_delivery import wait_delivered
from tests.support.mt5_sim_process import start_mt5_sim
from tests.support.stored_ticks import stored_ticks

pytestmark = pytest.mark.integration


async def _stored(dbs: str, source: str) -> tuple[int, int]:
    ticks = [
        t
        for symbol in (m.symbol for m in DEFAULT_SYMBOLS)
        for t in await stored_ticks(dbs, symbol)
        if t["source"].endswith(f":{source}")
    ]
    return len(ticks), len({(t["symbol"], t["time_msc"], t["sequence"]) for t in ticks})


@pytest.mark.timeout(300)
async def test_sigterm_drains_and_reports_exactly_what_was_stored(stack: dict[str, Any]) -> None:
    proc = await start_mt5_sim(
        stack["settings"],
        stack["ingest"],
        *("--token", stack["token"], "--no-trade", "--source", "sigterm"),
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # a progress report with ticks acked
        line = (await asyncio.wait_for(proc.stdout.readline(), 120)).decode()
        assert line, "".join(lines)
        lines.append(line)
        if line.startswith("mt5-sim: ") and not line.startswith("mt5-sim: 0 "):
            break
    proc.send_signal(signal.SIGTERM)
    rest, _ = await asyncio.wait_for(proc.communicate(), 120)
    lines += rest.decode().splitlines()
    assert proc.returncode == 0, "".join(lines)
    last = lines[-1].strip()
    assert last.startswith("mt5-sim: "), lines[-5:]
    assert last.endswith(" ticks acked"), lines[-5:]
    acked = int(last.split()[1])
    assert acked > 0
    await wait_delivered(stack["bridge"])  # acked = journaled; storage follows
    stored, distinct = await _stored(stack["dbs"], "sigterm")
    assert distinct == stored  # nothing twice
    assert stored == acked  # nothing acked that is not stored, nothing stored unreported
