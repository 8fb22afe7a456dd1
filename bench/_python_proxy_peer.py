"""The least a Python reverse proxy on our stack can do: a bare FastAPI app on uvicorn (uvloop,
httptools) with one catch-all route that forwards through a pooled aiohttp session and returns
the upstream's body. No authentication, limits, tracing or logging.

With `PEER_ADMITS=1` in its environment, each request first makes the one Redis call the
gateway cannot do without: the admission script of `services/api_gateway/admission.py` (the
per-IP limit, the token's three revocation keys, the per-user limit) through the gateway's
own `RedisStore`, built from the same `AITRADING_*` settings. What the gateway adds beyond
that peer is its own Python: the checks around the call, the spans, the middleware.

A peer of the gateway benchmark beside nginx: nginx shows what one extra hop costs in C; this
shows what it costs with the gateway's own server, framework and client on this machine, so
what the gateway adds beyond it is the work it does (authentication, limits, entitlements,
tracing), not the language.

Run: [PEER_ADMITS=1] python bench/_python_proxy_peer.py PORT UPSTREAM_PORT
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import uvicorn
from fastapi import FastAPI, Request, Response

# the admission script's keys and arguments: a token never revoked, limits never reached
_KEYS = ["peer:jti", "peer:tv", "peer:family", "peer:user", "peer:ip"]
_ARGS = [0, 1, 60_000, 1, 1, 60_000, 1]


def create_app(upstream: str, admits: bool = False) -> FastAPI:
    session: dict[str, aiohttp.ClientSession] = {}
    admit: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        session["http"] = aiohttp.ClientSession(auto_decompress=False)
        store = None
        if admits:
            from aitrading.core.infrastructure.config_manager import load_settings
            from aitrading.core.stores.redis_store import RedisStore
            from aitrading.services.api_gateway.admission import _ADMIT

            store = RedisStore.create(load_settings().settings)
            admit["script"] = store.client.register_script(_ADMIT)
        yield
        await session["http"].close()
        if store is not None:
            await store.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/health/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.get("/{rest:path}")
    async def forward(rest: str, request: Request) -> Response:
        if "script" in admit:
            await admit["script"](keys=_KEYS, args=_ARGS)
        url = f"{upstream}/{rest}"
        async with session["http"].get(url, params=request.query_params) as answer:
            body = await answer.read()
            kept = {"content-type": answer.headers.get("content-type", "application/json")}
            return Response(body, status_code=answer.status, headers=kept)

    return app


if __name__ == "__main__":
    port, upstream_port = int(sys.argv[1]), int(sys.argv[2])
    uvicorn.run(
        create_app(f"http://127.0.0.1:{upstream_port}", os.environ.get("PEER_ADMITS") == "1"),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )
