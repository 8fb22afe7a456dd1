"""What the gateway's routes depend on, typed: its state, the caller's address, the caller.

`create_app` builds what needs no store (the upstream pool, the chain registry, the route
table, the login policy); the lifespan adds `GatewayStores` once Redis and PostgreSQL are up.
A request that arrives before that is answered 503, never served by half-built objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from opentelemetry.trace import Tracer
from redis.exceptions import RedisError
from starlette.requests import HTTPConnection

from aitrading.core.security.audit_logger import AuditLog
from aitrading.core.security.jwt_manager import JWTManager, TokenRejectedError
from aitrading.core.security.rate_limiter import Decision, Policy, RateLimiter, Scope
from aitrading.core.security.subscription_validator import SubscriptionValidator
from aitrading.core.security.users import User, UserStore
from aitrading.services.api_gateway.admission import Admission, bearer_in
from aitrading.services.api_gateway.routing import Route
from aitrading.services.api_gateway.tracing import ChainRegistry
from aitrading.services.api_gateway.upstreams import Upstreams
from aitrading.services.common.dependencies import available
from aitrading.services.common.http import ApiError


@dataclass(frozen=True)
class GatewayStores:
    """Built in the lifespan from the started stores."""

    jwt: JWTManager
    limiter: RateLimiter
    admission: Admission
    users: UserStore
    subscriptions: SubscriptionValidator
    audit: AuditLog


@dataclass
class GatewayState:
    upstreams: Upstreams
    chains: ChainRegistry
    routes: tuple[Route, ...]
    login_policy: Policy
    tracer: Tracer
    stores: GatewayStores | None = None


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's claims, and the user record when an API key was used."""

    subject: str
    claims: dict[str, Any]
    user: User | None = None


async def gateway_of(conn: HTTPConnection) -> GatewayState:
    state: GatewayState = conn.app.state.gateway
    return state


async def stores_of(conn: HTTPConnection) -> GatewayStores:
    return available(
        (await gateway_of(conn)).stores, "the api-gateway is starting: stores not ready"
    )


async def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def limit(
    stores: GatewayStores, policy: Policy, scope: Scope, identity: str, tier: str | None = None
) -> None:
    """429 with `retry-after` once `identity` used up its allowance under `policy`."""
    refuse_when_limited(await stores.limiter.hit(policy, scope, identity, tier))


def refuse_when_limited(decision: Decision) -> None:
    if not decision.allowed:
        raise ApiError(
            429,
            "rate_limited",
            "too many requests; retry later",
            [{"retry_after_s": decision.retry_after_header}],
            headers={"retry-after": decision.retry_after_header},
        )


def bearer_token(request: Request) -> str | None:
    return bearer_in(request.headers.get("authorization", ""))


INVALID_TOKEN = ApiError(401, "unauthorized", "invalid or expired token")
REVOCATION_UNAVAILABLE = "token revocation state unavailable; retry"


async def authenticate(request: Request, stores: GatewayStores) -> Principal:
    """A bearer JWT or an `X-API-Key`; 401 otherwise, 503 when a token's revocation state
    cannot be read (it is refused, never let through)."""
    token = bearer_token(request)
    if token is not None:
        try:
            claims = await stores.jwt.verify(token)
        except TokenRejectedError:
            raise INVALID_TOKEN from None
        except (RedisError, OSError):
            raise ApiError(503, "unavailable", REVOCATION_UNAVAILABLE) from None
        return Principal(str(claims["sub"]), claims)
    key = request.headers.get("x-api-key")
    if key:
        user = await stores.users.verify_api_key(key)
        if user is None:
            raise ApiError(401, "unauthorized", "invalid API key")
        return Principal(user.id, {"sub": user.id, "role": user.role}, user)
    raise ApiError(401, "unauthorized", "authentication required")


Gateway = Annotated[GatewayState, Depends(gateway_of)]
Stores = Annotated[GatewayStores, Depends(stores_of)]
ClientIp = Annotated[str, Depends(client_ip)]


async def _current_principal(request: Request, stores: Stores) -> Principal:
    return await authenticate(request, stores)


async def _login_attempt(gateway: Gateway, stores: Stores, ip: ClientIp) -> str:
    await limit(stores, gateway.login_policy, Scope.IP, ip)
    return ip


CurrentPrincipal = Annotated[Principal, Depends(_current_principal)]
# The caller's address, after the per-IP limit on token endpoints (fails closed).
LoginAttempt = Annotated[str, Depends(_login_attempt)]
