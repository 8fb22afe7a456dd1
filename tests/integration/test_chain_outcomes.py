"""Call-chain statistics are the platform's, not one replica's: every gateway writes its
windows through database-service and reads the sums, which outlive the gateways."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from aitrading.core.infrastructure.central_hub import HealthStatus
from aitrading.core.infrastructure.latency_histogram import BUCKETS
from aitrading.services.api_gateway.tracing import ChainRegistry, ChainsUnavailableError

from .conftest import free_port

pytestmark = pytest.mark.integration


async def test_two_replicas_add_up_and_the_sums_outlive_them(stack: dict[str, Any]) -> None:
    since_ms = int(time.time() * 1000)
    first, second = ChainRegistry(stack["dbs"]), ChainRegistry(stack["dbs"])
    for _ in range(3):
        first.record("GET", "/api/v1/market/ohlcv", "database-service", True, 3.0)
    second.record("GET", "/api/v1/market/ohlcv", "database-service", False, 700.0)
    await first.flush()
    await second.flush()
    (ohlcv,) = [
        c for c in await first.report(since_ms=since_ms) if c["id"] == "get-api-v1-market-ohlcv"
    ]
    assert (ohlcv["requests"], ohlcv["replicas"], ohlcv["error_rate"]) == (4, 2, 0.25)
    assert ohlcv["status"] == "unhealthy"
    assert ohlcv["latency_p99_ms"] == 1000  # the bucket the 700 ms request fell in
    assert ohlcv["name"] == "GET /api/v1/market/ohlcv"  # its definition, registered once
    assert ohlcv["services"] == ["api-gateway", "database-service"]
    await first.stop()
    await second.stop()
    restarted = ChainRegistry(stack["dbs"])  # a new replica, or the same after a restart
    (again,) = [c for c in await restarted.report(since_ms=since_ms) if c["id"] == ohlcv["id"]]
    assert again == ohlcv
    await restarted.stop()


async def test_a_window_written_twice_counts_once_and_bad_windows_are_refused(
    stack: dict[str, Any],
) -> None:
    window = {
        "replica": "gw-retry",
        "window_end_ms": int(time.time() * 1000),
        "outcomes": [
            {
                "chain_id": "get-api-v1-retried",
                "requests": 2,
                "errors": 0,
                "latency_buckets": [2] + [0] * (BUCKETS - 1),
            }
        ],
    }
    async with httpx.AsyncClient(base_url=stack["dbs"]) as dbs:
        first = await dbs.post("/api/v1/chain-outcomes", json=window)
        retried = await dbs.post("/api/v1/chain-outcomes", json=window)
        assert (first.status_code, first.json()) == (201, {"stored": 1})
        assert retried.json() == {"stored": 0}  # the retry of a flush that timed out
        bad = dict(window, outcomes=[dict(window["outcomes"][0], errors=3)])
        assert (await dbs.post("/api/v1/chain-outcomes", json=bad)).status_code == 422
        uneven = dict(window, outcomes=[dict(window["outcomes"][0], latency_buckets=[1])])
        assert (await dbs.post("/api/v1/chain-outcomes", json=uneven)).status_code == 422


async def test_while_database_service_is_away_the_window_is_kept() -> None:
    registry = ChainRegistry(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    registry.record("GET", "/api/v1/orders", "trading-engine", True, 5.0)
    with pytest.raises(ChainsUnavailableError, match="database-service unreachable"):
        await registry.flush()
    health = await registry.health()
    assert health.status is HealthStatus.DEGRADED
    assert "not persisted" in health.reason
    registry.record("GET", "/api/v1/orders", "trading-engine", True, 5.0)
    with pytest.raises(ChainsUnavailableError):
        await registry.flush()
    assert registry._window["get-api-v1-orders"].requests == 2  # kept, merged, not lost
    await registry.stop()
