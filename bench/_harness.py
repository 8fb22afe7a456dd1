"""Shared benchmark plumbing: embedded servers in a temporary directory, JSON output."""

from __future__ import annotations

import json
import os
import platform
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from aitrading.core.infrastructure.config_manager import Settings, load_settings
from aitrading.core.stores.embedded import EmbeddedPostgres, EmbeddedRedis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def embedded(postgres: bool = False, redis: bool = False) -> Iterator[Settings]:
    """Fresh embedded servers for one benchmark run, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="aitrading-bench-") as data_dir:
        settings = load_settings(
            environ={
                "AITRADING_DATA_DIR": data_dir,
                "AITRADING_POSTGRES_PORT": str(free_port()),
                "AITRADING_REDIS_PORT": str(free_port()),
            }
        ).settings
        servers = ([EmbeddedPostgres(settings)] if postgres else []) + (
            [EmbeddedRedis(settings)] if redis else []
        )
        try:
            for server in servers:
                server.start()
            yield settings
        finally:
            for server in reversed(servers):
                server.stop()


SERVICE_PORT_ENV = {
    "database-service": "AITRADING_SERVICES_DATABASE_SERVICE_PORT",
    "data-bridge": "AITRADING_SERVICES_DATA_BRIDGE_PORT",
    "trading-engine": "AITRADING_SERVICES_TRADING_ENGINE_PORT",
    "api-gateway": "AITRADING_SERVICES_API_GATEWAY_PORT",
}


def service_env(settings: Settings, ports: dict[str, int], **extra: str) -> dict[str, str]:
    """The environment for `aitrading serve …` processes on these embedded stores."""
    env = {
        **os.environ,
        "AITRADING_DATA_DIR": str(settings.data_dir),
        "AITRADING_POSTGRES_PORT": str(settings.postgres.port),
        "AITRADING_REDIS_PORT": str(settings.redis.port),
        "AITRADING_LOG_LEVEL": "WARNING",
        **extra,
    }
    env.update({SERVICE_PORT_ENV[name]: str(port) for name, port in ports.items()})
    return env


@asynccontextmanager
async def serving(env: dict[str, str], ports: dict[str, int]) -> AsyncIterator[None]:
    """Each service as its own process, in the given order, each ready before the next."""
    import asyncio
    import sys

    processes = []
    try:
        for name, port in ports.items():
            processes.append(
                await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "aitrading.cli", "serve", name, env=env
                )
            )
            await wait_ready(f"http://127.0.0.1:{port}")
        yield
    finally:
        for process in processes:
            process.terminate()
            await process.wait()


async def wait_ready(url: str, attempts: int = 600, poll_s: float = 0.1) -> None:
    """Wait until a service's /health/ready answers 200 (servers started by a benchmark),
    asking every `poll_s`."""
    import asyncio

    import httpx

    async with httpx.AsyncClient(base_url=url) as http:
        for _ in range(attempts):
            try:
                if (await http.get("/health/ready")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(poll_s)
    raise SystemExit(f"{url} did not become ready")


async def throughput(call: Any, seconds: float, concurrency: int) -> float:
    """Calls/s of `call(i)` run `concurrency` at a time for about `seconds`."""
    import asyncio
    import time

    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        await asyncio.gather(*(call(i) for i in range(concurrency)))
        count += concurrency
    return count / elapsed


async def connect_ingest(url: str, token: str, source: str) -> Any:
    """A connector's WebSocket to data-bridge, authenticated (welcome received)."""
    import websockets

    ws = await websockets.connect(url, max_size=16 * 1024 * 1024, compression=None)
    await ws.send(json.dumps({"type": "auth", "v": 1, "token": token, "source": source}))
    welcome = json.loads(await ws.recv())
    assert welcome["type"] == "welcome", welcome
    return ws


def cpu_steal_share() -> tuple[int, int]:
    """(steal, total) jiffies of the machine so far (/proc/stat); two readings give the share
    of CPU time the hypervisor took from us in between."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[7] if len(fields) > 7 else 0, sum(fields)


_STEAL_AT_START = cpu_steal_share()  # each benchmark is its own process: its whole run


def report(
    name: str,
    metric: str,
    value: float,
    unit: str,
    baseline: float,
    baseline_metric: str,
    **extra: Any,
) -> None:
    print(
        json.dumps(
            {
                "name": name,
                "metric": metric,
                "value": round(value, 1),
                "unit": unit,
                "baseline": round(baseline, 1),
                "baseline_metric": baseline_metric,
                "ratio": round(value / baseline, 3) if baseline else None,
                "machine": {
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                },
                # the hypervisor's share of this run's CPU time: the noise behind its figures
                "cpu_steal_share": _steal_since_start(),
                **extra,
            }
        )
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _steal_since_start() -> float:
    steal, total = cpu_steal_share()
    elapsed = total - _STEAL_AT_START[1]
    return round((steal - _STEAL_AT_START[0]) / elapsed, 3) if elapsed > 0 else 0.0
