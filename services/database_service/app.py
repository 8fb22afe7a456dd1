"""database-service: `create_app(settings)` builds the FastAPI app (port 8008).

It owns the pools of all five databases through the central hub. A database that is down
does not stop the service: its component keeps retrying, readiness names it with the reason,
and only the endpoints that need it answer 503 naming it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from aitrading.core.infrastructure.central_hub import CentralHub
from aitrading.core.infrastructure.config_manager import Settings
from aitrading.core.infrastructure.environment import rules_for
from aitrading.core.infrastructure.import_manager import ImportManager
from aitrading.core.infrastructure.telemetry import Tracing
from aitrading.core.security.keys import load_key_ring
from aitrading.core.security.service_identity import ServiceTokenVerifier
from aitrading.core.stores.arango_store import ArangoStore
from aitrading.core.stores.clickhouse import ClickHouseStore
from aitrading.core.stores.components import StoreComponent
from aitrading.core.stores.postgres import PostgresStore
from aitrading.core.stores.redis_store import RedisStore
from aitrading.core.stores.weaviate_store import WeaviateStore
from aitrading.services.common.http import LEAVE_HTTP_TELEMETRY_TO_US, install_common
from aitrading.services.database_service.deps import Databases
from aitrading.services.database_service.routers import (
    accounts,
    chain_outcomes,
    chains,
    error_groups,
    ticks,
)
from aitrading.services.database_service.schema import arango_schema, clickhouse, weaviate_schema
from aitrading.services.database_service.schema.postgres_revision import at_head
from aitrading.services.database_service.tick_batches import openapi_components

SERVICE = "database-service"
_log = logging.getLogger(__name__)


class _PoolGauges(Collector):
    """PostgreSQL pool in-use/idle, read at scrape time."""

    def __init__(self, databases: Databases) -> None:
        self._databases = databases

    def collect(self) -> Any:
        in_use = GaugeMetricFamily(
            "aitrading_database_service_pool_connections",
            "Pool connections by database and state",
            labels=["database", "state"],
        )
        component = self._databases.components.get("postgres")
        if component is not None and component.store is not None:
            busy, idle = component.store.pool_usage()
            in_use.add_metric(["postgres", "in_use"], busy)
            in_use.add_metric(["postgres", "idle"], idle)
        redis = self._databases.components.get("redis")
        if redis is not None and redis.store is not None:
            busy, idle = redis.store.pool_usage()
            in_use.add_metric(["redis", "in_use"], busy)
            in_use.add_metric(["redis", "idle"], idle)
        yield in_use


def _components(settings: Settings, migrate: bool) -> list[StoreComponent[Any]]:
    imports = ImportManager()

    async def postgres() -> PostgresStore:
        return await PostgresStore.create(settings)

    async def postgres_ready(store: PostgresStore) -> None:
        if migrate and not await at_head(store.pool):
            # alembic is loaded only for a database behind the head (postgres_revision.py)
            from aitrading.services.database_service.schema.postgres import migrate as upgrade

            for line in await upgrade(settings):
                _log.info("migrated %s", line)

    async def redis() -> RedisStore:
        return RedisStore.create(settings)

    async def clickhouse_store() -> ClickHouseStore:
        if settings.clickhouse.dsn is None:
            imports.require("chdb")
            settings.data_dir.resolve().joinpath("clickhouse").mkdir(parents=True, exist_ok=True)
        return await ClickHouseStore.create(settings)

    async def clickhouse_ready(store: ClickHouseStore) -> None:
        if migrate:
            for line in await clickhouse.migrate(store, settings.clickhouse.tick_ttl_days):
                _log.info("migrated %s", line)

    components: list[StoreComponent[Any]] = [
        # Readiness fails only for what lives in this process: the embedded ClickHouse (chdb)
        # — a shared server's outage hits every replica alike and only degrades the
        # endpoints that need it (docs/decisions/0008-readiness.md).
        StoreComponent(
            "postgres", postgres, tolerant=True, critical=False, on_connect=postgres_ready
        ),
        StoreComponent("redis", redis, tolerant=True, critical=False),
        StoreComponent(
            "clickhouse",
            clickhouse_store,
            tolerant=True,
            critical=settings.clickhouse.dsn is None,
            on_connect=clickhouse_ready,
        ),
    ]
    if settings.weaviate.url is not None:

        async def weaviate() -> WeaviateStore:
            return await WeaviateStore.create(settings, imports)

        async def weaviate_ready(store: WeaviateStore) -> None:
            if migrate:
                await weaviate_schema.migrate(store.client)

        components.append(
            StoreComponent(
                "weaviate", weaviate, critical=False, tolerant=True, on_connect=weaviate_ready
            )
        )
    if settings.arango.url is not None:

        async def arango() -> ArangoStore:
            return ArangoStore.create(settings, imports)

        async def arango_ready(store: ArangoStore) -> None:
            if migrate:
                import asyncio

                await asyncio.to_thread(arango_schema.migrate, store.db)

        components.append(
            StoreComponent("arango", arango, critical=False, tolerant=True, on_connect=arango_ready)
        )
    return components


def create_app(settings: Settings, registry: CollectorRegistry | None = None) -> FastAPI:
    """The database-service app; stores connect in the lifespan, not at import or here."""
    registry = registry if registry is not None else CollectorRegistry()
    migrate = settings.services.migrate_on_start
    if migrate is None:
        migrate = rules_for(settings.environment).migrate_on_start
    hub = CentralHub(settings.hub)
    tracing = Tracing(settings.telemetry, SERVICE)
    hub.register(tracing)  # first: stopped last, so the shutdown's spans are exported too
    databases = Databases(hub, verifier=service_verifier(settings))
    for component in _components(settings, migrate):
        hub.register(component)
        databases.components[component.name] = component
    databases.query_seconds = Histogram(
        "aitrading_database_service_query_duration_seconds",
        "Time spent in each database operation",
        ["database", "operation"],
        registry=registry,
        buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    )
    registry.register(_PoolGauges(databases))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()

    app = FastAPI(
        telemetry=LEAVE_HTTP_TELEMETRY_TO_US,
        title="aitrading database-service",
        version="1.0.0",
        summary="The one owner of the platform's database pools and schemas.",
        lifespan=lifespan,
    )
    app.state.databases = databases
    install_common(app, SERVICE, hub.health, registry, tracing.tracer)
    routers = (ticks, accounts, chains, chain_outcomes, error_groups)
    for module in routers:
        app.include_router(module.router)
    _publish_schemas(app, openapi_components())
    return app


# The services that write to database-service.
CALLERS = frozenset({"data-bridge", "api-gateway", "trading-engine"})


def service_verifier(settings: Settings) -> ServiceTokenVerifier | None:
    """None when writes need no identity: development on loopback, unless asked for."""
    required = settings.services.require_service_identity
    if required is None:
        required = rules_for(settings.environment).service_identity_required
    if not required:
        return None
    return ServiceTokenVerifier(
        load_key_ring(settings), settings.security.jwt_issuer, SERVICE, CALLERS
    )


def _publish_schemas(app: FastAPI, schemas: dict[str, dict[str, Any]]) -> None:
    """Add schemas the routes parse and encode themselves (the tick model's) to the OpenAPI
    components."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(schemas)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
