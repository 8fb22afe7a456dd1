"""Each service's start, process spawn to `/health/ready` 200, with its stores already up.

The issue's goal: every service ready within 1 s of its stores being up. The embedded
PostgreSQL and redis-server are started first and stay up; then, round after round, the four
services are started as `aitrading serve NAME` processes in their dependency order (each once
the one before it is ready, so what it depends on is up when its clock starts) and stopped
again. database-service's first round migrates fresh schemas and opens a fresh chdb directory:
it is reported apart (`database_service_first_start_s`); the rounds after it are restarts, as
a pod restart or a rolling update meets them. The peer, in the same rounds: the bare
FastAPI/uvicorn app of `bench/memory.py`, spawn to its first 200.

Readiness is polled every 10 ms. `import_s` is each service's interpreter plus imports alone
(`python -c "import aitrading.services.<name>.app"`), measured in the same rounds, so the JSON
shows how much of a start is imports and how much the hub's start (stores, migrations check,
workers).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _harness import embedded, free_port, report, service_env, wait_ready
from memory import BARE_APP

SERVICES = ("database-service", "data-bridge", "trading-engine", "api-gateway")
ROUNDS = 4  # the first is database-service's first start; the other three are restarts
GOAL_S = 1.0
POLL_S = 0.01


async def start(
    args: list[str], env: dict[str, str], port: int
) -> tuple[float, asyncio.subprocess.Process]:
    """Seconds from spawn to the first 200 from /health/ready (asked every 10 ms)."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(*args, env=env)
    await wait_ready(f"http://127.0.0.1:{port}", attempts=12_000, poll_s=POLL_S)
    return time.perf_counter() - started, process


async def import_seconds(name: str, env: dict[str, str]) -> float:
    module = f"aitrading.services.{name.replace('-', '_')}.app"
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", f"import {module}, os; os._exit(0)", env=env
    )
    if await process.wait() != 0:
        raise SystemExit(f"import {module} failed")
    return time.perf_counter() - started


async def stop(processes: list[asyncio.subprocess.Process]) -> None:
    for process in reversed(processes):
        process.terminate()
        await process.wait()


async def main() -> None:
    with embedded(postgres=True, redis=True) as settings:
        ports = {name: free_port() for name in SERVICES}
        env = service_env(settings, ports)
        ready: dict[str, list[float]] = {name: [] for name in SERVICES}
        imports: dict[str, list[float]] = {name: [] for name in SERVICES}
        bare: list[float] = []
        first_start = 0.0
        for round_no in range(ROUNDS):
            processes: list[asyncio.subprocess.Process] = []
            try:
                for name in SERVICES:
                    seconds, process = await start(
                        [sys.executable, "-m", "aitrading.cli", "serve", name], env, ports[name]
                    )
                    processes.append(process)
                    if round_no == 0 and name == "database-service":
                        first_start = seconds
                    elif round_no > 0:
                        ready[name].append(seconds)
                bare_port = free_port()
                seconds, process = await start(
                    [sys.executable, "-c", BARE_APP, str(bare_port)], dict(os.environ), bare_port
                )
                processes.append(process)
                if round_no > 0:
                    bare.append(seconds)
            finally:
                await stop(processes)
            if round_no > 0:
                for name in SERVICES:
                    imports[name].append(await import_seconds(name, env))
    median = {name: round(statistics.median(values), 3) for name, values in ready.items()}
    slowest = max(median, key=lambda name: median[name])
    report(
        "service_startup",
        "slowest service, spawn to ready with its stores up (restart, median)",
        median[slowest],
        "s",
        statistics.median(bare),
        "bare FastAPI/uvicorn app, spawn to its first 200",
        value_exact_s=median[slowest],
        baseline_exact_s=round(statistics.median(bare), 3),
        slowest=slowest,
        ready_s=median,
        ready_samples_s={name: [round(v, 3) for v in values] for name, values in ready.items()},
        import_s={name: round(statistics.median(v), 3) for name, v in imports.items()},
        database_service_first_start_s=round(first_start, 3),
        goal_s=GOAL_S,
        rounds=ROUNDS - 1,
    )


if __name__ == "__main__":
    asyncio.run(main())
