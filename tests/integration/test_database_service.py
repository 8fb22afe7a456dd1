"""database-service over HTTP against the real embedded PostgreSQL, redis-server and chdb."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from aitrading.core.infrastructure.config_manager import Settings, load_settings
from aitrading.core.infrastructure.error_handler import ErrorDNA
from aitrading.core.stores.clickhouse import ClickHouseStore
from aitrading.core.stores.embedded import EmbeddedPostgres
from aitrading.services.database_service.app import create_app

from .conftest import free_port

pytestmark = pytest.mark.integration

NOW_MSC = int(time.time() * 1000) // 60_000 * 60_000 - 10 * 60_000  # a whole minute, 10 min ago


def settings_env(settings: Settings) -> dict[str, str]:
    return {
        "AITRADING_DATA_DIR": str(settings.data_dir),
        "AITRADING_POSTGRES_PORT": str(settings.postgres.port),
        "AITRADING_REDIS_PORT": str(settings.redis.port),
        "AITRADING_HUB_HEALTH_INTERVAL_S": "0.2",
    }


async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dbs") as client:
            yield client


@pytest.fixture
async def api(settings: Settings, clickhouse: ClickHouseStore) -> AsyncIterator[httpx.AsyncClient]:
    """The service on the session's stores (chdb is one path per process: shared)."""
    del clickhouse
    app = create_app(load_settings(environ=settings_env(settings)).settings, CollectorRegistry())
    async for client in running(app):
        yield client


def tick(symbol: str, offset_ms: int, seq: int, bid: float = 1.1, **changes: Any) -> dict[str, Any]:
    body = {
        "source": "mt5-demo",
        "symbol": symbol,
        "time_msc": NOW_MSC + offset_ms,
        "sequence": seq,
        "bid": bid,
        "ask": bid + 0.0002,
        "last": 0.0,
        "volume": 1,
        "volume_real": 1.0,
        "flags": 6,
    }
    body.update(changes)
    return body


def symbol() -> str:
    return f"T{uuid.uuid4().hex[:8].upper()}"


async def test_batch_is_idempotent_by_tick_identity(api: httpx.AsyncClient) -> None:
    sym = symbol()
    batch = {"ticks": [tick(sym, i * 100, i) for i in range(5)]}
    first = await api.post("/api/v1/ticks/batch", json=batch)
    assert first.status_code == 200, first.text
    assert first.json() == {"received": 5, "new": 5, "duplicates": 0}
    again = await api.post("/api/v1/ticks/batch", json=batch)
    assert again.json() == {"received": 5, "new": 0, "duplicates": 5}
    overlap = {"ticks": [tick(sym, 400, 4), tick(sym, 500, 5), tick(sym, 500, 5)]}
    assert (await api.post("/api/v1/ticks/batch", json=overlap)).json() == {
        "received": 3,
        "new": 1,
        "duplicates": 2,
    }
    page = await api.get(
        "/api/v1/ticks", params={"symbol": sym, "start": NOW_MSC, "end": NOW_MSC + 60_000}
    )
    stored = page.json()["ticks"]
    assert [t["sequence"] for t in stored] == [0, 1, 2, 3, 4, 5]


