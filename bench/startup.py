"""Time from process start to hub-ready: interpreter, imports, embedded stores, first health.

Baseline, measured in the same run: a bare `python -c pass` process. Each is run as a fresh
process, `--runs` times; the median is reported. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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
