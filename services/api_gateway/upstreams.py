"""The gateway's HTTP client to its upstreams: pooled keep-alive connections (aiohttp), a
circuit breaker per upstream, retries only for idempotent methods, the gateway's own service
token on every request.

aiohttp rather than httpx: in the profile of bench/gateway_overhead.py the httpx hop was the
largest share of the gateway's CPU per proxied request, and on this machine aiohttp spends
0.3 ms of CPU per keep-alive request where httpx spends 1.1 ms. Bodies are passed through
as the upstream sent them (no decompression), with their `content-encoding`.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
from prometheus_client import CollectorRegistry, Gauge
from yarl import URL

from aitrading.core.infrastructure.central_hub import Health
from aitrading.core.infrastructure.circuit_breaker import BreakerState, CircuitBreaker
from aitrading.core.security.service_identity import HEADER as SERVICE_TOKEN_HEADER
from aitrading.core.security.service_identity import ServiceIdentity

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})


class UpstreamUnavailableError(Exception):
    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service} is unavailable: {reason}")
        self.service = service


@dataclass
class UpstreamResponse:
    """An upstream's answer whose body is still to be read or streamed to the caller."""

    service: str
    status_code: int
    headers: list[tuple[str, str]]
    _response: aiohttp.ClientResponse

    @property
    def content_length(self) -> int | None:
        """The declared body size; None for a chunked (streamed) answer."""
        return self._response.content_length

    async def read(self) -> bytes:
        """The whole body, then the connection goes back to the pool. An upstream that fails
        mid-body is unavailable, as one that never answered."""
        try:
            return await self._response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamUnavailableError(self.service, type(exc).__name__) from None
        finally:
            self._response.release()

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.content.iter_any():
            yield chunk

    async def aclose(self) -> None:
        self._response.release()  # back to the pool if the body was read, closed if not


class Upstreams:
    """Pooled HTTP clients per upstream, retries only for idempotent methods.

    A hub component ("upstreams"): degraded, naming them, while circuits are open; its stop
    closes the pool. The circuits are exported as `aitrading_api_gateway_upstream_circuit_open`
    (the chart's "breaker open" alert reads it)."""

    name = "upstreams"
    depends_on: tuple[str, ...] = ()
    critical = False  # an upstream down only fails its own routes (503 naming it)

    def __init__(
        self,
        urls: dict[str, str],
        timeout_s: float,
        retries: int = 2,
        identity: ServiceIdentity | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.urls = urls
        self._identity = identity
        self.tls = verify
        self._retries = retries
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=min(2.0, timeout_s), sock_read=timeout_s
        )
        self.breakers = {name: CircuitBreaker() for name in urls}
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # made on first use: a session belongs to a running loop
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=200, ssl=self.tls),
                timeout=self._timeout,
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            )
        return self._session

    async def send(
        self,
        service: str,
        method: str,
        path: str,
        query: bytes,
        headers: dict[str, str],
        body: bytes,
    ) -> UpstreamResponse:
        breaker = self.breakers[service]
        if not breaker.allow():
            raise UpstreamUnavailableError(service, "circuit open after repeated failures")
        attempts = 1 + (self._retries if method in IDEMPOTENT else 0)
        headers = {k: v for k, v in headers.items() if k.lower() != SERVICE_TOKEN_HEADER}
        if self._identity is not None:  # the gateway's own identity, never the caller's
            headers.update(self._identity.headers_for(service))
        url = URL(self.urls[service] + path + (f"?{query.decode()}" if query else ""), encoded=True)
        last = "no answer"
        for attempt in range(attempts):
            try:
                response = await self._client().request(
                    method, url, headers=headers, data=body or None, allow_redirects=False
                )
            except (TimeoutError, aiohttp.ClientError) as exc:
                last = type(exc).__name__
                continue
            if response.status >= 500 and attempt + 1 < attempts:
                response.release()  # idempotent: try again
                last = f"HTTP {response.status}"
                continue
            if response.status >= 500:
                breaker.failure()
            else:
                breaker.success()
            return UpstreamResponse(
                service, response.status, list(response.headers.items()), response
            )
        breaker.failure()
        raise UpstreamUnavailableError(service, last)

    def export(self, registry: CollectorRegistry) -> None:
        circuit_open = Gauge(
            "aitrading_api_gateway_upstream_circuit_open",
            "1 while the gateway's circuit to an upstream is open or half-open (its routes"
            " answer 503 naming it)",
            ["upstream"],
            registry=registry,
        )
        for name, breaker in self.breakers.items():
            circuit_open.labels(name).set_function(_is_open(breaker))

    async def start(self) -> None:
        """The pool is made on first use, inside the running loop."""

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def health(self) -> Health:
        open_ = [n for n, b in self.breakers.items() if b.state is not BreakerState.CLOSED]
        if open_:
            return Health.degraded(f"circuit open: {', '.join(open_)}")
        return Health.healthy("all circuits closed")


def _is_open(breaker: CircuitBreaker) -> Callable[[], float]:
    return lambda: 0.0 if breaker.state is BreakerState.CLOSED else 1.0
