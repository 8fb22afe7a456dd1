"""The stores as central-hub components: embedded servers first, then pooled clients.

`store_components(settings)` is what `make demo`, `aitrading stores status` and every service
use to bring up their databases: an embedded server component (development, when no URL is
set) followed by the client component that depends on it. Weaviate and ArangoDB join only
when configured, and as non-critical: without them the platform is degraded, not down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from aitrading.core.infrastructure.central_hub import Component, Health
from aitrading.core.infrastructure.config_manager import Settings
from aitrading.core.infrastructure.import_manager import ImportManager
from aitrading.core.security.redaction import redact
from aitrading.core.stores.arango_store import ArangoStore
from aitrading.core.stores.base import Store
from aitrading.core.stores.clickhouse import ClickHouseStore
from aitrading.core.stores.embedded import (
    EmbeddedClickHouse,
    EmbeddedPostgres,
    EmbeddedRedis,
    ServerStatus,
)
from aitrading.core.stores.postgres import PostgresStore
from aitrading.core.stores.redis_store import RedisStore
from aitrading.core.stores.weaviate_store import WeaviateStore

S = TypeVar("S", bound=Store)


class EmbeddedServer(Protocol):
    name: str

    def start(self) -> bool: ...

    def stop(self) -> bool: ...

    def status(self) -> ServerStatus: ...


class EmbeddedServerComponent:
    """Starts an embedded server unless one already runs, and stops only what it started."""

    critical = True
    depends_on: tuple[str, ...] = ()

    def __init__(self, server: EmbeddedServer) -> None:
        self.server = server
        self.name = f"{server.name}-server"
        self.started_here = False

    async def start(self) -> None:
        self.started_here = await asyncio.to_thread(self.server.start)

    async def stop(self) -> None:
        if self.started_here:
            await asyncio.to_thread(self.server.stop)
            self.started_here = False

    async def health(self) -> Health:
        status = await asyncio.to_thread(self.server.status)
        if status.running:
            return Health.healthy(status.detail)
        return Health.unhealthy(f"{self.server.name} server is not running")


class StoreComponent(Generic[S]):
    """A pooled store client whose health is the store's own round trip.

    `tolerant=True` is for services that must stay up while a database is down: a failed
    connect at start is reported by health (with the reason) and retried on every health
    check until it succeeds; `on_connect` runs once per successful connect (migrations).
    """

    def __init__(
        self,
        name: str,
        factory: Callable[[], Awaitable[S]],
        depends_on: tuple[str, ...] = (),
        critical: bool = True,
        tolerant: bool = False,
        on_connect: Callable[[S], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self.depends_on = depends_on
        self.critical = critical
        self._factory = factory
        self._tolerant = tolerant
        self._on_connect = on_connect
        self._connect_error = ""
        self._connect_lock = asyncio.Lock()
        self.store: S | None = None

    async def start(self) -> None:
        try:
            await self.connect()
        except Exception as exc:
            if not self._tolerant:
                raise
            self._connect_error = f"{type(exc).__name__}: {redact(str(exc))}"

    async def connect(self) -> S:
        """The store, connecting (and running `on_connect`) first if needed."""
        async with self._connect_lock:
            if self.store is None:
                store = await self._factory()
                try:
                    if self._on_connect is not None:
                        await self._on_connect(store)
                except BaseException:
                    await store.close()
                    raise
                self.store = store
                self._connect_error = ""
            return self.store

    async def stop(self) -> None:
        if self.store is not None:
            store, self.store = self.store, None
            await store.close()

    async def health(self) -> Health:
        if self.store is None:
            if not self._tolerant:
                return Health.unhealthy(f"{self.name} client is not started")
            try:
                await self.connect()
            except Exception as exc:
                self._connect_error = f"{type(exc).__name__}: {redact(str(exc))}"
                return Health.unhealthy(f"cannot connect: {self._connect_error}")
        assert self.store is not None
        return await self.store.health()


def store_components(settings: Settings, imports: ImportManager | None = None) -> list[Component]:
    """Hub components for every configured store, embedded servers included where needed."""
    imports = imports or ImportManager()
    components: list[Component] = []

    pg_deps: tuple[str, ...] = ()
    if settings.postgres.dsn is None:
        server = EmbeddedServerComponent(EmbeddedPostgres(settings, imports))
        components.append(server)
        pg_deps = (server.name,)

    async def make_postgres() -> PostgresStore:
        return await PostgresStore.create(settings)

    components.append(StoreComponent("postgres", make_postgres, pg_deps))

    redis_deps: tuple[str, ...] = ()
    if settings.redis.url is None:
        server = EmbeddedServerComponent(EmbeddedRedis(settings, imports))
        components.append(server)
        redis_deps = (server.name,)

    async def make_redis() -> RedisStore:
        return RedisStore.create(settings)

    components.append(StoreComponent("redis", make_redis, redis_deps))

    async def make_clickhouse() -> ClickHouseStore:
        if settings.clickhouse.dsn is None:
            imports.require("chdb")
            EmbeddedClickHouse(settings).start()
        return await ClickHouseStore.create(settings)

    components.append(StoreComponent("clickhouse", make_clickhouse))

    if settings.weaviate.url is not None:

        async def make_weaviate() -> WeaviateStore:
            return await WeaviateStore.create(settings, imports)

        components.append(StoreComponent("weaviate", make_weaviate, critical=False))

    if settings.arango.url is not None:

        async def make_arango() -> ArangoStore:
            return ArangoStore.create(settings, imports)

        components.append(StoreComponent("arango", make_arango, critical=False))

    return components


def security_clients(
    settings: Settings,
) -> tuple[StoreComponent[RedisStore], StoreComponent[PostgresStore]]:
    """The Redis and PostgreSQL clients a service needs for tokens, limits and subscriptions.

    Redis is required at start (revocations and rate limits fail closed without it);
    PostgreSQL is tolerant: the service starts and reports it until it can connect. Neither
    fails readiness: both are shared by every replica, so an outage degrades the endpoints
    that need them (503 naming the store) instead of emptying the Service
    (docs/decisions/0008-readiness.md).
    """

    async def redis() -> RedisStore:
        return RedisStore.create(settings)

    async def postgres() -> PostgresStore:
        return await PostgresStore.create(settings)

    return (
        StoreComponent("redis", redis, critical=False),
        StoreComponent("postgres", postgres, tolerant=True, critical=False),
    )
