"""ClickHouse through clickhouse-connect: HTTP(S) in production, chdb in-process embedded.

Ticks and the warm log tier. clickhouse-connect's client is synchronous; calls run in a worker
thread so the event loop never blocks, serialised by a lock because one chdb session (and
one HTTP client's session state) is not safe to share between threads at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aitrading.core.infrastructure.central_hub import Health
from aitrading.core.infrastructure.config_manager import Settings, env_name
from aitrading.core.security.db_security_manager import TlsMaterial, client_context
from aitrading.core.security.tls import check_transport
from aitrading.core.stores.base import timed_health
from aitrading.core.stores.embedded import EmbeddedClickHouse

T = TypeVar("T")


def clickhouse_dsn(settings: Settings) -> str:
    if settings.clickhouse.dsn is not None:
        return settings.clickhouse.dsn.get_secret_value()
    return EmbeddedClickHouse(settings).dsn()


class ClickHouseStore:
    name = "clickhouse"

    def __init__(self, client: Any, timeout_s: float) -> None:
        self.client = client
        self._timeout_s = timeout_s
        self._lock = threading.Lock()

    @classmethod
    async def create(cls, settings: Settings) -> ClickHouseStore:
        conf = settings.clickhouse
        dsn = clickhouse_dsn(settings)
        parts = urlsplit(dsn)
        kwargs: dict[str, Any] = {"dsn": dsn}
        if parts.scheme != "chdb":
            if parts.scheme not in ("http", "https", "clickhouse", "clickhouses"):
                raise ValueError(
                    f"{env_name('clickhouse.dsn')}: unsupported scheme '{parts.scheme}'; "
                    "use https://, http:// (loopback only) or chdb:///path"
                )
            encrypted = parts.scheme in ("https", "clickhouses")
            check_transport(
                host=parts.hostname,
                encrypted=encrypted,
                setting=env_name("clickhouse.dsn"),
                store="clickhouse",
            )
            kwargs.update(connect_timeout=conf.connect_timeout_s, database=conf.database)
            if encrypted:
                import urllib3

                kwargs["pool_mgr"] = urllib3.PoolManager(
                    ssl_context=client_context(TlsMaterial.from_settings(settings.security))
                )
        # imported here: the services that never open ClickHouse (the gateway, data-bridge, the
        # trading-engine) do not carry clickhouse-connect in memory (5 MB of RSS each)
        import clickhouse_connect

        client = await asyncio.to_thread(clickhouse_connect.get_client, **kwargs)
        return cls(client, conf.connect_timeout_s)

    async def run(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one client call off the event loop, one at a time."""

        def locked() -> T:
            with self._lock:
                return call(*args, **kwargs)

        return await asyncio.to_thread(locked)

    def run_sync(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """The same serialised access from a worker thread that is not the event loop."""
        with self._lock:
            return call(*args, **kwargs)

    async def query_rows(
        self,
        sql: str,
        parameters: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> list[tuple[Any, ...]]:
        result = await self.run(self.client.query, sql, parameters=parameters, settings=settings)
        return [tuple(row) for row in result.result_rows]

    async def query_columns(
        self,
        sql: str,
        parameters: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> list[list[Any]]:
        """The result column by column (no tuple per row), for large results."""
        result = await self.run(self.client.query, sql, parameters=parameters, settings=settings)
        return list(result.result_columns)

    async def health(self) -> Health:
        async def probe() -> object:
            return await self.query_rows("SELECT 1")

        return await timed_health("clickhouse", probe, self._timeout_s)

    async def close(self) -> None:
        await self.run(self.client.close)
