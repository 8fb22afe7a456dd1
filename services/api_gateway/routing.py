"""The gateway's route table, upstream proxying and per-upstream circuit breakers.

Every path the gateway serves is in one table, which says where it goes, who may call it
(public, any authenticated caller, admin) and whether a symbol entitlement applies — the
route-table test walks it to prove no non-public route answers an anonymous caller.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from enum import StrEnum

import httpx

from aitrading.core.infrastructure.circuit_breaker import CircuitBreaker
from aitrading.core.security.service_identity import HEADER as SERVICE_TOKEN_HEADER
from aitrading.core.security.service_identity import ServiceIdentity

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})


class Access(StrEnum):
    PUBLIC = "public"
    USER = "user"
    ADMIN = "admin"


@dataclass(frozen=True)
class Route:
    prefix: str  # gateway path prefix
    upstream: str  # service name
    rewrite: str  # upstream path prefix that replaces `prefix`
    access: Access = Access.USER
    methods: frozenset[str] = frozenset({"GET"})
    symbol_param: str | None = None  # query parameter checked against entitlements
    feature: str | None = None  # plan feature the route needs

    def upstream_path(self, path: str) -> str:
        return self.rewrite + path[len(self.prefix) :]


DEFAULT_ROUTES: tuple[Route, ...] = (
    Route(
        "/api/v1/market/ticks",
        "database-service",
        "/api/v1/ticks",
        symbol_param="symbol",
        feature="ticks",
    ),
    Route(
        "/api/v1/market/ohlcv",
        "database-service",
        "/api/v1/ohlcv",
        symbol_param="symbol",
        feature="ohlcv",
    ),
    Route(
        "/api/v1/orders",
        "trading-engine",
        "/api/v1/orders",
        methods=frozenset({"GET", "POST", "DELETE"}),
        feature="orders",
    ),
    Route("/api/v1/positions", "trading-engine", "/api/v1/positions", feature="orders"),
    Route(
        "/api/v1/risk",
        "trading-engine",
        "/api/v1/risk",
        access=Access.ADMIN,
        methods=frozenset({"GET", "PUT"}),
    ),
    Route(
        "/api/v1/db",
        "database-service",
        "/api/v1",
        access=Access.ADMIN,
        methods=frozenset({"GET", "POST", "PUT", "DELETE"}),
    ),
)


def match(routes: tuple[Route, ...], path: str) -> Route | None:
    best = None
    for route in routes:
        if (path == route.prefix or path.startswith(route.prefix + "/")) and (
            best is None or len(route.prefix) > len(best.prefix)
        ):
            best = route
    return best


class UpstreamUnavailableError(Exception):
    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service} is unavailable: {reason}")
        self.service = service


class Upstreams:
    """Pooled HTTP clients per upstream, retries only for idempotent methods."""

    def __init__(
        self,
        urls: dict[str, str],
        timeout_s: float,
        retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
        identity: ServiceIdentity | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.urls = urls
        self._identity = identity
        self.tls = verify
        self._retries = retries
        self.breakers = {name: CircuitBreaker() for name in urls}
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=min(2.0, timeout_s)),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=100),
            transport=transport,
            verify=verify,
        )

    async def send(
        self,
        service: str,
        method: str,
        path: str,
        query: bytes,
        headers: dict[str, str],
        body: bytes,
    ) -> httpx.Response:
        breaker = self.breakers[service]
        if not breaker.allow():
            raise UpstreamUnavailableError(service, "circuit open after repeated failures")
        attempts = 1 + (self._retries if method in IDEMPOTENT else 0)
        headers = {k: v for k, v in headers.items() if k.lower() != SERVICE_TOKEN_HEADER}
        if self._identity is not None:  # the gateway's own identity, never the caller's
            headers.update(self._identity.headers_for(service))
        last = "no answer"
        for attempt in range(attempts):
            request = self._client.build_request(
                method,
                self.urls[service] + path + (f"?{query.decode()}" if query else ""),
                headers=headers,
                content=body,
            )
            try:
                response = await self._client.send(request, stream=True)
            except httpx.HTTPError as exc:
                last = type(exc).__name__
                continue
            if response.status_code >= 500 and attempt + 1 < attempts:
                await response.aclose()  # idempotent: try again
                last = f"HTTP {response.status_code}"
                continue
            if response.status_code >= 500:
                breaker.failure()
            else:
                breaker.success()
            return response
        breaker.failure()
        raise UpstreamUnavailableError(service, last)

    async def close(self) -> None:
        await self._client.aclose()
