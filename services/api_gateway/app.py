"""api-gateway: `create_app(settings)` builds the single door to the platform (port 8000).

Order of checks on every proxied request: body size → per-IP rate limit (before any
authentication work) → authentication (bearer JWT or `X-API-Key`) → per-user, per-tier rate
limit → role and plan feature → symbol entitlement → proxy with a `traceparent` to the
upstream. Token endpoints are public but rate limited per IP and fail closed.

The routes are in `routers/` (one module per resource), what they depend on in `deps.py`;
this module wires them: the hub's components, the lifespan, the middleware.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from aitrading.core.infrastructure.central_hub import CentralHub
from aitrading.core.infrastructure.config_manager import Settings
from aitrading.core.infrastructure.telemetry import Tracing
from aitrading.core.security.audit_checkpoint_file import CheckpointFile
from aitrading.core.security.audit_logger import AuditCheckpointer, AuditLog, load_signing_key
from aitrading.core.security.audit_verifier import AuditVerifier
from aitrading.core.security.jwt_manager import JWTManager
from aitrading.core.security.keys import load_key_ring
from aitrading.core.security.rate_limiter import (
    AUTHENTICATION,
    FailureMode,
    Limit,
    Policy,
    RateLimiter,
)
from aitrading.core.security.service_identity import ServiceIdentity
from aitrading.core.security.subscription_validator import (
    EntitlementWatcher,
    SubscriptionValidator,
)
from aitrading.core.security.token_revocation import RedisRevocationStore
from aitrading.core.security.users import UserStore
from aitrading.core.stores.components import security_clients
from aitrading.services.api_gateway.admission import Admission, door_limit_deferrable
from aitrading.services.api_gateway.deps import GatewayState, GatewayStores
from aitrading.services.api_gateway.door_limits import DoorLimits
from aitrading.services.api_gateway.route_table_dispatch import RouteTableDispatch
from aitrading.services.api_gateway.routers import auth, chains, proxy, streams
from aitrading.services.api_gateway.routing import DEFAULT_ROUTES, Route
from aitrading.services.api_gateway.tracing import ChainRegistry, ChainSpanProcessor
from aitrading.services.api_gateway.upstream_health import UpstreamHealth
from aitrading.services.api_gateway.upstreams import Upstreams
from aitrading.services.common.http import (
    LEAVE_HTTP_TELEMETRY_TO_US,
    error_responses,
    install_common,
)
from aitrading.services.common.listener_tls import peer_client_context
from aitrading.services.common.urls import (
    data_bridge_url,
    database_service_url,
    trading_engine_url,
)

SERVICE = "api-gateway"


def upstream_urls(settings: Settings) -> dict[str, str]:
    return {
        "database-service": database_service_url(settings),
        "data-bridge": data_bridge_url(settings),
        "trading-engine": trading_engine_url(settings),
    }


def _per_minute(name: str, per_minute: int, burst_share: int) -> Policy:
    limit = Limit(per_minute, 60, burst=max(1, per_minute // burst_share))
    return Policy(name, {"free": limit}, FailureMode.CLOSED)


def create_app(
    settings: Settings,
    registry: CollectorRegistry | None = None,
    routes: tuple[Route, ...] = DEFAULT_ROUTES,
    urls: dict[str, str] | None = None,
) -> FastAPI:
    registry = registry if registry is not None else CollectorRegistry()
    security = settings.security
    hub = CentralHub(settings.hub)
    identity = ServiceIdentity(load_key_ring(settings), security.jwt_issuer, SERVICE)
    verify = peer_client_context(settings)
    urls = urls or upstream_urls(settings)
    chain_registry = ChainRegistry(
        urls.get("database-service"), identity, verify, settings.services.chain_flush_interval_s
    )
    tracing = Tracing(settings.telemetry, SERVICE, [ChainSpanProcessor(chain_registry)])
    hub.register(tracing)
    hub.register(chain_registry)
    redis_c, postgres_c = security_clients(settings)
    hub.register(redis_c)
    hub.register(postgres_c)
    upstreams = Upstreams(
        urls,
        settings.services.request_timeout_s,
        identity=identity,
        verify=verify,
    )
    upstreams.export(registry)
    hub.register(upstreams)
    for name, url in upstreams.urls.items():
        hub.register(
            # no upstream fails the gateway's readiness: every replica shares it; its routes
            # answer 503 naming it meanwhile (docs/decisions/0008-readiness.md)
            UpstreamHealth(name, url, critical=False, verify=upstreams.tls)
        )
    state = GatewayState(
        upstreams,
        chain_registry,
        routes,
        _per_minute(AUTHENTICATION.name, security.login_attempts_per_minute, 2),
        tracing.tracer,
    )

    async def stores() -> GatewayStores:
        """Built once the stores are up; its workers are attached to the running hub."""
        redis = redis_c.store
        assert redis is not None
        postgres = await postgres_c.connect()
        validator = SubscriptionValidator(postgres.pool, redis.client)
        # Every subscription change drops this process's cached entitlement at once, so a
        # revocation or downgrade applies to the very next request.
        await hub.attach(EntitlementWatcher(redis.listener, validator))
        audit = AuditLog(postgres.pool)
        await _attach_audit_workers(hub, settings, audit, registry)
        jwt = JWTManager(
            load_key_ring(settings),
            RedisRevocationStore(redis.client),
            issuer=security.jwt_issuer,
            audience=security.jwt_audience,
            access_ttl_s=security.access_token_ttl_s,
            refresh_ttl_s=security.refresh_token_ttl_s,
            registry=registry,
        )
        limiter = RateLimiter(redis.client, registry)
        admission = Admission(redis.client, jwt, limiter)
        return GatewayStores(jwt, limiter, admission, UserStore(postgres.pool), validator, audit)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        try:
            state.stores = await stores()
            yield
        finally:
            state.stores = None
            await hub.stop()

    app = FastAPI(
        telemetry=LEAVE_HTTP_TELEMETRY_TO_US,
        title="aitrading api-gateway",
        version="1.0.0",
        lifespan=lifespan,
        summary="The single door: authentication, limits, entitlements, routing.",
        responses=error_responses(429),  # the per-IP limit applies before anything else
    )
    app.state.gateway = state
    # Added before the common middleware, so it runs inside it: errors it returns carry
    # the request id and trace context too.
    # the innermost: the route table's requests skip FastAPI's router for the same handler
    app.add_middleware(RouteTableDispatch, gateway=state, catch_all=proxy.catch_all_routes())
    per_ip = _per_minute("ip", security.requests_per_ip_per_minute, 5)
    app.add_middleware(
        DoorLimits,
        limiter=lambda: _limiter(state),
        per_ip=per_ip,
        deferrable=lambda scope: door_limit_deferrable(
            scope, state.routes, state.stores.jwt if state.stores is not None else None
        ),
    )
    install_common(app, SERVICE, hub.health, registry, tracing.tracer)
    for router in (auth.router, chains.router, streams.router, proxy.router):
        app.include_router(router)
    return app


def _limiter(state: GatewayState) -> RateLimiter | None:
    return state.stores.limiter if state.stores is not None else None


async def _attach_audit_workers(
    hub: CentralHub, settings: Settings, audit: AuditLog, registry: CollectorRegistry
) -> None:
    """Signed checkpoints of the audit log, with the key kept outside the database, and the
    whole chain verified on a schedule: hub components, stopped (first) with the hub."""
    security = settings.security
    if security.audit_signing_key_file is None:
        return
    signing_key = load_signing_key(security.audit_signing_key_file)
    external = (
        CheckpointFile(security.audit_checkpoint_file)
        if security.audit_checkpoint_file is not None
        else None
    )
    await hub.attach(
        AuditCheckpointer(
            audit,
            signing_key,
            security.audit_checkpoint_interval_s,
            depends_on=(),
            external=external,
        )
    )
    await hub.attach(
        AuditVerifier(
            audit, signing_key.public_key(), security.audit_verify_interval_s, registry, external
        )
    )
