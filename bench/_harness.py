"""Shared benchmark plumbing: embedded servers in a temporary directory, JSON output."""

from __future__ import annotations

import json
import os
import platform
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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


async def wait_ready(url: str, attempts: int = 600) -> None:
    """Wait until a service's /health/ready answers 200 (servers started by a benchmark)."""
    import asyncio

    import httpx

    async with httpx.AsyncClient(base_url=url) as http:
        for _ in range(attempts):
            try:
                if (await http.get("/health/ready")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
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
                **extra,
            }
        )
    )
