"""The central hub: a registry of a process's components, their lifecycle and live health.

Every service is a handful of components (database pools, servers, background workers) with
dependencies between them. The hub starts them in dependency order, stops them in reverse,
refuses a dependency cycle with an error that names it, and runs each component's health
check on an interval with a timeout. The aggregate answers the one question an operator
asks — healthy, degraded or unhealthy, and why. Nothing is created at import time: a hub is
built by whoever runs the process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from aitrading.core.infrastructure.config_manager import HubSettings
from aitrading.core.infrastructure.event_wait import wait_event

_log = logging.getLogger(__name__)


class HealthStatus(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True)
class Health:
    """The result of one health check."""

    status: HealthStatus
    reason: str = ""
    latency_s: float = 0.0
    checked_at: float = field(default_factory=time.time)

    @classmethod
    def healthy(cls, reason: str = "") -> Health:
        return cls(HealthStatus.HEALTHY, reason)

    @classmethod
    def unhealthy(cls, reason: str) -> Health:
        return cls(HealthStatus.UNHEALTHY, reason)

    @classmethod
    def degraded(cls, reason: str) -> Health:
        return cls(HealthStatus.DEGRADED, reason)


@runtime_checkable
class Component(Protocol):
    """Anything the hub manages. `critical=False` means its failure only degrades the whole."""

    name: str
    depends_on: tuple[str, ...]
    critical: bool

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def health(self) -> Health: ...


class HubError(Exception):
    """Base of the hub's errors."""


class DependencyCycleError(HubError):
    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__("dependency cycle: " + " -> ".join(cycle))


class UnknownDependencyError(HubError):
    def __init__(self, component: str, missing: str) -> None:
        super().__init__(f"component '{component}' depends on '{missing}', which is not registered")


class ComponentStartError(HubError):
    def __init__(self, component: str, cause: BaseException) -> None:
        self.component = component
        detail = str(cause) or type(cause).__name__
        super().__init__(f"component '{component}' failed to start: {detail}")


@dataclass(frozen=True)
class HubHealth:
    """Overall status, the reason when not healthy, and every component's last check."""

    status: HealthStatus
    reason: str
    components: dict[str, Health]


def dependency_order(components: Iterable[Component]) -> list[str]:
    """Names in an order where every component comes after its dependencies.

    Ties keep registration order, so start-up is deterministic. Raises
    `UnknownDependencyError` or `DependencyCycleError` (naming the cycle).
    """
    by_name = {c.name: c for c in components}
    for comp in by_name.values():
        for dep in comp.depends_on:
            if dep not in by_name:
                raise UnknownDependencyError(comp.name, dep)

    order: list[str] = []
    state: dict[str, str] = {}  # "visiting" or "done"
    path: list[str] = []

    def visit(name: str) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise DependencyCycleError([*path[path.index(name) :], name])
        state[name] = "visiting"
        path.append(name)
        for dep in by_name[name].depends_on:
            visit(dep)
        path.pop()
        state[name] = "done"
        order.append(name)

    for name in by_name:
        visit(name)
    return order


def aggregate(components: dict[str, Health], critical: dict[str, bool]) -> HubHealth:
    """Healthy when all are; unhealthy when a critical one is; degraded otherwise."""
    problems = [(name, h) for name, h in components.items() if h.status is not HealthStatus.HEALTHY]
    if not problems:
        return HubHealth(HealthStatus.HEALTHY, "", dict(components))
    reason = "; ".join(f"{name}: {h.status.value} ({h.reason})" for name, h in problems)
    if any(h.status is HealthStatus.UNHEALTHY and critical.get(n, True) for n, h in problems):
        return HubHealth(HealthStatus.UNHEALTHY, reason, dict(components))
    return HubHealth(HealthStatus.DEGRADED, reason, dict(components))


SETTLING_INTERVAL_S = 0.25
SETTLING_FOR_S = 30.0


def start_levels(components: Iterable[Component]) -> list[list[str]]:
    """`dependency_order` cut into levels: a component's level is one more than its deepest
    dependency's, so each level's components may start together once the previous ones run.
    Within a level, registration order."""
    listed = list(components)
    by_name = {c.name: c for c in listed}
    depth: dict[str, int] = {}
    for name in dependency_order(listed):
        depth[name] = 1 + max((depth[d] for d in by_name[name].depends_on), default=-1)
    levels: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for component in listed:
        levels[depth[component.name]].append(component.name)
    return levels


