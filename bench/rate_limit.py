"""Rate-limit decisions per second against the embedded redis-server (GCRA Lua script).

Baseline in the same run: PING round trips per second over the same client and concurrency —
the floor for any decision that needs one round trip.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _harness import embedded, report, throughput

from aitrading.core.security.rate_limiter import (
    FailureMode,
    Limit,
    Policy,
    RateLimiter,
    Scope,
)
from aitrading.core.stores.redis_store import RedisStore

SECONDS = 2.0
CONCURRENCY = 32


async def main() -> None:
    with embedded(redis=True) as settings:
        store = RedisStore.create(settings)
        limiter = RateLimiter(store.client)
        policy = Policy("bench", {"free": Limit(1_000_000, 1)}, FailureMode.CLOSED)

        async def ping(_: int) -> object:
            return await store.client.ping()

        async def decide(i: int) -> object:
            return await limiter.hit(policy, Scope.USER, f"user-{i % 1000}")

        await throughput(decide, SECONDS, CONCURRENCY)  # warm the script cache
        baseline = await throughput(ping, SECONDS, CONCURRENCY)
        value = await throughput(decide, SECONDS, CONCURRENCY)
        await store.close()
    report(
        "rate_limit",
        f"GCRA decisions/s through redis, {CONCURRENCY} concurrent",
        value,
        "decisions/s",
        baseline,
        "redis PING round trips/s, same concurrency",
    )


if __name__ == "__main__":
    asyncio.run(main())
