"""api-gateway: `create_app(settings)` builds the single door to the platform (port 8000).

Order of checks on every proxied request: body size → per-IP rate limit (before any
authentication work) → authentication (bearer JWT or `X-API-Key`) → per-user, per-tier rate
limit → role and plan feature → symbol entitlement → proxy with a `traceparent` to the
upstream. Token endpoints are public but rate limited per IP and fail closed.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request, Response, WebSocket
from fastapi.responses import StreamingResponse
from prometheus_client import CollectorRegistry, Gauge
from pydantic import ConfigDict, Field

from aitrading.core.infrastructure.central_hub import CentralHub, Health
from aitrading.core.infrastructure.circuit_breaker import BreakerState, CircuitBreaker
from aitrading.core.infrastructure.config_manager import Settings
from aitrading.core.security.audit_checkpoint_file import CheckpointFile
from aitrading.core.security.audit_logger import AuditCheckpointer, AuditLog, load_signing_key
from aitrading.core.security.audit_verifier import AuditVerifier
from aitrading.core.security.jwt_manager import JWTManager, TokenRejectedError
from aitrading.core.security.keys import load_key_ring
from aitrading.core.security.rate_limiter import (
    AUTHENTICATION,
    MARKET_DATA,
    FailureMode,
    Limit,
    Policy,
    RateLimiter,
    Scope,
)
from aitrading.core.security.scopes import TokenScope
from aitrading.core.security.service_identity import ServiceIdentity
from aitrading.core.security.subscription_validator import (
    EntitlementWatcher,
    SubscriptionValidator,
)
from aitrading.core.security.token_revocation import RedisRevocationStore
from aitrading.core.security.users import User, UserStore
from aitrading.core.stores.components import security_clients
from aitrading.services.api_gateway.door_limits import DoorLimits
from aitrading.services.api_gateway.routing import DEFAULT_ROUTES, Access, Route, match
from aitrading.services.api_gateway.streams import proxy_stream
from aitrading.services.api_gateway.tracing import ChainRegistry, Span
from aitrading.services.api_gateway.upstream_health import UpstreamHealth
from aitrading.services.api_gateway.upstreams import Upstreams, UpstreamUnavailableError
from aitrading.services.common.http import ApiError, error_responses, install_common
from aitrading.services.common.listener_tls import peer_client_context
from aitrading.services.common.text import StorableText
from aitrading.services.common.tracing import current_trace
from aitrading.services.common.urls import (
    data_bridge_url,
    database_service_url,
    trading_engine_url,
)

SERVICE = "api-gateway"
_HOP_HEADERS = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "authorization",
    "x-api-key",
    "te",
    "trailer",
}


class _Body(StorableText):
    # storable text: a NUL in an email used to reach PostgreSQL and answer 500
    model_config = ConfigDict(extra="forbid", strict=True)


class TokenRequest(_Body):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class RefreshRequest(_Body):
    refresh_token: str = Field(min_length=10, max_length=8192)


def upstream_urls(settings: Settings) -> dict[str, str]:
    return {
        "database-service": database_service_url(settings),
        "data-bridge": data_bridge_url(settings),
        "trading-engine": trading_engine_url(settings),
    }


def create_app(
    settings: Settings,
    registry: CollectorRegistry | None = None,
    routes: tuple[Route, ...] = DEFAULT_ROUTES,
    urls: dict[str, str] | None = None,
) -> FastAPI:
    registry = registry if registry is not None else CollectorRegistry()
    hub = CentralHub(settings.hub)

    redis_c, postgres_c = security_clients(settings)
    hub.register(redis_c)
    hub.register(postgres_c)
    identity = ServiceIdentity(load_key_ring(settings), settings.security.jwt_issuer, SERVICE)
    upstreams = Upstreams(
        urls or upstream_urls(settings),
        settings.services.request_timeout_s,
        identity=identity,
        verify=peer_client_context(settings),
    )
    per_minute = settings.security.requests_per_ip_per_minute
    per_ip = Policy(
        "ip", {"free": Limit(per_minute, 60, burst=max(1, per_minute // 5))}, FailureMode.CLOSED
    )
    logins = settings.security.login_attempts_per_minute
    login_policy = Policy(
        AUTHENTICATION.name,
        {"free": Limit(logins, 60, burst=max(1, logins // 2))},
        FailureMode.CLOSED,
    )
    state: dict[str, Any] = {}

    class _Breakers:
        name = "upstreams"
        depends_on: tuple[str, ...] = ()
        critical = False

        async def start(self) -> None: ...

        async def stop(self) -> None: ...

        async def health(self) -> Health:
            open_ = [n for n, b in upstreams.breakers.items() if b.state is not BreakerState.CLOSED]
            return (
                Health.degraded(f"circuit open: {', '.join(open_)}")
                if open_
                else Health.healthy("all circuits closed")
            )

    hub.register(_Breakers())
    circuit_open = Gauge(
        "aitrading_api_gateway_upstream_circuit_open",
        "1 while the gateway's circuit to an upstream is open or half-open (its routes answer"
        " 503 naming it)",
        ["upstream"],
        registry=registry,
    )
    for name, breaker in upstreams.breakers.items():
        circuit_open.labels(name).set_function(_is_open(breaker))
    for name, url in upstreams.urls.items():
        hub.register(
            # no upstream fails the gateway's readiness: every replica shares it; its routes
            # answer 503 naming it meanwhile (docs/decisions/0008-readiness.md)
            UpstreamHealth(name, url, critical=False, verify=upstreams.tls)
        )
    chains = ChainRegistry(upstreams.urls.get("database-service"), identity, upstreams.tls)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        redis = redis_c.store
        assert redis is not None
        postgres = await postgres_c.connect()
        validator = SubscriptionValidator(postgres.pool, redis.client)
        # Every subscription change drops this process's cached entitlement at once, so a
        # revocation or downgrade applies to the very next request.
        watcher = EntitlementWatcher(redis.client, validator)
        await watcher.start()
        state.update(
            jwt=JWTManager(
                load_key_ring(settings),
                RedisRevocationStore(redis.client),
                issuer=settings.security.jwt_issuer,
                audience=settings.security.jwt_audience,
                access_ttl_s=settings.security.access_token_ttl_s,
                refresh_ttl_s=settings.security.refresh_token_ttl_s,
                registry=registry,
            ),
            limiter=RateLimiter(redis.client, registry),
            users=UserStore(postgres.pool),
            subscriptions=validator,
            audit=AuditLog(postgres.pool),
        )
        # Signed checkpoints of the audit log, with the key kept outside the database, and the
        # whole chain verified on a schedule: hub components, stopped (first) with the hub.
        if settings.security.audit_signing_key_file is not None:
            signing_key = load_signing_key(settings.security.audit_signing_key_file)
            external = (
                CheckpointFile(settings.security.audit_checkpoint_file)
                if settings.security.audit_checkpoint_file is not None
                else None
            )
            await hub.attach(
                AuditCheckpointer(
                    state["audit"],
                    signing_key,
                    settings.security.audit_checkpoint_interval_s,
                    depends_on=(),
                    external=external,
                )
            )
            await hub.attach(
                AuditVerifier(
                    state["audit"],
                    signing_key.public_key(),
                    settings.security.audit_verify_interval_s,
                    registry,
                    external,
                )
            )
        try:
            yield
        finally:
            await watcher.stop()
            await upstreams.close()
            await hub.stop()

    app = FastAPI(
        title="aitrading api-gateway",
        version="1.0.0",
        lifespan=lifespan,
        summary="The single door: authentication, limits, entitlements, routing.",
        responses=error_responses(429),  # the per-IP limit applies before anything else
    )
    app.state.routes = routes

    # Added before the common middleware, so it runs inside it: errors it returns carry
    # the request id and trace context too.
    app.add_middleware(DoorLimits, limiter=lambda: state.get("limiter"), per_ip=per_ip)
    install_common(app, SERVICE, hub.health, registry)

    async def limit(policy: Policy, scope: Scope, identity: str, tier: str | None = None) -> None:
        decision = await state["limiter"].hit(policy, scope, identity, tier)
        if not decision.allowed:
            raise ApiError(
                429,
                "rate_limited",
                "too many requests; retry later",
                [{"retry_after_s": decision.retry_after_header}],
                headers={"retry-after": decision.retry_after_header},
            )

    async def authenticate(request: Request) -> tuple[User | None, dict[str, Any]]:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            try:
                claims = await state["jwt"].verify(header[7:].strip())
            except TokenRejectedError:
                raise ApiError(401, "unauthorized", "invalid or expired token") from None
            return None, claims
        key = request.headers.get("x-api-key")
        if key:
            user = await state["users"].verify_api_key(key)
            if user is None:
                raise ApiError(401, "unauthorized", "invalid API key")
            return user, {"sub": user.id, "role": user.role}
        raise ApiError(401, "unauthorized", "authentication required")

    @app.get("/.well-known/jwks.json", tags=["auth"], summary="Public keys (JWKS)")
    async def jwks() -> dict[str, Any]:
        result: dict[str, Any] = state["jwt"].jwks()
        return result

    @app.post(
        "/auth/token",
        tags=["auth"],
        summary="Log in: access and refresh tokens",
        responses=error_responses(400, 401, 429, 503),
    )
    async def token(body: TokenRequest, request: Request) -> dict[str, Any]:
        ip = request.client.host if request.client else "unknown"
        await limit(login_policy, Scope.IP, ip)
        user = await state["users"].authenticate(body.email, body.password)
        if user is None:
            await state["audit"].append(
                body.email.lower(), "login", "auth/token", "failure", {"ip": ip}
            )
            raise ApiError(401, "unauthorized", "wrong email or password")
        entitlement = await state["subscriptions"].entitlements(user.id)
        pair = await state["jwt"].issue(
            user.id, entitlement.tier.value, entitlement.entitlement_version
        )
        await state["audit"].append(user.id, "login", "auth/token", "success", {"ip": ip})
        return {
            "access_token": pair.access_token,
            "refresh_token": pair.refresh_token,
            "token_type": "Bearer",
            "expires_in": pair.expires_in,
        }

    @app.post(
        "/auth/refresh",
        tags=["auth"],
        summary="Rotate a refresh token",
        responses=error_responses(400, 401, 429, 503),
    )
    async def refresh(body: RefreshRequest, request: Request) -> dict[str, Any]:
        ip = request.client.host if request.client else "unknown"
        await limit(login_policy, Scope.IP, ip)
        try:
            claims = state["jwt"].decode(body.refresh_token, expected_type="refresh")
            entitlement = await state["subscriptions"].entitlements(str(claims["sub"]))
            pair = await state["jwt"].refresh(
                body.refresh_token, entitlement.tier.value, entitlement.entitlement_version
            )
        except TokenRejectedError as exc:
            await state["audit"].append(
                "unknown",
                "token.refresh",
                "auth/refresh",
                "failure",
                {"reason": exc.reason.value, "ip": ip},
            )
            raise ApiError(401, "unauthorized", "invalid refresh token") from None
        return {
            "access_token": pair.access_token,
            "refresh_token": pair.refresh_token,
            "token_type": "Bearer",
            "expires_in": pair.expires_in,
        }

    @app.post(
        "/auth/connector-token",
        tags=["auth"],
        summary="A token for an MT5 connector, from an API key with the ingest scope",
        responses=error_responses(400, 401, 403, 429, 503),
    )
    async def connector_token(request: Request) -> dict[str, Any]:
        """Only connector identities may publish market data: the `X-API-Key` must carry the
        `ingest` scope (`aitrading users api-key --scope ingest`). No refresh token: the
        connector asks again with its key."""
        ip = request.client.host if request.client else "unknown"
        await limit(login_policy, Scope.IP, ip)
        key = request.headers.get("x-api-key", "")
        user = await state["users"].verify_api_key(key) if key else None
        if user is None:
            raise ApiError(401, "unauthorized", "a valid X-API-Key is required")
        if TokenScope.INGEST.value not in user.scopes:
            await state["audit"].append(user.id, "connector.token", "auth", "failure", {"ip": ip})
            raise ApiError(403, "forbidden", "this API key does not have the ingest scope")
        entitlement = await state["subscriptions"].entitlements(user.id)
        pair = await state["jwt"].issue(
            user.id,
            entitlement.tier.value,
            entitlement.entitlement_version,
            scopes=(TokenScope.INGEST,),
        )
        await state["audit"].append(user.id, "connector.token", "auth", "success", {"ip": ip})
        return {
            "access_token": pair.access_token,
            "token_type": "Bearer",
            "expires_in": pair.expires_in,
        }

    @app.post(
        "/auth/logout",
        tags=["auth"],
        summary="End this session (or every session)",
        status_code=204,
        responses=error_responses(400, 401, 429, 503),
    )
    async def logout(
        request: Request,
        everywhere: Annotated[bool, Query(description="end every session of the user")] = False,
    ) -> Response:
        """Revokes the presented token and its session: the session's refresh token stops
        working too. `?everywhere=true` ends every session of the user."""
        _, claims = await authenticate(request)
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            await state["jwt"].revoke(header[7:].strip())
        if everywhere:
            await state["jwt"].revoke_all(str(claims["sub"]))
        action = "token.revoke_all" if everywhere else "token.revoke"
        await state["audit"].append(str(claims["sub"]), action, "auth/logout", "success")
        return Response(status_code=204)

    @app.get(
        "/api/v1/chains",
        tags=["tracing"],
        summary="Each call chain seen by the gateway: error rate and latency p99",
        responses=error_responses(400, 401, 429, 503),
    )
    async def chain_health(request: Request) -> dict[str, Any]:
        await authenticate(request)
        return {"chains": chains.report()}

    @app.websocket("/api/v1/stream")
    async def stream(ws: WebSocket) -> None:
        """Live ticks, proxied to data-bridge after the gateway checked the token itself."""
        tls = upstreams.tls if isinstance(upstreams.tls, ssl.SSLContext) else None
        await proxy_stream(ws, state["jwt"], upstreams.urls["data-bridge"], tls=tls)

    @app.websocket("/api/v1/ingest")
    async def ingest(ws: WebSocket) -> None:
        """MT5 connectors, proxied to data-bridge after the gateway checked the token."""
        await proxy_stream(
            ws,
            state["jwt"],
            upstreams.urls["data-bridge"],
            "/api/v1/ingest",
            required_scope=TokenScope.INGEST,
            tls=upstreams.tls if isinstance(upstreams.tls, ssl.SSLContext) else None,
        )

    @app.api_route(
        "/api/v1/{rest:path}",
        methods=["GET", "POST", "PUT", "DELETE", "PATCH"],
        tags=["proxy"],
        summary="Routed to the upstream named by the route table",
        responses={
            **error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503),
            "2XX": {"description": "the upstream's answer, passed through"},
        },
    )
    async def proxy(rest: str, request: Request) -> Response:
        route = match(routes, request.url.path)
        if route is None:
            raise ApiError(404, "not_found", f"no route for {request.url.path}")
        if request.method not in route.methods:
            raise ApiError(405, "method_not_allowed", f"{request.method} is not allowed here")
        user, claims = (None, {}) if route.access is Access.PUBLIC else await authenticate(request)
        subject = str(claims.get("sub", "anonymous"))
        entitlement = None
        if route.access is not Access.PUBLIC:
            entitlement = await state["subscriptions"].entitlements(subject)
            await limit(
                MARKET_DATA, Scope.API_KEY if user else Scope.USER, subject, entitlement.tier.value
            )
        if route.access is Access.ADMIN:
            role = (
                user.role if user else (await state["users"].get(subject) or User("", "", "")).role
            )
            if role != "admin":
                raise ApiError(403, "forbidden", "administrators only")
            await state["audit"].append(
                subject, f"admin.{request.method.lower()}", request.url.path, "allowed"
            )
        if (
            entitlement is not None
            and route.feature
            and route.feature not in entitlement.entitlements.features
        ):
            raise ApiError(403, "forbidden", f"your plan does not include {route.feature}")
        if entitlement is not None and route.symbol_param:
            symbol = request.query_params.get(route.symbol_param, "")
            if not entitlement.entitlements.allows_symbol(symbol):
                raise ApiError(403, "forbidden", f"your plan does not include {symbol!r}")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        trace = current_trace.get()
        if trace is not None:
            headers["traceparent"] = trace.child().traceparent
        headers["x-aitrading-user"] = subject
        started = time.perf_counter()

        def span(status: int) -> Span:
            return Span(
                trace.trace_id if trace else "",
                route.upstream,
                route.prefix,
                status,
                (time.perf_counter() - started) * 1000,
            )

        try:
            upstream = await upstreams.send(
                route.upstream,
                request.method,
                route.upstream_path(request.url.path),
                request.url.query.encode(),
                headers,
                await request.body(),
            )
        except UpstreamUnavailableError as exc:
            chains.record(request.method, route.prefix, route.upstream, span(503))
            raise ApiError(503, "upstream_unavailable", str(exc)) from None
        chains.record(request.method, route.prefix, route.upstream, span(upstream.status_code))
        # the body goes through as the upstream encoded it, so its content-encoding does too
        out_headers = {k: v for k, v in upstream.headers if k.lower() not in _HOP_HEADERS}
        return StreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            headers=out_headers,
            background=_closer(upstream),
        )

    return app


def _is_open(breaker: CircuitBreaker) -> Callable[[], float]:
    return lambda: 0.0 if breaker.state is BreakerState.CLOSED else 1.0


def _closer(response: Any) -> Any:
    from starlette.background import BackgroundTask

    return BackgroundTask(response.aclose)
