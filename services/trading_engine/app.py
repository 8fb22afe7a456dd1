"""trading-engine: `create_app(settings)` builds the order service (port 8007).

Orders come from users through the api-gateway; pre-trade risk runs in-process; accepted
orders become signed instructions for the account's MT5 connector (through data-bridge);
the connector's execution reports drive each order's state machine (docs/orders.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from aitrading.core.infrastructure.central_hub import CentralHub
from aitrading.core.infrastructure.config_manager import Settings
from aitrading.core.infrastructure.telemetry import Tracing
from aitrading.core.security.audit_logger import AuditLog
from aitrading.core.security.keys import load_key_ring
from aitrading.core.security.service_identity import ServiceTokenVerifier
from aitrading.core.security.subscription_validator import (
    EntitlementWatcher,
    SubscriptionValidator,
)
from aitrading.core.security.users import UserStore
from aitrading.core.stores.components import security_clients
from aitrading.services.common.http import LEAVE_HTTP_TELEMETRY_TO_US, install_common
from aitrading.services.trading_engine.deps import EngineState
from aitrading.services.trading_engine.engine import EngineMetrics, OrderEngine, OrderSweeper
from aitrading.services.trading_engine.order_store import OrderStore
from aitrading.services.trading_engine.routers import connectors, orders, risk

SERVICE = "trading-engine"


def create_app(settings: Settings, registry: CollectorRegistry | None = None) -> FastAPI:
    registry = registry if registry is not None else CollectorRegistry()
    hub = CentralHub(settings.hub)
    tracing = Tracing(settings.telemetry, SERVICE)
    hub.register(tracing)  # first: stopped last, so the shutdown's spans are exported too
    redis_c, postgres_c = security_clients(settings)
    hub.register(redis_c)
    hub.register(postgres_c)
    keys = load_key_ring(settings)
    issuer = settings.security.jwt_issuer
    state = EngineState(
        gateway=ServiceTokenVerifier(keys, issuer, SERVICE, frozenset({"api-gateway"})),
        bridge=ServiceTokenVerifier(keys, issuer, SERVICE, frozenset({"data-bridge"})),
    )
    metrics = EngineMetrics(registry)
    hub.register(OrderSweeper(lambda: state.engine, settings.trading_engine.sweep_interval_s))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        redis = redis_c.store
        assert redis is not None
        postgres = await postgres_c.connect()
        subscriptions = SubscriptionValidator(postgres.pool, redis.client)
        watcher = EntitlementWatcher(redis.listener, subscriptions)
        engine = OrderEngine(
            settings.trading_engine,
            OrderStore(postgres.pool, AuditLog(postgres.pool)),
            redis.client,
            subscriptions,
            keys,
            issuer,
            metrics,
        )
        await hub.attach(watcher)
        # from here the sweeper resumes from PostgreSQL: it expires what timed out while this
        # process was down and queues again what the stream lost (a failing sweep, e.g. the
        # schema not migrated yet, shows in health and is retried — never a crash)
        state.engine, state.users = engine, UserStore(postgres.pool)
        try:
            yield
        finally:
            state.engine = None
            await hub.stop()

    app = FastAPI(
        telemetry=LEAVE_HTTP_TELEMETRY_TO_US,
        title="aitrading trading-engine",
        version="1.0.0",
        summary="Orders, pre-trade risk and the order path to the MT5 terminal.",
        lifespan=lifespan,
    )
    app.state.engine = state
    install_common(app, SERVICE, hub.health, registry, tracing.tracer)
    for router in (orders.router, risk.router, connectors.router):
        app.include_router(router)
    return app
