"""Answers pass through the gateway byte for byte, whichever way it sends them.

A small answer with a declared size is read whole and sent as one response; a chunked one or
one over `BUFFERED_BODY_BYTES` is streamed. Both keep the upstream's encoding, and an upstream
that dies in the middle of a small body is a precise 503, never a truncated 200.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from aitrading.core.infrastructure.config_manager import Settings, load_settings
from aitrading.services.api_gateway.app import create_app as gateway_app
from aitrading.services.api_gateway.routers.proxy import BUFFERED_BODY_BYTES
from aitrading.services.api_gateway.routing import Access, Route

from .conftest import env_for, free_port
from .servers import serving

pytestmark = pytest.mark.integration

SMALL = gzip.compress(b'{"ticks": []}' * 50)
LARGE = hashlib.sha256(b"seed").digest() * (3 * BUFFERED_BODY_BYTES // 32)  # 3x the limit


async def _small(_: web.Request) -> web.Response:
    return web.Response(
        body=SMALL, content_type="application/json", headers={"Content-Encoding": "gzip"}
    )


async def _chunked(request: web.Request) -> web.StreamResponse:
    answer = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    answer.enable_chunked_encoding()
    await answer.prepare(request)
    for start in range(0, len(LARGE), 64 * 1024):
        await answer.write(LARGE[start : start + 64 * 1024])
    await answer.write_eof()
    return answer


async def _declared_large(_: web.Request) -> web.Response:
    return web.Response(body=LARGE, content_type="application/octet-stream")


async def _dies_mid_body(request: web.Request) -> web.StreamResponse:
    answer = web.StreamResponse(headers={"Content-Length": "1000"})
    await answer.prepare(request)
    await answer.write(b"0123456789")
    assert request.transport is not None
    request.transport.close()  # 990 bytes short
    return answer


async def _ready(_: web.Request) -> web.Response:
    return web.json_response({"status": "ready"})


@pytest.fixture
async def through_gateway(
    settings: Settings, key_file: Path, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    del key_file
    upstream_app = web.Application()
    upstream_app.add_routes(
        [
            web.get("/health/ready", _ready),
            web.get("/small", _small),
            web.get("/chunked", _chunked),
            web.get("/declared-large", _declared_large),
            web.get("/dies", _dies_mid_body),
        ]
    )
    upstream = TestServer(upstream_app, host="127.0.0.1", port=free_port())
    await upstream.start_server()
    gw_port = free_port()
    env = env_for(settings, tmp_path, free_port(), free_port())
    env["AITRADING_SERVICES_API_GATEWAY_PORT"] = str(gw_port)
    config = load_settings(environ=env).settings
    routes = (Route("/api/v1/echo", "echo", "", access=Access.PUBLIC),)
    app = gateway_app(
        config, CollectorRegistry(), routes=routes, urls={"echo": str(upstream.make_url(""))}
    )
    try:
        async with (
            serving(app, gw_port),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw_port}", timeout=20) as http,
        ):
            yield http
    finally:
        await upstream.close()


async def _raw(http: httpx.AsyncClient, path: str) -> tuple[httpx.Response, bytes]:
    async with http.stream("GET", path) as answer:
        return answer, b"".join([chunk async for chunk in answer.aiter_raw()])


async def test_a_small_answer_keeps_its_bytes_and_encoding(through_gateway: Any) -> None:
    answer, body = await _raw(through_gateway, "/api/v1/echo/small")
    assert answer.status_code == 200
    assert answer.headers["content-encoding"] == "gzip"
    assert answer.headers["content-length"] == str(len(SMALL))  # sent whole, not chunked
    assert body == SMALL


@pytest.mark.parametrize("path", ["/api/v1/echo/chunked", "/api/v1/echo/declared-large"])
async def test_large_and_chunked_answers_stream_through_intact(
    through_gateway: Any, path: str
) -> None:
    answer, body = await _raw(through_gateway, path)
    assert answer.status_code == 200
    assert answer.headers.get("transfer-encoding") == "chunked"  # streamed, not buffered
    assert hashlib.sha256(body).digest() == hashlib.sha256(LARGE).digest()


async def test_an_upstream_dying_mid_body_is_a_503_not_a_short_200(through_gateway: Any) -> None:
    answer = await through_gateway.get("/api/v1/echo/dies")
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "upstream_unavailable"
    assert "echo" in answer.json()["error"]["message"]
