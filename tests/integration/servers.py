"""Run a FastAPI app on a real loopback port inside the test's event loop (uvicorn)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI

from aitrading.services.common.runner import serve_in_task


@contextlib.asynccontextmanager
async def serving(app: FastAPI, port: int) -> AsyncIterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            ws_ping_interval=None,
        )
    )
    task = asyncio.create_task(serve_in_task(server, f"{app.title} on port {port}"))
    try:
        for _ in range(600):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if task.done():
            task.result()  # raise what stopped it
        assert server.started, "server did not start"
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 30)
