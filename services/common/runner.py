"""A service as a central-hub component: uvicorn in this process, health over HTTP.

`make demo` runs the whole stack in one process this way; in Kubernetes each service is its
own pod (`aitrading serve <service>`), and nothing here is used.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import httpx
import uvicorn
from fastapi import FastAPI

from aitrading.core.infrastructure.central_hub import Health, HealthStatus
from aitrading.core.stores.embedded import PortInUseError, port_is_free


class ServiceStartError(RuntimeError):
    """A service that ended while starting: its lifespan startup failed or its port could not
    be bound (uvicorn has logged which, with the cause)."""

    def __init__(self, name: str, code: object | None = None) -> None:
        exit_code = f" (uvicorn exit {code})" if code is not None else ""
        super().__init__(
            f"{name} stopped while starting{exit_code}: its startup failed or its port could "
            "not be bound; the error logged above says which"
        )


async def serve_in_task(server: uvicorn.Server, name: str) -> None:
    """`server.serve()`, for a task, with a failed start raised as `ServiceStartError`.

    uvicorn ends a failed start with `sys.exit(3)`. Raised inside a task, `SystemExit` does not
    stay in the task: asyncio re-raises it out of the event loop, into whatever the loop was
    running: the hub's failed start could not stop what it had started (the demo's embedded
    servers), and in CI a test saw `SystemExit` in the setup of another test.
    """
    try:
        await server.serve()
    except SystemExit as exc:
        raise ServiceStartError(name, exc.code) from None


class ServiceComponent:
    critical = True

    def __init__(
        self,
        name: str,
        factory: Callable[[], FastAPI],
        host: str,
        port: int,
        port_setting: str,
        depends_on: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.depends_on = depends_on
        self._factory = factory
        self._host = host
        self._port = port
        self._port_setting = port_setting
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._http = httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=2.0)

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        if not port_is_free(self._port, self._host):
            raise PortInUseError(self.name, self._port, self._port_setting)
        config = uvicorn.Config(
            self._factory(), host=self._host, port=self._port, log_level="warning", lifespan="on"
        )
        self._server = uvicorn.Server(config)
        # The process owner (the demo) handles signals; uvicorn must not take them over.
        self._server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        self._task = asyncio.create_task(
            serve_in_task(self._server, self.name), name=f"serve:{self.name}"
        )
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise ServiceStartError(self.name)
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 30)
        await self._http.aclose()

    async def health(self) -> Health:
        try:
            answer = await self._http.get("/health/ready")
            body = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            return Health.unhealthy(f"{self.name} does not answer: {type(exc).__name__}")
        status = HealthStatus(body.get("status", "unhealthy"))
        reason = body.get("reason") or f"{self.url}"
        return Health(status, reason)
