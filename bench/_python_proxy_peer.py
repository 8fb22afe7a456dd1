"""The least a Python reverse proxy on our stack can do: a bare FastAPI app on uvicorn (uvloop,
httptools) with one catch-all route that forwards through a pooled aiohttp session and returns
the upstream's body. No authentication, limits, tracing or logging.

A peer of the gateway benchmark beside nginx: nginx shows what one extra hop costs in C; this
shows what it costs with the gateway's own server, framework and client on this machine, so
what the gateway adds beyond it is the work it does (authentication, limits, entitlements,
tracing), not the language.

Run: python bench/_python_proxy_peer.py PORT UPSTREAM_PORT
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import uvicorn
from fastapi import FastAPI, Request, Response


def create_app(upstream: str) -> FastAPI:
    session: dict[str, aiohttp.ClientSession] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        session["http"] = aiohttp.ClientSession(auto_decompress=False)
        yield
        await session["http"].close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/health/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.get("/{rest:path}")
    async def forward(rest: str, request: Request) -> Response:
        url = f"{upstream}/{rest}"
        async with session["http"].get(url, params=request.query_params) as answer:
            body = await answer.read()
            kept = {"content-type": answer.headers.get("content-type", "application/json")}
            return Response(body, status_code=answer.status, headers=kept)

    return app


if __name__ == "__main__":
    port, upstream_port = int(sys.argv[1]), int(sys.argv[2])
    uvicorn.run(
        create_app(f"http://127.0.0.1:{upstream_port}"),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )
