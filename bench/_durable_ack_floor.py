"""The floor under the connector benchmark, measured in the same run: a durable ack over
loopback with nothing else in the way.

A minimal client appends each tick to a file and fsyncs it, sends it over a WebSocket; a minimal
server (its own process, like data-bridge) appends the frame to its journal, fsyncs it and acks.
The same rate as bench/connector.py, one tick per frame, no capture polling, no validation, no
database behind it: what a Python process pair pays on this machine, now, for "an ack means
safe". Our latency is reported beside it, so a noisy machine (CPU steal) shows in both.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

SERVER = """
import asyncio, os, sys
from websockets.asyncio.server import serve

async def main(port, journal):
    fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    async def handler(ws):
        async for frame in ws:
            os.write(fd, frame.encode() if isinstance(frame, str) else frame)
            os.fsync(fd)
            await ws.send(frame[:24])
    async with serve(handler, "127.0.0.1", port, compression=None):
        print("ready", flush=True)
        await asyncio.Future()

asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
"""


async def floor_latencies(rate: float, seconds: float, port: int) -> list[float]:
    """Tick → ack latencies (ms) of the minimal pair, one tick per frame, `rate` per second."""
    from websockets.asyncio.client import connect

    with tempfile.TemporaryDirectory(prefix="aitrading-floor-") as folder:
        server = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            SERVER,
            str(port),
            str(Path(folder) / "journal"),
            stdout=asyncio.subprocess.PIPE,
        )
        assert server.stdout is not None
        await asyncio.wait_for(server.stdout.readline(), 60)
        fd = os.open(Path(folder) / "outbox", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        latencies: list[float] = []
        try:
            async with connect(f"ws://127.0.0.1:{port}", compression=None) as ws:
                started, count = time.perf_counter(), 0
                while time.perf_counter() - started < seconds:
                    entered = time.perf_counter()
                    frame = f'{{"type":"ticks","seq":{count},"ticks":[{{"bid":1.1}}]}}'
                    os.write(fd, frame.encode())
                    os.fsync(fd)
                    await ws.send(frame)
                    await ws.recv()
                    latencies.append((time.perf_counter() - entered) * 1000)
                    count += 1
                    await asyncio.sleep(max(0.0, started + count / rate - time.perf_counter()))
        finally:
            os.close(fd)
            server.terminate()
            await server.wait()
        return latencies
