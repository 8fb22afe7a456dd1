"""A service's first request to a peer imports nothing: module imports on the event loop
stall every connection it serves (data-bridge's first forwarded ticks held up every link's acks
for 70 to 140 ms while httpx loaded anyio's backend)."""

from __future__ import annotations

import json
import subprocess
import sys

FIRST_REQUEST = r"""
import asyncio, json, sys

from aitrading.services.common.peer_http import peer_http


async def answer(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok")
    await writer.drain()
    writer.close()


async def main():
    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = peer_http(f"http://127.0.0.1:{port}", 10, False)
    before = set(sys.modules)
    answer_ = await client.get("/")
    after = set(sys.modules)
    await client.aclose()
    server.close()
    print(json.dumps({"status": answer_.status_code, "imported": sorted(after - before)}))


asyncio.run(main())
"""


def test_the_first_request_to_a_peer_imports_nothing() -> None:
    run = subprocess.run(
        [sys.executable, "-c", FIRST_REQUEST], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    outcome = json.loads(run.stdout.strip().splitlines()[-1])
    assert outcome["status"] == 200
    assert outcome["imported"] == []
