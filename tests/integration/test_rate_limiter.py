"""GCRA rate limiting through the real redis-server, across processes, and without Redis."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from aitrading.core.infrastructure.central_hub import HealthStatus
from aitrading.core.infrastructure.config_manager import Settings
from aitrading.core.security.rate_limiter import (
    AUTHENTICATION,
    FailureMode,
    Limit,
    Policy,
    RateLimiter,
    Scope,
)
from aitrading.core.stores.redis_store import RedisStore, redis_url

from .conftest import free_port

pytestmark = pytest.mark.integration

WORKER = """
import asyncio, json, sys
import redis.asyncio as aioredis
from aitrading.core.security.rate_limiter import FailureMode, Limit, Policy, RateLimiter, Scope

async def main():
    client = aioredis.from_url(sys.argv[1])
    limiter = RateLimiter(client)
    policy = Policy(sys.argv[2], {"free": Limit(50, 60)}, FailureMode.CLOSED)
    await client.ping()
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    allowed = 0
    for _ in range(100):
        allowed += (await limiter.hit(policy, Scope.USER, "shared-user")).allowed
    print(json.dumps({"allowed": allowed}))
    await client.aclose()

asyncio.run(main())
"""


def test_two_processes_share_one_limit_within_one(
    redis_store: RedisStore, settings: Settings
) -> None:
    url = redis_url(settings)
    policy_name = f"shared-{uuid.uuid4().hex[:8]}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, policy_name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for proc in procs:  # both connected and waiting ...
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    for proc in procs:  # ... then both go at once
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    allowed = [json.loads(out)["allowed"] for out in outputs]
    assert all(a > 0 for a in allowed), allowed  # both processes took part
    assert abs(sum(allowed) - 50) <= 1, allowed


async def test_retry_after_is_the_time_until_the_next_allowed_request(
    redis_store: RedisStore,
) -> None:
    limiter = RateLimiter(redis_store.client)
    policy = Policy(f"retry-{uuid.uuid4().hex[:8]}", {"free": Limit(5, 1.0)}, FailureMode.CLOSED)
    decisions = [await limiter.hit(policy, Scope.IP, "203.0.113.9") for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    refused = decisions[-1]
    assert 0.1 < refused.retry_after_s <= 0.2 + 0.02  # one emission interval (1 s / 5)
    assert refused.retry_after_header == "1"
    await asyncio.sleep(refused.retry_after_s + 0.02)  # waiting *is* the behaviour under test
    assert (await limiter.hit(policy, Scope.IP, "203.0.113.9")).allowed


async def test_limits_are_per_tier_and_per_identity(redis_store: RedisStore) -> None:
    limiter = RateLimiter(redis_store.client)
    policy = Policy(
        f"tiers-{uuid.uuid4().hex[:8]}",
        {"free": Limit(2, 60), "pro": Limit(5, 60)},
        FailureMode.CLOSED,
    )

    async def allowed(identity: str, tier: str) -> int:
        return sum(
            [(await limiter.hit(policy, Scope.USER, identity, tier)).allowed for _ in range(8)]
        )

    assert await allowed("alice", "free") == 2
    assert await allowed("bob", "pro") == 5
    assert await allowed("carol", "unknown-tier") == 2  # unknown tiers get the default


async def test_without_redis_auth_fails_closed_and_market_data_falls_back_visibly() -> None:
    dead = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    registry = CollectorRegistry()
    limiter = RateLimiter(dead, registry)
    market = Policy("md", {"free": Limit(3, 60)}, FailureMode.OPEN)

    auth = await limiter.hit(AUTHENTICATION, Scope.IP, "198.51.100.1")
    assert not auth.allowed
    assert auth.backend == "unavailable"

    results = [await limiter.hit(market, Scope.USER, "u") for _ in range(5)]
    assert [r.allowed for r in results] == [True, True, True, False, False]
    assert {r.backend for r in results} == {"fallback"}

    health = limiter.health()
    assert health.status is HealthStatus.DEGRADED
    assert "auth" in health.reason
    assert "md" in health.reason
    assert registry.get_sample_value("aitrading_ratelimit_fallback_active", {"policy": "md"}) == 1
    assert (
        registry.get_sample_value(
            "aitrading_ratelimit_decisions_total",
            {"policy": "md", "outcome": "refused", "backend": "fallback"},
        )
        == 2
    )
    await dead.aclose()


async def test_recovery_clears_the_fallback(redis_store: RedisStore) -> None:
    registry = CollectorRegistry()
    limiter = RateLimiter(redis_store.client, registry)
    policy = Policy(f"rec-{uuid.uuid4().hex[:8]}", {"free": Limit(3, 60)}, FailureMode.OPEN)
    limiter._without_redis(policy, "k", policy.limit_for(None), 1, ConnectionError("down"))
    assert limiter.health().status is HealthStatus.DEGRADED
    assert (await limiter.hit(policy, Scope.USER, "u")).backend == "redis"
    assert limiter.health().status is HealthStatus.HEALTHY
    assert (
        registry.get_sample_value("aitrading_ratelimit_fallback_active", {"policy": policy.name})
        == 0
    )


def test_invalid_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="requests >= 1"):
        Limit(0, 60)
    with pytest.raises(ValueError, match="burst"):
        Limit(5, 60, burst=0)
