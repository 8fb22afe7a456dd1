"""The harness that runs services in the test's event loop, and the demo's service component:
a service that cannot start raises an error naming it, never `SystemExit` (which asyncio
re-raises out of the event loop, into another test's setup: CI saw `SystemExit: 3` there)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI

from aitrading.services.common.runner import ServiceComponent, ServiceStartError

from .conftest import free_port
from .servers import serving

pytestmark = pytest.mark.integration


@asynccontextmanager
async def _failing_startup(_: FastAPI) -> AsyncIterator[None]:
    raise RuntimeError("the stores are not there")
    yield  # pragma: no cover - never reached


async def test_a_port_in_use_is_an_error_naming_the_port() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(ServiceStartError) as caught:
            async with serving(FastAPI(title="held"), port):
                pass  # pragma: no cover - it cannot start
    assert f"held on port {port}" in str(caught.value)
    await asyncio.sleep(0.05)  # the loop still runs: nothing escaped it


async def test_a_failed_lifespan_is_an_error_of_the_component_not_an_exit() -> None:
    component = ServiceComponent(
        "broken-service",
        lambda: FastAPI(lifespan=_failing_startup),
        "127.0.0.1",
        free_port(),
        "services.broken_port",
    )
    with pytest.raises(ServiceStartError) as caught:
        await component.start()
    assert "broken-service stopped while starting" in str(caught.value)
    await component.stop()


def test_free_port_never_hands_out_a_port_twice() -> None:
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)
