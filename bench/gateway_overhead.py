"""Latency the api-gateway adds: p50/p99 through the gateway vs calling the upstream directly.

database-service and the gateway run as their own processes (embedded stores); the same
request (`GET /api/v1/ticks` for an empty range; through the gateway
`/api/v1/market/ticks` with a bearer token — authentication, revocation check, two rate-limit
decisions, entitlements and the proxy hop) is sent at the same concurrency to both, in one run.
The peer, in the same run: nginx from Debian's package as a plain reverse proxy in front of the
same upstream (`_nginx_peer.py`); without nginx installed the JSON says so (`nginx_error`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _harness import embedded, free_port, report, wait_ready
from _nginx_peer import nginx_proxy

REQUESTS = 500
CONCURRENCY = 1


async def latencies(http: httpx.AsyncClient, path: str, headers: dict[str, str]) -> list[float]:
    params = {"symbol": "EURUSD", "start": 0, "end": 1}
    samples: list[float] = []
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def one() -> None:
        async with semaphore:
            started = time.perf_counter()
            answer = await http.get(path, params=params, headers=headers)
            samples.append((time.perf_counter() - started) * 1000)
            answer.raise_for_status()

    await asyncio.gather(*(one() for _ in range(REQUESTS)))
    return samples


async def main() -> None:
    from aitrading.core.infrastructure.config_manager import load_settings
    from aitrading.core.security.subscription_validator import (
        DEFAULT_PLANS,
        SubscriptionValidator,
    )
    from aitrading.core.security.users import UserStore
    from aitrading.core.stores.postgres import PostgresStore
    from aitrading.core.stores.redis_store import RedisStore

    with embedded(postgres=True, redis=True) as settings:
        dbs_port, gw_port = free_port(), free_port()
        env = {
            **os.environ,
            "AITRADING_DATA_DIR": str(settings.data_dir),
            "AITRADING_POSTGRES_PORT": str(settings.postgres.port),
            "AITRADING_REDIS_PORT": str(settings.redis.port),
            "AITRADING_SERVICES_DATABASE_SERVICE_PORT": str(dbs_port),
            "AITRADING_SERVICES_API_GATEWAY_PORT": str(gw_port),
            "AITRADING_SECURITY_REQUESTS_PER_IP_PER_MINUTE": "10000000",
            "AITRADING_LOG_LEVEL": "WARNING",
        }
        config = load_settings(
            environ={k: v for k, v in env.items() if k.startswith("AITRADING_")}
        ).settings
        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-m", "aitrading.cli", "serve", "database-service", env=env
            )
        ]
        await wait_ready(f"http://127.0.0.1:{dbs_port}")
        postgres = await PostgresStore.create(config)
        redis = RedisStore.create(config)
        validator = SubscriptionValidator(postgres.pool, redis.client)
        for plan in DEFAULT_PLANS.values():
            await validator.upsert_plan(plan)
        email = f"bench-{uuid.uuid4().hex[:6]}@example.com"
        user = await UserStore(postgres.pool).create(email, "benchmark password 1")
        await validator.set_subscription(
            {
                "user_id": user.id,
                "plan_id": "enterprise",
                "status": "active",
                "current_period_end": dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
            }
        )
        await postgres.close()
        await redis.close()
        processes.append(
            await asyncio.create_subprocess_exec(
                sys.executable, "-m", "aitrading.cli", "serve", "api-gateway", env=env
            )
        )
        await wait_ready(f"http://127.0.0.1:{gw_port}")
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                token = (
                    await http.post(
                        f"http://127.0.0.1:{gw_port}/auth/token",
                        json={"email": email, "password": "benchmark password 1"},
                    )
                ).json()
                auth = {"authorization": f"Bearer {token['access_token']}"}
                await latencies(http, f"http://127.0.0.1:{dbs_port}/api/v1/ticks", {})  # warm
                direct = await latencies(http, f"http://127.0.0.1:{dbs_port}/api/v1/ticks", {})
                through = await latencies(
                    http, f"http://127.0.0.1:{gw_port}/api/v1/market/ticks", auth
                )
                try:
                    async with nginx_proxy(free_port(), dbs_port) as proxy:
                        await wait_ready(proxy)  # nginx up and proxying
                        await latencies(http, f"{proxy}/api/v1/ticks", {})  # warm
                        nginx: list[float] | None = await latencies(
                            http, f"{proxy}/api/v1/ticks", {}
                        )
                        peer_error = ""
                except (OSError, SystemExit) as exc:  # not installed, or never answered
                    nginx, peer_error = None, f"{type(exc).__name__}: {exc}"
        finally:
            for process in processes:
                process.terminate()
                await process.wait()
    p = [statistics.median, lambda s: statistics.quantiles(s, n=100)[98]]
    direct_p50, direct_p99 = (f(direct) for f in p)
    gw_p50, gw_p99 = (f(through) for f in p)
    peer: dict[str, object] = {"nginx_error": peer_error}
    if nginx is not None:
        nginx_p50, nginx_p99 = (f(nginx) for f in p)
        peer = {
            "nginx_added_p50_ms": round(nginx_p50 - direct_p50, 3),
            "nginx_added_p99_ms": round(nginx_p99 - direct_p99, 3),
            "nginx_metric": "nginx 1.22 (Debian) as a keep-alive reverse proxy, same upstream",
        }
    report(
        "gateway_overhead",
        f"p99 latency through the gateway ({CONCURRENCY} concurrent)",
        gw_p99,
        "ms",
        direct_p99,
        "p99 calling database-service directly",
        added_p50_ms=round(gw_p50 - direct_p50, 3),
        added_p99_ms=round(gw_p99 - direct_p99, 3),
        direct_p50_ms=round(direct_p50, 3),
        gateway_p50_ms=round(gw_p50, 3),
        goal_added_p50_ms=1.0,
        goal_added_p99_ms=3,
        **peer,
        requests=REQUESTS,
    )


if __name__ == "__main__":
    asyncio.run(main())
