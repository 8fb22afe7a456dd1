"""data-bridge: `create_app(settings)` builds the FastAPI app (port 8001).

`/api/v1/ingest` takes MT5 connectors (docs/protocol.md); `/api/v1/stream` serves live ticks
to subscribers. An ack means the ticks are in the bridge's fsynced journal, which a
forwarder delivers to database-service (`sink.py`); live fan-out goes through the
Redis-protocol store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, WebSocket
from prometheus_client import CollectorRegistry

from aitrading.core.infrastructure.central_hub import CentralHub, Health
from aitrading.core.infrastructure.config_manager import Settings
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
from aitrading.services.common.http import install_common
from aitrading.services.common.listener_tls import peer_client_context
from aitrading.services.common.urls import database_service_url, trading_engine_url
from aitrading.services.data_bridge.fanout import FanOut, LiveFeed
from aitrading.services.data_bridge.ingest import (
    IngestContext,
    IngestMetrics,
    OrderChannels,
    serve_connector,
)
from aitrading.services.data_bridge.instructions import InstructionWakeups
from aitrading.services.data_bridge.protocol import FrameLimits
from aitrading.services.data_bridge.sink import TickSink
from aitrading.services.data_bridge.spool import Spool
from aitrading.services.data_bridge.stream import StreamRegistry, serve_subscriber
from aitrading.services.database_service.client import DatabaseServiceClient
from aitrading.services.trading_engine.client import TradingEngineClient

SERVICE = "data-bridge"


@dataclass
class _SinkHealth:
    """The sink as a hub component: degraded while database-service cannot take the journal."""

    sink: TickSink
    name: str = "storage"
    depends_on: tuple[str, ...] = ()
    critical: bool = False

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def health(self) -> Health:
        return self.sink.health()


def create_app(
    settings: Settings,
    registry: CollectorRegistry | None = None,
    database: DatabaseServiceClient | None = None,
) -> FastAPI:
    registry = registry if registry is not None else CollectorRegistry()
    hub = CentralHub(settings.hub)

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
    hub.register(_SinkHealth(sink))
    metrics = IngestMetrics(registry)
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        redis = redis_component.store
        assert redis is not None
        jwt = JWTManager(
            load_key_ring(settings),
            RedisRevocationStore(redis.client),
            issuer=settings.security.jwt_issuer,
            audience=settings.security.jwt_audience,
            registry=registry,
        )
        fanout = FanOut(redis.client)
        feed = LiveFeed(redis.client)
        postgres = await postgres_component.connect()
        validator = SubscriptionValidator(postgres.pool, redis.client)
        streams = StreamRegistry(feed, validator)
        watcher = EntitlementWatcher(redis.client, validator, streams.on_change)
        await sink.start()
        await fanout.start()
        await feed.start()
        await watcher.start()
        wakeups = InstructionWakeups(redis.client)
        await wakeups.start()
        state.update(
            ingest=IngestContext(
                jwt,
                sink,
                fanout,
                metrics,
                settings.data_bridge.max_clock_skew_ms,
                database.insert_accounts_raw,
                FrameLimits(
                    settings.data_bridge.max_frame_bytes,
                    settings.data_bridge.max_json_depth,
                    settings.data_bridge.max_ticks_per_frame,
                ),
                engine,
                OrderChannels(
                    InstructionQueue(redis.client),
                    Presence(redis.client),
                    LatestAccounts(redis.client),
                    wakeups,
                ),
            ),
            jwt=jwt,
            streams=streams,
            fanout=fanout,
        )
        try:
            yield
        finally:
            await wakeups.stop()
            await watcher.stop()
            await feed.stop()
            await fanout.stop()
            await sink.stop()
            await database.close()
            await engine.close()
            await hub.stop()

    app = FastAPI(
        title="aitrading data-bridge",
        version="1.0.0",
        summary="MT5 ticks in over WebSocket, durable, validated, fanned out.",
        lifespan=lifespan,
    )
    install_common(app, SERVICE, hub.health, registry)

    @app.websocket("/api/v1/ingest")
    async def ingest(ws: WebSocket) -> None:
        """MT5 connectors: auth frame first, then tick/ticks/account_info/positions/heartbeat."""
        await serve_connector(ws, state["ingest"])

    @app.websocket("/api/v1/stream")
    async def stream(ws: WebSocket) -> None:
        """Subscribers: auth frame first, then subscribe/unsubscribe to entitled symbols."""
        await serve_subscriber(ws, state["jwt"], state["streams"], state["fanout"])

    return app
