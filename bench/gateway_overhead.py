"""Latency the api-gateway adds: p50/p99 through the gateway vs calling the upstream directly.

database-service and the gateway run as their own processes (embedded stores); the same
request (`GET /api/v1/ticks` for an empty range; through the gateway
`/api/v1/market/ticks` with a bearer token — authentication, revocation check, two rate-limit
decisions, entitlements and the proxy hop) is sent at the same concurrency to both, in one run.
The peers, in the same run: nginx from Debian's package as a plain reverse proxy in front of the
same upstream (`_nginx_peer.py`; without nginx installed the JSON says so, `nginx_error`), and
the least a Python proxy on the gateway's own server, framework and client does
(`_python_proxy_peer.py`), once bare and once making the one Redis call the gateway needs
per request (its admission script): what the gateway adds beyond the second is its own work.

The paths are measured interleaved, one request to each per round in a shuffled order,
so a burst of noise on this shared machine (CPU steal, ClickHouse merging in the background)
lands on all of them alike instead of on whichever path happened to be measured during it.
database-service's own figure (`direct_p50_ms`) has a peer in the same rounds too: the same
query through its repository on chdb in this process (`engine_p50_ms`), the engine's cost
without HTTP, FastAPI or the service around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _harness import cpu_seconds, embedded, free_port, report, wait_ready
from _nginx_peer import nginx_proxy

REQUESTS = 1000  # rounds: one request to each path per round
WARMUP_ROUNDS = 50
IDLE_S = 5.0


Probe = Callable[[], Awaitable[object]]
TICKS = {"symbol": "EURUSD", "start": 0, "end": 1}  # an empty range


def get(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> Probe:
    async def probe() -> None:
        answer = await http.get(url, params=TICKS, headers=headers)
        answer.raise_for_status()

    return probe


async def interleaved(probes: dict[str, Probe], rounds: int) -> dict[str, list[float]]:
    """Per probe, the latency in ms of `rounds` calls, one probe after another per round."""
    samples: dict[str, list[float]] = {name: [] for name in probes}
    order = list(probes)
    shuffle = random.Random(7).shuffle
    for _ in range(rounds):
        shuffle(order)
        for name in order:
            started = time.perf_counter()
            await probes[name]()
            samples[name].append((time.perf_counter() - started) * 1000)
    return samples


async def engine_peer(scratch: Path) -> tuple[Probe, Callable[[], Awaitable[None]]]:
    """database-service's own query for the same empty range, through its own repository on
    chdb in this process (a data path of its own, the same schema): the engine's cost without
    HTTP, FastAPI or the service around it."""
    from aitrading.core.infrastructure.config_manager import load_settings
    from aitrading.core.stores.clickhouse import ClickHouseStore
    from aitrading.services.database_service.schema import clickhouse as schema
    from aitrading.services.database_service.ticks import TickRepository

    settings = load_settings(
        environ={
            "AITRADING_DATA_DIR": str(scratch),
            "AITRADING_CLICKHOUSE_DSN": f"chdb://{scratch / 'clickhouse'}",
        }
    ).settings
    store = await ClickHouseStore.create(settings)
    await schema.migrate(store, 365)
    repository = TickRepository(store)

    async def probe() -> object:
        return await repository.query(
            str(TICKS["symbol"]), int(TICKS["start"]), int(TICKS["end"]), 1000, None
        )

    return probe, store.close


async def python_proxy_peer(
    upstream_port: int, env: dict[str, str]
) -> tuple[asyncio.subprocess.Process, str]:
    """`_python_proxy_peer.py` in front of `upstream_port`, started and answering, and its URL."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).parent / "_python_proxy_peer.py"),
        str(port),
        str(upstream_port),
        env={**os.environ, **env},
    )
    url = f"http://127.0.0.1:{port}"
    await wait_ready(url)
    return process, url


