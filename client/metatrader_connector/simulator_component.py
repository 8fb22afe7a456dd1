"""The MT5 simulator as a hub component: streams ticks to data-bridge while the demo runs."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from aitrading.client.metatrader_connector.bridge_client import BridgeClient
from aitrading.client.metatrader_connector.sim_terminal import SimulatedTerminal, terminal_for
from aitrading.client.metatrader_connector.simulator import Simulator
from aitrading.core.infrastructure.central_hub import Health
from aitrading.core.infrastructure.config_manager import Settings


class SimulatorComponent:
    name = "mt5-sim"
    critical = False

    def __init__(
        self,
        url: str,
        token: Callable[[], Awaitable[str]],
        depends_on: tuple[str, ...] = ("data-bridge",),
        settings: Settings | None = None,
    ) -> None:
        self._settings = settings  # given: also execute order instructions
        self._terminal: SimulatedTerminal | None = None
        self._simulator = Simulator()
        self.depends_on = depends_on
        self._url = url
        self._token = token
        self._client: BridgeClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._started = 0.0
        self._error = ""

    async def start(self) -> None:
        self._client = BridgeClient(self._url, await self._token(), "demo", on_order=self._on_order)
        await self._client.connect()
        if self._settings is not None:
            self._terminal = terminal_for(self._settings, self._client, self._simulator)
            await self._terminal.send_state()
        self._started = time.monotonic()
        self._task = asyncio.create_task(self._run(), name="mt5-sim")

    async def _on_order(self, instruction: str) -> None:
        if self._terminal is not None:
            await self._terminal.on_order(instruction)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.wait_acked(5)
            await self._client.close()

    async def health(self) -> Health:
        if self._client is None:
            return Health.unhealthy("not connected")
        if self._error:
            return Health.unhealthy(self._error)
        stats = self._client.stats
        rate = stats.ticks_acked / max(time.monotonic() - self._started, 1e-9)
        detail = (
            f"{stats.ticks_acked} ticks acked ({rate:.0f}/s), {len(self._client.unacked)} in flight"
        )
        if stats.errors:
            return Health.degraded(f"{detail}; errors {stats.errors}: {stats.last_error}")
        return Health.healthy(detail)

    async def _run(self) -> None:
        simulator = self._simulator
        assert self._client is not None
        last = time.monotonic()
        try:
            while True:
                await asyncio.sleep(0.05)
                now = time.monotonic()
                ticks = simulator.ticks_for(now - last)
                last = now
                if ticks:
                    await self._client.send_ticks(ticks)
                    if self._terminal is not None:
                        await self._terminal.check_resting()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # reported through health; the demo keeps running
            self._error = f"stream stopped: {type(exc).__name__}: {exc}"
