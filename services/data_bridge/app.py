"""data-bridge: `create_app(settings)` builds the FastAPI app (port 8001).

`/api/v1/ingest` takes MT5 connectors (docs/protocol.md); `/api/v1/stream` serves live ticks
to subscribers. An ack means the ticks are in the bridge's fsynced journal, which a
forwarder delivers to database-service (`sink.py`); live fan-out goes through the
Redis-protocol store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from aitrading.core.infrastructure.central_hub import CentralHub
from aitrading.core.infrastructure.config_manager import Settings
from aitrading.core.infrastructure.telemetry import Tracing
from aitrading.core.market.connector_channels import InstructionQueue, LatestAccounts, Presence
from aitrading.core.security.jwt_manager import JWTManager
from aitrading.core.security.keys import load_key_ring
from aitrading.core.security.service_identity import ServiceIdentity
from aitrading.core.security.subscription_validator import (
    EntitlementWatcher,
    SubscriptionValidator,
)
from aitrading.core.security.token_revocation import RedisRevocationStore
from aitrading.core.stores.components import security_clients
from aitrading.services.common.http import LEAVE_HTTP_TELEMETRY_TO_US, install_common
from aitrading.services.common.listener_tls import peer_client_context
from aitrading.services.common.urls import database_service_url, trading_engine_url
from aitrading.services.data_bridge.deps import BridgeState, Serving
from aitrading.services.data_bridge.fanout import FanOut, LiveFeed
from aitrading.services.data_bridge.ingest import IngestContext, IngestMetrics, OrderChannels
from aitrading.services.data_bridge.instructions import InstructionWakeups
from aitrading.services.data_bridge.protocol import FrameLimits
from aitrading.services.data_bridge.routers import ingest, stream
from aitrading.services.data_bridge.sink import TickSink
from aitrading.services.data_bridge.spool import Spool
from aitrading.services.data_bridge.stream import StreamRegistry
from aitrading.services.database_service.client import DatabaseServiceClient
from aitrading.services.trading_engine.client import TradingEngineClient

SERVICE = "data-bridge"


def create_app(
    settings: Settings,
    registry: CollectorRegistry | None = None,
    database: DatabaseServiceClient | None = None,
) -> FastAPI:
    registry = registry if registry is not None else CollectorRegistry()
    hub = CentralHub(settings.hub)
    tracing = Tracing(settings.telemetry, SERVICE)
    hub.register(tracing)  # first: stopped last, so the shutdown's spans are exported too

    redis_component, postgres_component = security_clients(settings)
    hub.register(redis_component)
    hub.register(postgres_component)
    database = database or DatabaseServiceClient(
        database_service_url(settings),
        settings.services.request_timeout_s,
        identity=ServiceIdentity(load_key_ring(settings), settings.security.jwt_issuer, SERVICE),
        verify=peer_client_context(settings),
    )
    engine = TradingEngineClient(
        trading_engine_url(settings),
        settings.services.request_timeout_s,
        identity=ServiceIdentity(load_key_ring(settings), settings.security.jwt_issuer, SERVICE),
        verify=peer_client_context(settings),
    )
    spool = Spool(settings.data_dir.resolve() / "data-bridge" / "spool")
    sink = TickSink(database, spool, registry, linger_s=settings.data_bridge.forward_linger_s)
    hub.register(sink)
    metrics = IngestMetrics(registry)
    state = BridgeState()

    async def serving() -> Serving:
        """Built once the stores are up; its workers are attached to the running hub."""
        redis = redis_component.store
        assert redis is not None
        jwt = JWTManager(
            load_key_ring(settings),
            RedisRevocationStore(redis.client),
            issuer=settings.security.jwt_issuer,
            audience=settings.security.jwt_audience,
            registry=registry,
        )
        feed = LiveFeed(redis.listener)
        fanout = FanOut(redis.client, feed)
        postgres = await postgres_component.connect()
        validator = SubscriptionValidator(postgres.pool, redis.client)
        streams = StreamRegistry(feed, validator)
        wakeups = InstructionWakeups(redis.listener)
        for worker in (
            fanout,
            feed,
            EntitlementWatcher(redis.listener, validator, streams.on_change),
            wakeups,
        ):
            await hub.attach(worker)
        limits = settings.data_bridge
        context = IngestContext(
            jwt,
            sink,
            fanout,
            metrics,
            limits.max_clock_skew_ms,
            database.insert_accounts_raw,
            FrameLimits(limits.max_frame_bytes, limits.max_json_depth, limits.max_ticks_per_frame),
            engine,
            OrderChannels(
                InstructionQueue(redis.client),
                Presence(redis.client),
                LatestAccounts(redis.client),
                wakeups,
            ),
        )
        return Serving(context, jwt, streams, fanout)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        try:
            state.serving = await serving()
            yield
        finally:
            state.serving = None
            await hub.stop()  # the sink first hands what is queued to database-service
            await database.close()
            await engine.close()

    app = FastAPI(
        telemetry=LEAVE_HTTP_TELEMETRY_TO_US,
        title="aitrading data-bridge",
        version="1.0.0",
        summary="MT5 ticks in over WebSocket, durable, validated, fanned out.",
        lifespan=lifespan,
    )
    app.state.bridge = state
    install_common(app, SERVICE, hub.health, registry, tracing.tracer)
    for module in (ingest, stream):
        app.include_router(module.router)
    return app