class CentralHub:
    """Registry, ordered lifecycle and health monitor of one process's components."""

    def __init__(self, settings: HubSettings | None = None) -> None:
        self._settings = settings or HubSettings()
        self._components: dict[str, Component] = {}
        self._started: list[str] = []
        self._health: dict[str, Health] = {}
        self._monitors: list[asyncio.Task[None]] = []
        self._running_checks: dict[str, asyncio.Task[Health]] = {}
        self._changed = asyncio.Event()

    def register(self, component: Component) -> None:
        if component.name in self._components:
            raise HubError(f"component '{component.name}' is already registered")
        self._components[component.name] = component

    def component(self, name: str) -> Component:
        return self._components[name]

    @property
    def names(self) -> list[str]:
        return list(self._components)

    def start_order(self) -> list[str]:
        return dependency_order(self._components.values())

    async def start(self) -> None:
        """Start every component after its dependencies, then begin health monitoring.

        Components whose dependencies are all up start together (PostgreSQL, redis-server and
        chdb boot at the same time: about a second off the demo's first start). If one fails,
        those already started are stopped (in reverse) before the error is raised, so a failed
        start leaves nothing running.
        """
        for level in start_levels(self._components.values()):
            for name in level:
                _log.info("starting %s", name)
            outcomes = await asyncio.gather(
                *(self._start_one(name) for name in level), return_exceptions=True
            )
            failed: tuple[str, BaseException] | None = None
            for name, outcome in zip(level, outcomes, strict=True):
                if outcome is None:
                    self._started.append(name)
                elif failed is None:
                    failed = (name, outcome)
            if failed is not None:
                await self.stop()
                name, exc = failed
                cause: BaseException = exc
                if isinstance(exc, TimeoutError):
                    cause = TimeoutError(f"no answer within {self._settings.start_timeout_s:g}s")
                raise ComponentStartError(name, cause) from exc
        await asyncio.gather(*(self._check(n) for n in self._started))
        self._monitors = [
            asyncio.create_task(self._monitor(n), name=f"health:{n}") for n in self._started
        ]

    async def attach(self, component: Component) -> None:
        """Register, start and monitor a component once the hub is running: one that can only
        be built from what the started components provide (a pool, a store). It is stopped
        with the others, first (the reverse of the start order)."""
        self.register(component)
        await self._start_one(component.name)
        self._started.append(component.name)
        await self._check(component.name)
        self._monitors.append(
            asyncio.create_task(self._monitor(component.name), name=f"health:{component.name}")
        )

    async def _start_one(self, name: str) -> None:
        began = time.monotonic()
        await asyncio.wait_for(self._components[name].start(), self._settings.start_timeout_s)
        _log.info("started %s in %.2fs", name, time.monotonic() - began)

    async def stop(self) -> list[str]:
        """Stop monitors, then components in reverse start order. Returns the errors seen."""
        pending = [*self._monitors, *self._running_checks.values()]
        for task in pending:
            task.cancel()
        if pending:
            # A check that ignores cancellation (a driver bug) must not hang shutdown.
            await asyncio.wait(pending, timeout=self._settings.health_timeout_s)
        self._monitors = []
        self._running_checks = {}
        errors: list[str] = []
        while self._started:
            name = self._started.pop()
            try:
                await asyncio.wait_for(
                    self._components[name].stop(), self._settings.start_timeout_s
                )
            except Exception as exc:  # keep stopping the others
                errors.append(f"{name}: {exc or type(exc).__name__}")
                _log.warning("stopping %s failed: %s", name, exc)
        return errors

    def health(self) -> HubHealth:
        """The latest aggregate of every started component's last check."""
        critical = {n: c.critical for n, c in self._components.items()}
        ordered = {n: self._health[n] for n in self._components if n in self._health}
        return aggregate(ordered, critical)

    async def wait_for_change(self, within_s: float) -> None:
        """Return when a health check completes (or after `within_s`): for live displays."""
        await wait_event(self._changed, within_s)
        self._changed.clear()

    async def wait_healthy(self, within_s: float) -> HubHealth:
        """Wait until the aggregate is healthy or `within_s` passes; return the last aggregate."""
        deadline = time.monotonic() + within_s
        while True:
            current = self.health()
            remaining = deadline - time.monotonic()
            if current.status is HealthStatus.HEALTHY or remaining <= 0:
                return current
            await self.wait_for_change(remaining)

    async def _monitor(self, name: str) -> None:
        """Check `name` every interval — more often until it is healthy for the first time
        (at most `SETTLING_FOR_S` after start), so that a component a moment slower than the
        rest (a connector's first link) shows healthy when it is, not one interval later."""
        settle_until = time.monotonic() + SETTLING_FOR_S
        settling = self._health[name].status is not HealthStatus.HEALTHY
        while True:
            interval = self._settings.health_interval_s
            if settling:
                interval = min(interval, SETTLING_INTERVAL_S)
            await asyncio.sleep(interval)
            await self._check(name)
            if settling and (
                self._health[name].status is HealthStatus.HEALTHY or time.monotonic() > settle_until
            ):
                settling = False

    async def _check(self, name: str) -> None:
        """Run one check in its own task and stop waiting for it after the timeout.

        The check is cancelled then, but not awaited: a driver that swallows cancellation
        keeps its task, and the next round reports it as still hanging instead of starting
        another one on top.
        """
        started = time.perf_counter()
        timeout = self._settings.health_timeout_s
        task = self._running_checks.get(name)
        if task is None:
            task = asyncio.create_task(self._components[name].health(), name=f"check:{name}")
            self._running_checks[name] = task
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            task.cancel()
            result = Health.unhealthy(f"health check timed out after {timeout:g}s")
        else:
            del self._running_checks[name]
            exc = None if task.cancelled() else task.exception()
            if task.cancelled():
                result = Health.unhealthy("previous health check hung and was cancelled")
            elif exc is None:
                result = task.result()
            else:  # a failing check is a finding, not a crash
                result = Health.unhealthy(f"{type(exc).__name__}: {exc}")
        latency = time.perf_counter() - started
        self._health[name] = Health(result.status, result.reason, latency, time.time())
        self._changed.set()
