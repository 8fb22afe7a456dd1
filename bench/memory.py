"""Memory per service: RSS idle and after a load run, against a bare FastAPI/uvicorn app.

The four services run as their own processes on the embedded stores (as `aitrading serve`),
the peer is a FastAPI app with one route under the same uvicorn, measured in the same run.
Idle: ready, then 2 s quiet. Load: 100,000 ticks in 100-tick frames through data-bridge (into
database-service), 2,000 requests to each service's readiness and to database-service's tick
query, then 2 s for the dust to settle. RSS is read from /proc (VmRSS); the seed's targets are
≤ 80 MB idle and ≤ 150 MB under load.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _harness import connect_ingest, embedded, free_port, report, service_env, wait_ready

SERVICES = ("database-service", "data-bridge", "trading-engine", "api-gateway")
TICKS, FRAME = 100_000, 100
REQUESTS = 2000

BARE_APP = """
import sys, uvicorn
from fastapi import FastAPI
app = FastAPI()

@app.get("/health/ready")
async def ready() -> dict[str, str]:
    return {"status": "healthy"}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


async def hammer(url: str, paths: list[str]) -> None:
    """REQUESTS requests spread over `paths`, 8 at a time; answers are not the point."""
    semaphore = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:

        async def one(i: int) -> None:
            async with semaphore:
                await http.get(paths[i % len(paths)])

        await asyncio.gather(*(one(i) for i in range(REQUESTS)))


async def ingest_load(url: str, token: str) -> None:
    ws = await connect_ingest(url, token, "mem")
    try:
        now = int(time.time() * 1000) - 60_000
        acked, seq = 0, 0
        for frame_no in range(TICKS // FRAME):
            ticks = [
                {
                    "symbol": "EURUSD",
                    "time_msc": now + i,
                    "sequence": frame_no * FRAME + i,
                    "bid": 1.1,
                    "ask": 1.1002,
                    "flags": 6,
                }
                for i in range(FRAME)
            ]
            seq += 1
            await ws.send(json.dumps({"type": "ticks", "seq": seq, "ticks": ticks}))
            if seq % 50 == 0:  # keep the window bounded: wait for the acks so far
                while acked < seq:
                    if json.loads(await ws.recv()).get("type") == "ack":
                        acked += 1
        while acked < seq:
            if json.loads(await ws.recv()).get("type") == "ack":
                acked += 1
    finally:
        await ws.close()


async def main() -> None:
    from aitrading.cli.mt5_sim_cmd import development_token
    from aitrading.core.infrastructure.config_manager import load_settings

    with embedded(postgres=True, redis=True) as settings:
        ports = {name: free_port() for name in SERVICES}
        env = service_env(settings, ports)
        bare_port = free_port()
        processes: dict[str, asyncio.subprocess.Process] = {}
        try:
            for name in SERVICES:
                processes[name] = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "aitrading.cli", "serve", name, env=env
                )
                await wait_ready(f"http://127.0.0.1:{ports[name]}")
            processes["bare uvicorn"] = await asyncio.create_subprocess_exec(
                sys.executable, "-c", BARE_APP, str(bare_port), env=dict(os.environ)
            )
            await wait_ready(f"http://127.0.0.1:{bare_port}")
            await asyncio.sleep(2)
            idle = {name: rss_mb(p.pid) for name, p in processes.items()}

            config = load_settings(
                environ={k: v for k, v in env.items() if k.startswith("AITRADING_")}
            ).settings
            token = await development_token(config, "bench-memory")
            await ingest_load(f"ws://127.0.0.1:{ports['data-bridge']}/api/v1/ingest", token)
            ticks = "/api/v1/ticks?symbol=EURUSD&start=0&end=9999999999999&limit=1000"
            await hammer(f"http://127.0.0.1:{ports['database-service']}", ["/health/ready", ticks])
            for name in ("data-bridge", "trading-engine", "api-gateway"):
                await hammer(f"http://127.0.0.1:{ports[name]}", ["/health/ready"])
            await hammer(f"http://127.0.0.1:{bare_port}", ["/health/ready"])
            await asyncio.sleep(2)
            loaded = {name: rss_mb(p.pid) for name, p in processes.items()}
        finally:
            for process in processes.values():
                process.terminate()
                await process.wait()
    services_idle = {n: round(idle[n], 1) for n in SERVICES}
    services_loaded = {n: round(loaded[n], 1) for n in SERVICES}
    report(
        "memory",
        "largest service RSS after the load run (MB)",
        max(services_loaded.values()),
        "MB",
        loaded["bare uvicorn"],
        "a bare FastAPI/uvicorn app after the same request load",
        idle_rss_mb=services_idle,
        loaded_rss_mb=services_loaded,
        bare_idle_rss_mb=round(idle["bare uvicorn"], 1),
        goal_idle_mb=80,
        goal_loaded_mb=150,
        load=f"{TICKS} ticks in {FRAME}-tick frames via data-bridge, {REQUESTS} requests each",
    )


if __name__ == "__main__":
    asyncio.run(main())
