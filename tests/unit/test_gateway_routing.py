"""Route matching, circuit breaking and idempotent-only retries, with a stand-in upstream."""

from __future__ import annotations

import httpx
import pytest

from aitrading.services.api_gateway.routing import (
    DEFAULT_ROUTES,
    Upstreams,
    UpstreamUnavailableError,
    match,
)


def test_longest_prefix_wins_and_paths_are_rewritten() -> None:
    route = match(DEFAULT_ROUTES, "/api/v1/db/chains/abc")
    assert route is not None
    assert route.upstream == "database-service"
    assert route.upstream_path("/api/v1/db/chains/abc") == "/api/v1/chains/abc"
    assert match(DEFAULT_ROUTES, "/api/v1/market/tickstream") is None  # no partial segments
    assert match(DEFAULT_ROUTES, "/api/v1/nowhere") is None


async def test_only_idempotent_methods_are_retried() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return httpx.Response(502)

    upstreams = Upstreams(
        {"svc": "http://svc"}, 1.0, retries=2, transport=httpx.MockTransport(handler)
    )
    answer = await upstreams.send("svc", "GET", "/x", b"", {}, b"")
    assert answer.status_code == 502
    assert calls == ["GET", "GET", "GET"]
    calls.clear()
    answer = await upstreams.send("svc", "POST", "/x", b"", {}, b"{}")
    assert calls == ["POST"]  # never replay a non-idempotent request
    await upstreams.close()


async def test_connection_failures_open_the_circuit_and_name_the_service() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    upstreams = Upstreams(
        {"trading-engine": "http://te"}, 1.0, retries=0, transport=httpx.MockTransport(handler)
    )
    for _ in range(5):
        with pytest.raises(UpstreamUnavailableError, match="trading-engine is unavailable"):
            await upstreams.send("trading-engine", "GET", "/", b"", {}, b"")
    with pytest.raises(UpstreamUnavailableError, match="circuit open"):
        await upstreams.send("trading-engine", "GET", "/", b"", {}, b"")
    await upstreams.close()
