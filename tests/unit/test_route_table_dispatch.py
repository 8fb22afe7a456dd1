"""The route table's requests are proxied ahead of FastAPI's router, everything else is left
to FastAPI, and what a caller and the metrics see does not change.

The gateway runs here without its stores (its lifespan is not started), so a proxied route
refuses at its first check that needs them: which code answered is visible in the answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.types import Receive, Scope, Send

from aitrading.core.infrastructure.config_manager import load_settings
from aitrading.services.api_gateway.app import create_app
from aitrading.services.api_gateway.route_table_dispatch import RouteTableDispatch
from aitrading.services.api_gateway.routers.proxy import catch_all_routes

STARTING = "the api-gateway is starting: stores not ready"


def _gateway(tmp_path: Path, registry: CollectorRegistry) -> FastAPI:
    settings = load_settings(environ={"AITRADING_DATA_DIR": str(tmp_path)}).settings
    return create_app(settings, registry=registry)


class _Recorder:
    """The app behind the dispatch: records which paths reached it, answers 204."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append(f"{scope['method']} {scope['path']}")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _dispatch_before(app: FastAPI, recorder: _Recorder) -> Any:
    dispatch = RouteTableDispatch(recorder, app.state.gateway, catch_all_routes())

    async def with_app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = app  # as Starlette sets it for everything inside it
        await dispatch(scope, receive, send)

    return with_app


def test_the_dispatch_is_the_innermost_middleware(tmp_path: Path) -> None:
    """Inside the door's limits and the request context, so both still apply to it."""
    app = _gateway(tmp_path, CollectorRegistry())
    innermost: Any = app.user_middleware[-1].cls
    assert innermost is RouteTableDispatch


async def test_route_table_paths_are_answered_without_the_app_behind(tmp_path: Path) -> None:
    app = _gateway(tmp_path, CollectorRegistry())
    recorder = _Recorder()
    transport = httpx.ASGITransport(app=_dispatch_before(app, recorder))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        proxied = await http.get("/api/v1/market/ticks", params={"symbol": "EURUSD"})
        wrong_method = await http.post("/api/v1/market/ticks")
        assert recorder.paths == []
        for method, path in [
            ("GET", "/api/v1/nowhere"),  # outside the table: FastAPI's 404
            ("HEAD", "/api/v1/market/ticks"),  # a method the catch-all does not take
            ("GET", "/api/v1/chains"),  # a route of its own
            ("GET", "/health/live"),
        ]:
            assert (await http.request(method, path)).status_code == 204
    assert recorder.paths == [
        "GET /api/v1/nowhere",
        "HEAD /api/v1/market/ticks",
        "GET /api/v1/chains",
        "GET /health/live",
    ]
    assert proxied.status_code == 503
    assert proxied.json()["error"]["message"] == STARTING
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/v1/market/ticks", 503, "unavailable"),
        ("POST", "/api/v1/market/ticks", 405, "method_not_allowed"),
        ("GET", "/api/v1/nowhere", 404, "not_found"),  # FastAPI's catch-all, as before
        ("HEAD", "/api/v1/market/ticks", 405, "method_not_allowed"),
    ],
)
async def test_answers_and_route_template_are_those_of_the_catch_all(
    tmp_path: Path, method: str, path: str, status: int, code: str
) -> None:
    registry = CollectorRegistry()
    app = _gateway(tmp_path, registry)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        answer = await http.request(method, path)
    assert answer.status_code == status
    if method != "HEAD":
        assert answer.json()["error"]["code"] == code
    assert answer.headers["x-request-id"]  # the request context still wraps it
    observed = registry.get_sample_value(
        "aitrading_api_gateway_http_request_duration_seconds_count",
        {"method": method, "route": "/api/v1/{rest:path}", "status": str(status)},
    )
    assert observed == 1.0


def test_every_openapi_operation_has_an_id_of_its_own(tmp_path: Path) -> None:
    """The catch-all is one route per method: a route with several methods gave each of
    them the same operation id, which breaks generated clients."""
    schema = _gateway(tmp_path, CollectorRegistry()).openapi()
    ids = [op["operationId"] for path in schema["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    assert {"proxy_get", "proxy_post", "proxy_delete"} <= set(ids)