async def test_paging_with_cursor(api: httpx.AsyncClient) -> None:
    sym = symbol()
    await api.post("/api/v1/ticks/batch", json={"ticks": [tick(sym, i, i) for i in range(7)]})
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {
            "symbol": sym,
            "start": NOW_MSC,
            "end": NOW_MSC + 1000,
            "limit": 3,
        }
        if cursor:
            params["cursor"] = cursor
        body = (await api.get("/api/v1/ticks", params=params)).json()
        seen += [t["sequence"] for t in body["ticks"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == list(range(7))
    bad = await api.get(
        "/api/v1/ticks", params={"symbol": sym, "start": 0, "end": 1, "cursor": "bm90LWEtY3Vyc29y"}
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "validation_failed"


@pytest.mark.parametrize("path", ["/api/v1/ticks", "/api/v1/ohlcv"])
async def test_a_range_beyond_what_clickhouse_holds_is_a_422_not_a_500(
    api: httpx.AsyncClient, path: str
) -> None:
    """Found by schemathesis: an `end` beyond Int64 reached ClickHouse and came back as 500."""
    for end in (130530109188156912593534976, 10_413_792_000_000):
        answer = await api.get(
            path, params={"symbol": "EURUSD", "timeframe": "1m", "start": 0, "end": end}
        )
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["code"] == "validation_failed"
    fine = await api.get(
        path, params={"symbol": "EURUSD", "timeframe": "1m", "start": 0, "end": 10_413_791_999_999}
    )
    assert fine.status_code == 200, fine.text


async def test_malformed_batch_lists_each_bad_item_and_stores_nothing(
    api: httpx.AsyncClient,
) -> None:
    sym = symbol()
    missing_bid = tick(sym, 5, 5)
    del missing_bid["bid"]
    batch = {
        "ticks": [
            tick(sym, 0, 0),
            tick(sym, 1, 1, bid=1.2, ask=1.1),  # ask below bid
            tick(sym, 2, 2, bid=-1.0),  # negative price
            tick("bad symbol!", 3, 3),  # symbol format
            tick(sym, 4, 4, time_msc=12),  # before 2000
            missing_bid,  # missing field
            tick(sym, 6, 6, flags=-1),  # flags out of range
        ]
    }
    answer = await api.post("/api/v1/ticks/batch", json=batch)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "validation_failed"
    assert error["request_id"]
    assert "nothing was stored" in error["message"]
    by_index: dict[int, list[str]] = {}
    for detail in error["details"]:
        by_index.setdefault(detail["index"], []).append(detail["reason"])
    assert sorted(by_index) == [1, 2, 3, 4, 5, 6]
    assert "ask 1.1 is below bid 1.2" in " ".join(by_index[1])
    page = await api.get(
        "/api/v1/ticks", params={"symbol": sym, "start": NOW_MSC, "end": NOW_MSC + 1000}
    )
    assert page.json()["ticks"] == []


async def test_non_finite_prices_are_refused(api: httpx.AsyncClient) -> None:
    raw = (
        '{"ticks": [{"source": "s", "symbol": "EURUSD", "time_msc": NOW, "sequence": 1,'
        ' "bid": NaN, "ask": Infinity}]}'.replace("NOW", str(NOW_MSC))
    )
    answer = await api.post(
        "/api/v1/ticks/batch", content=raw, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 422


async def test_ohlcv_bars_from_the_materialised_view(api: httpx.AsyncClient) -> None:
    sym = symbol()
    ticks = [
        tick(sym, 1_000, 1, bid=1.10),
        tick(sym, 20_000, 2, bid=1.15),
        tick(sym, 40_000, 3, bid=1.05),
        tick(sym, 59_000, 4, bid=1.12),
        tick(sym, 61_000, 5, bid=1.20),
        tick(sym, 62_000, 6, bid=1.18),
    ]
    await api.post("/api/v1/ticks/batch", json={"ticks": ticks[::-1]})  # order must not matter
    params = {"symbol": sym, "start": NOW_MSC, "end": NOW_MSC + 120_000}
    one = (await api.get("/api/v1/ohlcv", params={**params, "timeframe": "1m"})).json()["bars"]
    assert [(b["open"], b["high"], b["low"], b["close"], b["ticks"]) for b in one] == [
        (1.10, 1.15, 1.05, 1.12, 4),
        (1.20, 1.20, 1.18, 1.18, 2),
    ]
    five = (await api.get("/api/v1/ohlcv", params={**params, "timeframe": "1h"})).json()["bars"]
    assert len(five) == 1
    assert (five[0]["open"], five[0]["high"], five[0]["low"], five[0]["close"]) == (
        1.10,
        1.20,
        1.05,
        1.18,
    )
    bad = await api.get("/api/v1/ohlcv", params={**params, "timeframe": "7m"})
    assert bad.status_code == 422


async def test_account_snapshots(api: httpx.AsyncClient) -> None:
    login = int(uuid.uuid4().int % 10**9) + 1
    snapshot = {
        "source": "mt5-demo",
        "login": login,
        "time_msc": NOW_MSC,
        "currency": "USD",
        "leverage": 100,
        "balance": 10_000.0,
        "equity": 10_050.5,
        "margin": 120.0,
        "margin_free": 9_930.5,
        "margin_level": 8375.4,
        "profit": 50.5,
    }
    later = {**snapshot, "time_msc": NOW_MSC + 1000, "equity": 10_060.0}
    stored = await api.post("/api/v1/accounts/snapshots", json={"snapshots": [snapshot, later]})
    assert stored.status_code == 201
    latest = (await api.get(f"/api/v1/accounts/{login}/snapshots")).json()
    assert [s["equity"] for s in latest] == [10_060.0, 10_050.5]


async def test_chain_definitions_crud(api: httpx.AsyncClient) -> None:
    name = f"tick ingest {uuid.uuid4().hex[:6]}"
    body = {
        "name": name,
        "entry_service": "api-gateway",
        "sla_p99_ms": 50,
        "steps": [
            {"service": "data-bridge", "operation": "ws.ticks"},
            {"service": "database-service", "operation": "POST /ticks/batch"},
        ],
    }
    created = await api.post("/api/v1/chains", json=body)
    assert created.status_code == 201, created.text
    chain = created.json()
    assert chain["version"] == 1
    assert (await api.post("/api/v1/chains", json=body)).status_code == 409
    replaced = await api.put(f"/api/v1/chains/{chain['id']}", json={**body, "sla_p99_ms": 80})
    assert replaced.json()["version"] == 2
    assert (await api.get(f"/api/v1/chains/{chain['id']}")).json()["sla_p99_ms"] == 80
    assert chain["id"] in [c["id"] for c in (await api.get("/api/v1/chains")).json()]
    assert (await api.delete(f"/api/v1/chains/{chain['id']}")).status_code == 204
    missing = await api.get(f"/api/v1/chains/{chain['id']}")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    bad = await api.post("/api/v1/chains", json={**body, "steps": []})
    assert bad.status_code == 422


def _raise_at(where: str) -> BaseException:
    try:
        raise TimeoutError(f"mt5 terminal did not answer {where}")
    except TimeoutError as exc:
        return exc


async def test_error_occurrences_group_and_need_weaviate_for_similarity(
    api: httpx.AsyncClient,
) -> None:
    dna = ErrorDNA(f"svc-{uuid.uuid4().hex[:6]}", in_app_prefixes=("tests",))
    occurrence = dna.analyze(_raise_at("in 5 s"))
    body = {**occurrence.__dict__, "category": occurrence.category.value}
    first = await api.post("/api/v1/error-groups/occurrences", json=body)
    assert first.status_code == 200, first.text
    second = await api.post("/api/v1/error-groups/occurrences", json=body)
    assert second.json()["count"] == 2
    assert second.json()["retryable"] is True
    listed = (await api.get("/api/v1/error-groups", params={"service": dna.service})).json()
    assert [g["fingerprint"] for g in listed] == [occurrence.fingerprint]
    forged = await api.post(
        "/api/v1/error-groups/occurrences", json={**body, "fingerprint": "0" * 32}
    )
    assert forged.status_code == 422
    similar = await api.get(f"/api/v1/error-groups/{occurrence.fingerprint}/similar")
    assert similar.status_code == 503
    assert "AITRADING_WEAVIATE_URL" in similar.json()["error"]["message"]


async def test_health_metrics_and_openapi(api: httpx.AsyncClient) -> None:
    ready = await api.get("/health/ready")
    assert ready.status_code == 200
    components = ready.json()["components"]
    assert {"postgres", "redis", "clickhouse"} <= set(components)
    await api.get("/api/v1/chains")
    metrics = (await api.get("/metrics")).text
    assert (
        'aitrading_database_service_pool_connections{database="postgres",state="idle"}' in metrics
    )
    assert 'aitrading_database_service_query_duration_seconds_count{database="postgres"' in metrics
    assert "aitrading_database_service_http_request_duration_seconds_bucket" in metrics
    spec = (await api.get("/openapi.json")).json()
    for path in (
        "/api/v1/ticks/batch",
        "/api/v1/ticks",
        "/api/v1/ohlcv",
        "/api/v1/chains",
        "/api/v1/chains/{chain_id}",
        "/api/v1/accounts/snapshots",
        "/api/v1/error-groups",
        "/api/v1/error-groups/{fingerprint}/similar",
    ):
        assert path in spec["paths"], path
    assert all(op.get("summary") for item in spec["paths"].values() for op in item.values())


async def test_a_database_that_is_down_answers_503_and_the_rest_keeps_serving(
    settings: Settings, clickhouse: ClickHouseStore
) -> None:
    del clickhouse
    env = settings_env(settings)
    dead = EmbeddedPostgres(settings).dsn().rsplit("@", 1)[0] + f"@127.0.0.1:{free_port()}/x"
    env["AITRADING_POSTGRES_DSN"] = dead
    app = create_app(load_settings(environ=env).settings, CollectorRegistry())
    async for api in running(app):
        chains = await api.get("/api/v1/chains")
        assert chains.status_code == 503
        assert chains.json()["error"]["message"].startswith("postgres is unavailable")
        sym = symbol()
        stored = await api.post("/api/v1/ticks/batch", json={"ticks": [tick(sym, 0, 0)]})
        assert stored.status_code == 200
        ready = await api.get("/health/ready")
        # still in its Service: ticks are served; PostgreSQL is shared by every replica
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert ready.json()["components"]["postgres"]["status"] == "unhealthy"
        assert "cannot connect" in ready.json()["components"]["postgres"]["reason"]
        assert dead.split(":")[2].split("@")[0] not in ready.text  # the password never leaks


async def test_weaviate_similarity_for_real(
    settings: Settings, clickhouse: ClickHouseStore, weaviate_env: dict[str, str]
) -> None:
    del clickhouse
    app = create_app(
        load_settings(environ={**settings_env(settings), **weaviate_env}).settings,
        CollectorRegistry(),
    )
    async for api in running(app):
        dna = ErrorDNA(f"svc-{uuid.uuid4().hex[:6]}", in_app_prefixes=("tests",))
        timeout_a = dna.analyze(_raise_at("in 5 s"))
        timeout_b = dna.analyze(_nested_timeout())
        unrelated = dna.analyze(KeyError("order book level missing"))
        for occurrence in (timeout_a, timeout_b, unrelated):
            body = {**occurrence.__dict__, "category": occurrence.category.value}
            assert (
                await api.post("/api/v1/error-groups/occurrences", json=body)
            ).status_code == 200
        similar = await api.get(f"/api/v1/error-groups/{timeout_a.fingerprint}/similar")
        assert similar.status_code == 200, similar.text
        ranked = [g["fingerprint"] for g in similar.json()]
        assert ranked[:2] == [timeout_b.fingerprint, unrelated.fingerprint]
        assert similar.json()[0]["distance"] < similar.json()[1]["distance"]


async def test_similarity_for_a_group_weaviate_never_saw_is_404_not_500(
    settings: Settings, clickhouse: ClickHouseStore, weaviate_env: dict[str, str]
) -> None:
    """Recorded while Weaviate was not configured (or down): PostgreSQL has the group,
    Weaviate does not. Asking for similar groups says so instead of failing."""
    del clickhouse
    dna = ErrorDNA(f"svc-{uuid.uuid4().hex[:6]}", in_app_prefixes=("tests",))
    occurrence = dna.analyze(KeyError(f"missing {uuid.uuid4().hex}"))
    body = {**occurrence.__dict__, "category": occurrence.category.value}
    without = create_app(
        load_settings(environ=settings_env(settings)).settings, CollectorRegistry()
    )
    async for api in running(without):
        assert (await api.post("/api/v1/error-groups/occurrences", json=body)).status_code == 200
    with_weaviate = create_app(
        load_settings(environ={**settings_env(settings), **weaviate_env}).settings,
        CollectorRegistry(),
    )
    async for api in running(with_weaviate):
        similar = await api.get(f"/api/v1/error-groups/{occurrence.fingerprint}/similar")
        assert similar.status_code == 404, similar.text
        assert "no vector yet" in similar.json()["error"]["message"]


def _nested_timeout() -> BaseException:
    def inner() -> None:
        raise TimeoutError("mt5 terminal did not answer in 9 s")

    try:
        inner()
    except TimeoutError as exc:
        return exc
    raise AssertionError


def test_db_migrate_cli_is_idempotent(settings: Settings, tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "AITRADING_DATA_DIR": str(tmp_path),  # a fresh chdb path: the session's is in use here
        "AITRADING_POSTGRES_DSN": EmbeddedPostgres(settings).dsn(),
        "COLUMNS": "200",
    }
    command = [sys.executable, "-m", "aitrading.cli", "db", "migrate"]
    first = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert first.returncode == 0, first.stderr
    assert "applied clickhouse 0001 ticks" in first.stdout
    assert "applied clickhouse 0004 logs" in first.stdout
    second = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert second.returncode == 0, second.stderr
    assert "0 migration(s) applied" in second.stdout
