"""The simulated connector as a hub component: ticks in and orders executed while the demo
runs, through the same `Connector` a trading PC runs."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from aitrading.client.metatrader_connector.connector import Connector
from aitrading.client.metatrader_connector.simulated_connector import (
    run_market,
    simulated_connector,
)
from aitrading.core.infrastructure.central_hub import Health
from aitrading.core.infrastructure.config_manager import Settings


class SimulatorComponent:
    name = "mt5-sim"
    critical = False

    def __init__(
        self,
        url: str,
        token: Callable[[], Awaitable[str]],
        settings: Settings,
        depends_on: tuple[str, ...] = ("data-bridge",),
        source: str = "demo",
    ) -> None:
        self.depends_on = depends_on
        self._url = url
        self._token = token
        self._settings = settings
        self._source = source
        self._connector: Connector | None = None
        self._market: asyncio.Task[None] | None = None
        self._started = 0.0

    async def start(self) -> None:
        self._connector, terminal = simulated_connector(
            self._settings, self._url, self._token, self._source
        )
        await self._connector.start()
        self._started = time.monotonic()
        self._market = asyncio.create_task(run_market(terminal), name="mt5-sim-market")

    async def stop(self) -> None:
        if self._market is not None:
            self._market.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._market
        if self._connector is not None:
            await self._connector.stop()

    async def health(self) -> Health:
        if self._connector is None:
            return Health.unhealthy("not started")
        status = self._connector.status()
        stats = self._connector.stats
        up = sum(1 for link in status["links"] if link["state"] == "connected")
        rate = stats.ticks_acked / max(time.monotonic() - self._started, 1e-9)
        detail = (
            f"{stats.ticks_acked} ticks acked ({rate:.0f}/s), {status['outbox_depth']} in the"
            f" outbox, {up}/{len(status['links'])} links, {stats.instructions_executed} orders"
            " executed"
        )
        if up == 0:
            errors = {link["last_error"] for link in status["links"] if link["last_error"]}
            return Health.unhealthy(f"no link to data-bridge: {'; '.join(errors) or detail}")
        if stats.refused:
            return Health.degraded(f"{detail}; refused {stats.refused}")
        return Health.healthy(detail)
