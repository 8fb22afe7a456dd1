"""Latency the api-gateway adds: p50/p99 through the gateway vs calling the upstream directly.

database-service and the gateway run as their own processes (embedded stores); the same
request (`GET /api/v1/ticks` for an empty range; through the gateway
`/api/v1/market/ticks` with a bearer token — authentication, revocation check, two rate-limit
decisions, entitlements and the proxy hop) is sent at the same concurrency to both, in one run.
The peers, in the same run: nginx from Debian's package as a plain reverse proxy in front of the
same upstream (`_nginx_peer.py`; without nginx installed the JSON says so, `nginx_error`), and
the least a Python proxy on the gateway's own server, framework and client does
(`_python_proxy_peer.py`): what the gateway adds beyond that one is its own work.

The three paths are measured interleaved, one request to each per round in a shuffled order,
so a burst of noise on this shared machine (CPU steal, ClickHouse merging in the background)
lands on all of them alike instead of on whichever path happened to be measured during it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _harness import cpu_seconds, embedded, free_port, report, wait_ready
from _nginx_peer import nginx_proxy

REQUESTS = 1000  # rounds: one request to each path per round
WARMUP_ROUNDS = 50
IDLE_S = 5.0


async def interleaved(
    http: httpx.AsyncClient, paths: dict[str, tuple[str, dict[str, str]]], rounds: int
) -> dict[str, list[float]]:
    """Per path, the latency in ms of `rounds` requests, sent one path after another."""
    params = {"symbol": "EURUSD", "start": 0, "end": 1}
    samples: dict[str, list[float]] = {name: [] for name in paths}
    order = list(paths)
    shuffle = random.Random(7).shuffle
    for _ in range(rounds):
        shuffle(order)
        for name in order:
            url, headers = paths[name]
            started = time.perf_counter()
            answer = await http.get(url, params=params, headers=headers)
            samples[name].append((time.perf_counter() - started) * 1000)
            answer.raise_for_status()
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
        gw_pid = processes[-1].pid
        python_proxy_port = free_port()
        processes.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                str(Path(__file__).parent / "_python_proxy_peer.py"),
                str(python_proxy_port),
                str(dbs_port),
            )
        )
        python_proxy_pid = processes[-1].pid
        python_proxy = f"http://127.0.0.1:{python_proxy_port}"
        await wait_ready(python_proxy)
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                token = (
                    await http.post(
                        f"http://127.0.0.1:{gw_port}/auth/token",
                        json={"email": email, "password": "benchmark password 1"},
                    )
                ).json()
                auth = {"authorization": f"Bearer {token['access_token']}"}
                paths = {
                    "direct": (f"http://127.0.0.1:{dbs_port}/api/v1/ticks", {}),
                    "gateway": (f"http://127.0.0.1:{gw_port}/api/v1/market/ticks", auth),
                    "python proxy": (f"{python_proxy}/api/v1/ticks", {}),
                }
                peer_error = ""
                async with contextlib.AsyncExitStack() as peers:
                    try:
                        proxy = await peers.enter_async_context(nginx_proxy(free_port(), dbs_port))
                        await wait_ready(proxy)  # nginx up and proxying
                        paths["nginx"] = (f"{proxy}/api/v1/ticks", {})
                    except (OSError, SystemExit) as exc:  # not installed, or never answered
                        peer_error = f"{type(exc).__name__}: {exc}"
                    await interleaved(http, paths, WARMUP_ROUNDS)
                    pids = (gw_pid, python_proxy_pid)
                    idle_before, idle_started = [cpu_seconds(pid) for pid in pids], time.monotonic()
                    await asyncio.sleep(IDLE_S)  # what each process spends with no request
                    idle_s = time.monotonic() - idle_started
                    idle_rate = [
                        (cpu_seconds(p) - c) / idle_s
                        for p, c in zip(pids, idle_before, strict=True)
                    ]
                    cpu_before, load_started = [cpu_seconds(pid) for pid in pids], time.monotonic()
                    samples = await interleaved(http, paths, REQUESTS)
                    load_s = time.monotonic() - load_started
                    # CPU per request: the load run's, less what the process spends idle
                    gw_cpu_ms, py_cpu_ms = (
                        (cpu_seconds(p) - c - rate * load_s) * 1000 / REQUESTS
                        for p, c, rate in zip(pids, cpu_before, idle_rate, strict=True)
                    )
        finally:
            for process in processes:
                process.terminate()
                await process.wait()
    p = [statistics.median, lambda s: statistics.quantiles(s, n=100)[98]]
    direct_p50, direct_p99 = (f(samples["direct"]) for f in p)
    gw_p50, gw_p99 = (f(samples["gateway"]) for f in p)
    py_p50, py_p99 = (f(samples["python proxy"]) for f in p)
    peer: dict[str, object] = {"nginx_error": peer_error}
    if "nginx" in samples:
        nginx_p50, nginx_p99 = (f(samples["nginx"]) for f in p)
        peer = {
            "nginx_added_p50_ms": round(nginx_p50 - direct_p50, 3),
            "nginx_added_p99_ms": round(nginx_p99 - direct_p99, 3),
            "nginx_metric": "nginx 1.22 (Debian) as a keep-alive reverse proxy, same upstream",
        }
    report(
        "gateway_overhead",
        "p99 latency through the gateway (one request at a time)",
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
        python_proxy_added_p50_ms=round(py_p50 - direct_p50, 3),
        python_proxy_added_p99_ms=round(py_p99 - direct_p99, 3),
        gateway_cpu_ms_per_request=round(gw_cpu_ms, 3),
        python_proxy_cpu_ms_per_request=round(py_cpu_ms, 3),
        gateway_idle_cpu_ms_per_s=round(idle_rate[0] * 1000, 2),
        python_proxy_metric="bare FastAPI/uvicorn + aiohttp pass-through (_python_proxy_peer.py)",
        requests=REQUESTS,
        measured="interleaved, one request per path per round",
    )


if __name__ == "__main__":
    asyncio.run(main())
