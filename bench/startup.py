"""Time from process start to hub-ready: interpreter, imports, embedded stores, first health.

Baseline, measured in the same run: a bare `python -c pass` process. Each is run as a fresh
process, `--runs` times; the median is reported. Also `aitrading demo` — the whole stack —
from process start to its first `overall=healthy` line, on a fresh data dir (the first start
a newcomer sees, initdb included; the seed's goal is 6 s) and again on the same data dir.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import asyncio, sys, time
from aitrading.core.infrastructure.central_hub import CentralHub, HealthStatus
from aitrading.core.infrastructure.config_manager import load_settings
from aitrading.core.stores.components import store_components

async def main() -> None:
    settings = load_settings().settings
    hub = CentralHub(settings.hub)
    for component in store_components(settings):
        hub.register(component)
    await hub.start()
    ready = hub.health().status is HealthStatus.HEALTHY
    print("READY" if ready else "NOT-READY " + hub.health().reason, flush=True)
    await hub.stop()

asyncio.run(main())
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def time_process(args: list[str], env: dict[str, str], marker: str | None) -> float:
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    elapsed = None
    for line in proc.stdout:
        if marker and line.startswith(marker):
            elapsed = time.perf_counter() - started
        elif marker and line.startswith("NOT-READY"):
            raise SystemExit(f"hub not ready: {line.strip()}")
    proc.wait(timeout=120)
    if proc.returncode != 0:
        raise SystemExit(f"{args} exited with {proc.returncode}")
    return elapsed if elapsed is not None else time.perf_counter() - started


def demo_healthy_s(data_dir: str) -> float:
    """`aitrading demo` from process start to its first `overall=healthy` line."""
    names = (
        "POSTGRES",
        "REDIS",
        "SERVICES_DATABASE_SERVICE",
        "SERVICES_DATA_BRIDGE",
        "SERVICES_TRADING_ENGINE",
        "SERVICES_API_GATEWAY",
    )
    env = {
        **os.environ,
        "AITRADING_DATA_DIR": data_dir,
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "300",
        **{f"AITRADING_{name}_PORT": str(free_port()) for name in names},
    }
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aitrading.cli", "demo", "--duration", "120"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if line.startswith("overall=healthy"):
                return time.perf_counter() - started
        raise SystemExit("the demo ended before it was healthy")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warm", action="store_true", help="reuse one data dir (no initdb)")
    args = parser.parse_args()

    baseline = statistics.median(
        time_process([sys.executable, "-c", "pass"], dict(os.environ), None)
        for _ in range(args.runs)
    )
    with tempfile.TemporaryDirectory(prefix="aitrading-bench-") as shared:
        samples = []
        for run in range(args.runs):
            data_dir = shared if args.warm else str(Path(shared) / f"run{run}")
            env = {
                **os.environ,
                "AITRADING_DATA_DIR": data_dir,
                "AITRADING_POSTGRES_PORT": str(free_port()),
                "AITRADING_REDIS_PORT": str(free_port()),
            }
            samples.append(time_process([sys.executable, "-c", CHILD], env, "READY"))
    value = statistics.median(samples)
    with tempfile.TemporaryDirectory(prefix="aitrading-bench-demo-") as demo_root:
        firsts, agains = [], []
        for run in range(args.runs):  # each a first start (initdb, migrations, demo user)
            demo_dir = str(Path(demo_root) / f"run{run}")
            firsts.append(demo_healthy_s(demo_dir))
            agains.append(demo_healthy_s(demo_dir))
        demo_first, demo_again = statistics.median(firsts), statistics.median(agains)
    print(
        json.dumps(
            {
                "name": "startup",
                "metric": "process start to hub-ready (embedded PostgreSQL, redis-server, chdb)"
                + (" warm data dir" if args.warm else " fresh data dir"),
                "value": round(value, 3),
                "unit": "s",
                "baseline": round(baseline, 3),
                "baseline_metric": "bare python process start to exit",
                "ratio": round(value / baseline, 1),
                "samples": [round(s, 3) for s in samples],
                "demo_first_start_healthy_s": round(demo_first, 2),
                "demo_second_start_healthy_s": round(demo_again, 2),
                "demo_first_start_samples": [round(s, 2) for s in firsts],
                "goal_demo_healthy_s": 6,
                "machine": {
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                },
            }
        )
    )


if __name__ == "__main__":
    main()
