"""Route matching, circuit breaking and idempotent-only retries, against a real loopback
server as the stand-in upstream."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from aitrading.services.api_gateway.routing import DEFAULT_ROUTES, match
from aitrading.services.api_gateway.upstreams import Upstreams, UpstreamUnavailableError


def test_longest_prefix_wins_and_paths_are_rewritten() -> None:
    route = match(DEFAULT_ROUTES, "/api/v1/db/chains/abc")
    assert route is not None
    assert route.upstream == "database-service"
    assert route.upstream_path("/api/v1/db/chains/abc") == "/api/v1/chains/abc"
    assert match(DEFAULT_ROUTES, "/api/v1/market/tickstream") is None  # no partial segments
    assert match(DEFAULT_ROUTES, "/api/v1/nowhere") is None


@contextlib.asynccontextmanager
async def stand_in_upstream(status: int, calls: list[str]) -> AsyncIterator[str]:
    """A real HTTP server on loopback that answers every request with `status`."""

    async def answer(request: web.Request) -> web.Response:
        calls.append(request.method)
        return web.Response(status=status, body=b"upstream says no")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def test_only_idempotent_methods_are_retried() -> None:
    calls: list[str] = []
    async with stand_in_upstream(502, calls) as url:
        upstreams = Upstreams({"svc": url}, 5.0, retries=2)
        answer = await upstreams.send("svc", "GET", "/x", b"", {}, b"")
        assert answer.status_code == 502
        assert b"".join([chunk async for chunk in answer.aiter_raw()]) == b"upstream says no"
        await answer.aclose()
        assert calls == ["GET", "GET", "GET"]
        calls.clear()
        answer = await upstreams.send("svc", "POST", "/x", b"", {}, b"{}")
        await answer.aclose()
        assert calls == ["POST"]  # never replay a non-idempotent request
        await upstreams.stop()


async def test_connection_failures_open_the_circuit_and_name_the_service() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    upstreams = Upstreams({"trading-engine": f"http://127.0.0.1:{port}"}, 5.0, retries=0)
    for _ in range(5):
        with pytest.raises(UpstreamUnavailableError, match="trading-engine is unavailable"):
            await upstreams.send("trading-engine", "GET", "/", b"", {}, b"")
    with pytest.raises(UpstreamUnavailableError, match="circuit open"):
        await upstreams.send("trading-engine", "GET", "/", b"", {}, b"")
    await upstreams.stop()
