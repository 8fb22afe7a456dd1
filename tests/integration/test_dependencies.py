"""Every route's endpoint and every dependency it declares run on the event loop.

FastAPI runs a plain `def` dependency in its thread pool: a thread hop and a GIL hand-off per
dependency per request, for what is usually an attribute read. The api-gateway's profile under
bench/gateway_overhead.py showed those hops as its largest avoidable cost, so every service's
dependencies are `async def` and this test keeps them so.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute
from prometheus_client import CollectorRegistry
from starlette.routing import BaseRoute

from aitrading.core.infrastructure.config_manager import Settings
from aitrading.services.api_gateway.app import create_app as gateway_app
from aitrading.services.data_bridge.app import create_app as bridge_app
from aitrading.services.database_service.app import create_app as database_app
from aitrading.services.trading_engine.app import create_app as engine_app

pytestmark = pytest.mark.integration

APPS: dict[str, Callable[[Settings, CollectorRegistry], FastAPI]] = {
    "api-gateway": gateway_app,
    "data-bridge": bridge_app,
    "database-service": database_app,
    "trading-engine": engine_app,
}


def _dependencies(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _dependencies(sub)


def _route_dependencies(routes: list[BaseRoute]) -> Iterator[tuple[str, Callable[..., Any]]]:
    """(path, dependency) of every route, descending into included routers (FastAPI 0.165
    keeps an included router as one route holding the original router) and their own
    router-level dependencies."""
    for route in routes:
        if isinstance(route, APIRoute | APIWebSocketRoute):
            yield route.path, route.endpoint  # a plain `def` endpoint is run there too
            for call in _dependencies(route.dependant):
                yield route.path, call
        included = getattr(route, "original_router", None)
        if isinstance(included, APIRouter):
            for depends in included.dependencies:
                if depends.dependency is not None:
                    yield included.prefix or "/", depends.dependency
            yield from _route_dependencies(included.routes)


def _runs_in_thread_pool(call: Callable[..., Any]) -> bool:
    """What FastAPI decides for a dependency: anything but a coroutine or an async generator
    function is run in the thread pool."""
    target = call if inspect.isfunction(call) else getattr(call, "__call__", call)  # noqa: B004
    return not (inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target))


@pytest.mark.parametrize("service", sorted(APPS))
def test_no_route_depends_on_the_thread_pool(service: str, settings: Settings) -> None:
    app = APPS[service](settings, CollectorRegistry())
    checked = 0
    offenders: set[str] = set()
    for path, call in _route_dependencies(app.routes):
        checked += 1
        if _runs_in_thread_pool(call):
            offenders.add(f"{path}: {call.__module__}.{call.__qualname__}")
    assert checked > 0, f"{service} declares no dependency at all: the walk found nothing"
    assert not offenders, "dependencies FastAPI would run in its thread pool:\n" + "\n".join(
        sorted(offenders)
    )


def test_the_check_sees_a_plain_def_dependency() -> None:
    def sync_dependency() -> int:
        return 1

    async def async_dependency() -> int:
        return 1

    assert _runs_in_thread_pool(sync_dependency)
    assert not _runs_in_thread_pool(async_dependency)