async def main() -> None:
    from aitrading.core.infrastructure.config_manager import load_settings
    from aitrading.core.security.subscription_validator import (
        DEFAULT_PLANS,
        SubscriptionValidator,
    )
    from aitrading.core.security.users import UserStore
    from aitrading.core.stores.postgres import PostgresStore
    from aitrading.core.stores.redis_store import RedisStore

    with (
        embedded(postgres=True, redis=True) as settings,
        tempfile.TemporaryDirectory() as engine_dir,
    ):
        scratch = Path(engine_dir)
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
        bare, python_proxy = await python_proxy_peer(dbs_port, {})
        # the same peer, with the gateway's one Redis call
        admitting, admitting_proxy = await python_proxy_peer(dbs_port, {**env, "PEER_ADMITS": "1"})
        processes += [bare, admitting]
        python_proxy_pid, admitting_pid = bare.pid, admitting.pid
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                token = (
                    await http.post(
                        f"http://127.0.0.1:{gw_port}/auth/token",
                        json={"email": email, "password": "benchmark password 1"},
                    )
                ).json()
                auth = {"authorization": f"Bearer {token['access_token']}"}
                engine, close_engine = await engine_peer(scratch)
                paths = {
                    "direct": get(http, f"http://127.0.0.1:{dbs_port}/api/v1/ticks", {}),
                    "gateway": get(http, f"http://127.0.0.1:{gw_port}/api/v1/market/ticks", auth),
                    "python proxy": get(http, f"{python_proxy}/api/v1/ticks", {}),
                    "python proxy + redis": get(http, f"{admitting_proxy}/api/v1/ticks", {}),
                    "engine": engine,
                }
                peer_error = ""
                async with contextlib.AsyncExitStack() as peers:
                    try:
                        proxy = await peers.enter_async_context(nginx_proxy(free_port(), dbs_port))
                        await wait_ready(proxy)  # nginx up and proxying
                        paths["nginx"] = get(http, f"{proxy}/api/v1/ticks", {})
                    except (OSError, SystemExit) as exc:  # not installed, or never answered
                        peer_error = f"{type(exc).__name__}: {exc}"
                    await interleaved(paths, WARMUP_ROUNDS)
                    pids = (gw_pid, python_proxy_pid, admitting_pid)
                    idle_before, idle_started = [cpu_seconds(pid) for pid in pids], time.monotonic()
                    await asyncio.sleep(IDLE_S)  # what each process spends with no request
                    idle_s = time.monotonic() - idle_started
                    idle_rate = [
                        (cpu_seconds(p) - c) / idle_s
                        for p, c in zip(pids, idle_before, strict=True)
                    ]
                    cpu_before, load_started = [cpu_seconds(pid) for pid in pids], time.monotonic()
                    samples = await interleaved(paths, REQUESTS)
                    load_s = time.monotonic() - load_started
                    # CPU per request: the load run's, less what the process spends idle
                    gw_cpu_ms, py_cpu_ms, admitting_cpu_ms = (
                        (cpu_seconds(p) - c - rate * load_s) * 1000 / REQUESTS
                        for p, c, rate in zip(pids, cpu_before, idle_rate, strict=True)
                    )
                await close_engine()
        finally:
            for process in processes:
                process.terminate()
                await process.wait()
    p = [statistics.median, lambda s: statistics.quantiles(s, n=100)[98]]
    direct_p50, direct_p99 = (f(samples["direct"]) for f in p)
    engine_p50 = statistics.median(samples["engine"])
    gw_p50, gw_p99 = (f(samples["gateway"]) for f in p)
    py_p50, py_p99 = (f(samples["python proxy"]) for f in p)
    admitting_p50, admitting_p99 = (f(samples["python proxy + redis"]) for f in p)
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
        # the peer of direct_p50_ms: the same query through database-service's repository on
        # chdb in this process, without HTTP or the service around it
        engine_p50_ms=round(engine_p50, 3),
        engine_metric="the same query through database-service's repository, chdb in-process",
        gateway_p50_ms=round(gw_p50, 3),
        goal_added_p50_ms=1.0,
        goal_added_p99_ms=3,
        **peer,
        python_proxy_added_p50_ms=round(py_p50 - direct_p50, 3),
        python_proxy_added_p99_ms=round(py_p99 - direct_p99, 3),
        # the same peer making the gateway's one Redis call (the admission script) first
        python_proxy_redis_added_p50_ms=round(admitting_p50 - direct_p50, 3),
        python_proxy_redis_added_p99_ms=round(admitting_p99 - direct_p99, 3),
        gateway_cpu_ms_per_request=round(gw_cpu_ms, 3),
        python_proxy_cpu_ms_per_request=round(py_cpu_ms, 3),
        python_proxy_redis_cpu_ms_per_request=round(admitting_cpu_ms, 3),
        gateway_idle_cpu_ms_per_s=round(idle_rate[0] * 1000, 2),
        python_proxy_metric="bare FastAPI/uvicorn + aiohttp pass-through (_python_proxy_peer.py)",
        requests=REQUESTS,
        measured="interleaved, one request per path per round",
    )


if __name__ == "__main__":
    asyncio.run(main())
