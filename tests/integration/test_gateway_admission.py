"""The per-IP limit, the revocation check and the per-user limit of a proxied request in one
Redis call (`admission.py`, `door_limits.py`), through a real gateway on the session's stores:
one call per request, and the same answers, in the same order, as three separate calls."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute, APIWebSocketRoute
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from starlette.types import Receive, Scope, Send

from aitrading.core.infrastructure.config_manager import Settings
from aitrading.core.security.rate_limiter import (
    KEY_PREFIX,
    MARKET_DATA,
    FailureMode,
    Limit,
    Policy,
    RateLimiter,
)
from aitrading.core.stores.clickhouse import ClickHouseStore
from aitrading.core.stores.redis_store import RedisStore
from aitrading.services.api_gateway.app import create_app as gateway_app
from aitrading.services.api_gateway.door_limits import DOOR_REFUSAL, DoorLimits
from aitrading.services.api_gateway.routing import DEFAULT_ROUTES, match

from .conftest import gateway_stack
from .test_api_gateway import accounts, bearer, login

__all__ = ["accounts"]  # the fixture, imported for this module
pytestmark = pytest.mark.integration
TICKS = {"symbol": "EURUSD", "start": 0, "end": 1}


async def _script_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("evalsha", "eval"))


@pytest.fixture
async def small_ip_limit(
    settings: Settings,
    clickhouse: ClickHouseStore,
    key_file: Path,
    tmp_path: Path,
    redis_store: RedisStore,
) -> Any:
    del clickhouse, key_file
    # 60 a minute with bursts of 12: the login and a few requests fit, a loop does not
    async with gateway_stack(
        settings, tmp_path, AITRADING_SECURITY_REQUESTS_PER_IP_PER_MINUTE="60"
    ) as running:
        yield running
    # the session's Redis is shared: the exhausted allowance of 127.0.0.1 would refuse the
    # next tests' gateways (their limit is larger, but the bucket is this one's)
    await redis_store.client.delete(f"{KEY_PREFIX}:ip:ip:127.0.0.1")


async def test_a_verified_token_costs_one_redis_call_per_request(
    gateway: dict[str, Any], accounts: dict[str, Any], redis_store: RedisStore
) -> None:
    http: httpx.AsyncClient = gateway["http"]
    token = (await login(http, accounts["pro"]["email"]))["access_token"]
    assert (await http.get("/api/v1/market/ticks", params=TICKS, headers=bearer(token))).is_success
    before = await _script_calls(redis_store.client)
    for _ in range(20):
        answer = await http.get("/api/v1/market/ticks", params=TICKS, headers=bearer(token))
        assert answer.status_code == 200, answer.text
    # per-IP limit, revocation state and per-user limit: one script call each time (was 3)
    assert await _script_calls(redis_store.client) - before == 20


async def test_the_per_ip_limit_still_refuses_first_with_the_doors_answer(
    small_ip_limit: dict[str, Any], accounts: dict[str, Any]
) -> None:
    http: httpx.AsyncClient = small_ip_limit["http"]
    token = (await login(http, accounts["pro"]["email"]))["access_token"]
    statuses = []
    for _ in range(30):  # well past the burst of 12
        answer = await http.get("/api/v1/market/ticks", params=TICKS, headers=bearer(token))
        statuses.append(answer.status_code)
        if answer.status_code == 429:
            break
    assert statuses[-1] == 429, statuses
    assert set(statuses[:-1]) == {200}
    error = answer.json()["error"]
    assert (error["code"], error["message"]) == ("rate_limited", DOOR_REFUSAL)
    assert int(answer.headers["retry-after"]) >= 1
    # a limited address hears 429 before anything else is looked at, bad tokens included
    forged = await http.get("/api/v1/market/ticks", params=TICKS, headers=bearer(token + "x"))
    assert forged.status_code == 429
    assert (await http.get("/api/v1/market/ticks", params=TICKS)).status_code == 429


async def _decisions(http: httpx.AsyncClient, policy: str) -> float:
    """Rate-limit decisions the gateway took under `policy`, from its /metrics."""
    text = (await http.get("/metrics")).text
    pattern = rf'^aitrading_ratelimit_decisions_total{{[^}}]*policy="{policy}"[^}}]*}} (\S+)$'
    return sum(float(v) for v in re.findall(pattern, text, re.M))


async def test_a_revoked_token_counts_against_its_address_not_its_user(
    gateway: dict[str, Any], accounts: dict[str, Any]
) -> None:
    http: httpx.AsyncClient = gateway["http"]
    token = (await login(http, accounts["pro"]["email"]))["access_token"]
    assert (await http.get("/api/v1/market/ticks", params=TICKS, headers=bearer(token))).is_success
    assert await _decisions(http, MARKET_DATA.name) >= 1, "no per-user decision in /metrics"
    assert (await http.post("/auth/logout", headers=bearer(token))).status_code == 204
    user_before, ip_before = await _decisions(http, MARKET_DATA.name), await _decisions(http, "ip")
    for _ in range(3):
        refused = await http.get("/api/v1/market/ticks", params=TICKS, headers=bearer(token))
        assert refused.status_code == 401
    assert await _decisions(http, MARKET_DATA.name) == user_before  # a revoked token uses none
    # the address is charged, as at the door: the 3 refused requests and the /metrics reads
    assert await _decisions(http, "ip") - ip_before >= 3


async def test_a_deferred_limit_nobody_claimed_is_charged_when_the_request_ends(
    redis_store: RedisStore,
) -> None:
    limiter = RateLimiter(redis_store.client)
    policy = Policy(f"door-{uuid.uuid4().hex[:6]}", {"free": Limit(60, 60)}, FailureMode.CLOSED)
    served: list[str] = []

    async def app_that_does_not_admit(scope: Scope, receive: Receive, send: Send) -> None:
        served.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    door = DoorLimits(app_that_does_not_admit, lambda: limiter, policy, lambda _: True)
    scope: Scope = {
        "type": "http",
        "path": "/api/v1/somewhere",
        "method": "GET",
        "headers": [],
        "client": ("203.0.113.9", 1234),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(_: Any) -> None:
        return None

    key = f"{KEY_PREFIX}:{policy.name}:ip:203.0.113.9"
    await door(scope, receive, send)
    assert served == ["/api/v1/somewhere"]
    assert await redis_store.client.exists(key) == 1


def test_no_route_of_the_gateways_own_is_under_a_proxied_prefix(settings: Settings) -> None:
    """The door defers the per-IP limit by the route table; a gateway route of its own under a
    proxied prefix would be served without the proxy claiming it (charged only afterwards)."""
    app = gateway_app(settings, CollectorRegistry())
    own = [path for path in _paths(app.routes) if path != "/api/v1/{rest:path}"]
    assert "/auth/token" in own  # the walk sees the gateway's own routes
    shadowed = [path for path in own if match(DEFAULT_ROUTES, path) is not None]
    assert not shadowed, f"own routes under a proxied prefix: {shadowed}"


def _paths(routes: list[Any]) -> list[str]:
    found: list[str] = []
    for route in routes:
        if isinstance(route, APIRoute | APIWebSocketRoute):
            found.append(route.path)
        included = getattr(route, "original_router", None)  # FastAPI 0.165's included router
        if isinstance(included, APIRouter):
            found.extend(_paths(included.routes))
    return found


async def test_a_proxied_request_is_a_503_while_redis_is_down_and_served_once_it_is_back(
    settings: Settings,
    clickhouse: ClickHouseStore,
    key_file: Path,
    tmp_path: Path,
    accounts: dict[str, Any],
) -> None:
    """A whole gateway on a Redis of its own, stopped under it: the token's revocation state
    cannot be read, so the request is refused as unavailable (not a 500, never admitted)."""
    from aitrading.core.infrastructure.config_manager import load_settings
    from aitrading.core.stores.embedded import EmbeddedRedis
    from aitrading.core.stores.redis_store import redis_url

    from .conftest import embedded_env

    del clickhouse, key_file
    own = load_settings(environ=embedded_env(tmp_path / "own-redis")).settings
    server = EmbeddedRedis(own)
    server.start()
    try:
        async with gateway_stack(settings, tmp_path, AITRADING_REDIS_URL=redis_url(own)) as running:
            http: httpx.AsyncClient = running["http"]
            token = (await login(http, accounts["pro"]["email"]))["access_token"]
            ticks = {"params": TICKS, "headers": bearer(token)}
            assert (await http.get("/api/v1/market/ticks", **ticks)).status_code == 200
            server.stop()
            refused = await http.get("/api/v1/market/ticks", **ticks)
            assert refused.status_code == 503, refused.text
            error = refused.json()["error"]
            assert error["code"] == "unavailable"
            assert "revocation state unavailable" in error["message"]
            server.start()
            back = await http.get("/api/v1/market/ticks", **ticks)
            assert back.status_code == 200, back.text
    finally:
        server.stop()
