from __future__ import annotations

import asyncio

import pytest

from aitrading.core.infrastructure.central_hub import (
    CentralHub,
    ComponentStartError,
    DependencyCycleError,
    Health,
    HealthStatus,
    HubError,
    UnknownDependencyError,
)
from aitrading.core.infrastructure.config_manager import HubSettings

FAST = HubSettings(health_interval_s=0.02, health_timeout_s=0.2, start_timeout_s=1)


class Recorder:
    """A component that records lifecycle calls into a shared journal."""

    def __init__(
        self,
        name: str,
        journal: list[str],
        depends_on: tuple[str, ...] = (),
        critical: bool = True,
        fail_start: bool = False,
    ) -> None:
        self.name = name
        self.depends_on = depends_on
        self.critical = critical
        self.journal = journal
        self.fail_start = fail_start
        self.state = Health.healthy("ok")
        self.check_delay = 0.0

    async def start(self) -> None:
        if self.fail_start:
            raise ConnectionRefusedError("port 1 refused")
        self.journal.append(f"start {self.name}")

    async def stop(self) -> None:
        self.journal.append(f"stop {self.name}")

    async def health(self) -> Health:
        await asyncio.sleep(self.check_delay)
        return self.state


def hub_with(*components: Recorder) -> CentralHub:
    hub = CentralHub(FAST)
    for component in components:
        hub.register(component)
    return hub


async def test_start_in_dependency_order_and_stop_in_reverse() -> None:
    journal: list[str] = []
    hub = hub_with(
        Recorder("api", journal, ("db", "cache")),
        Recorder("cache", journal, ("server",)),
        Recorder("db", journal),
        Recorder("server", journal),
    )
    await hub.start()
    starts = [e for e in journal if e.startswith("start")]
    assert starts.index("start server") < starts.index("start cache") < starts.index("start api")
    assert starts.index("start db") < starts.index("start api")
    await hub.stop()
    stops = [e.replace("stop ", "start ") for e in journal if e.startswith("stop")]
    assert stops == list(reversed(starts))


def test_cycle_is_an_error_naming_the_cycle() -> None:
    hub = hub_with(
        Recorder("a", [], ("b",)),
        Recorder("b", [], ("c",)),
        Recorder("c", [], ("a",)),
        Recorder("d", []),
    )
    with pytest.raises(DependencyCycleError) as caught:
        hub.start_order()
    assert caught.value.cycle == ["a", "b", "c", "a"]
    assert "a -> b -> c -> a" in str(caught.value)


def test_unknown_dependency_and_duplicate_names_are_errors() -> None:
    with pytest.raises(UnknownDependencyError, match="'a' depends on 'ghost'"):
        hub_with(Recorder("a", [], ("ghost",))).start_order()
    hub = hub_with(Recorder("a", []))
    with pytest.raises(HubError, match="already registered"):
        hub.register(Recorder("a", []))


async def test_failed_start_stops_what_was_started_and_names_the_component() -> None:
    journal: list[str] = []
    hub = hub_with(
        Recorder("db", journal),
        Recorder("cache", journal, ("db",), fail_start=True),
        Recorder("api", journal, ("cache",)),
    )
    with pytest.raises(ComponentStartError, match="'cache' failed to start: port 1 refused"):
        await hub.start()
    assert journal == ["start db", "stop db"]


async def test_aggregate_healthy_degraded_unhealthy_with_reasons() -> None:
    core = Recorder("postgres", [])
    optional = Recorder("weaviate", [], critical=False)
    hub = hub_with(core, optional)
    await hub.start()
    try:
        assert hub.health().status is HealthStatus.HEALTHY
        assert hub.health().reason == ""

        optional.state = Health.unhealthy("connection refused")
        current = await hub.wait_healthy(0.0)  # just read
        current = await _wait_status(hub, HealthStatus.DEGRADED)
        assert "weaviate: unhealthy (connection refused)" in current.reason

        core.state = Health.unhealthy("password authentication failed")
        current = await _wait_status(hub, HealthStatus.UNHEALTHY)
        assert "postgres: unhealthy (password authentication failed)" in current.reason

        core.state = Health.healthy()
        optional.state = Health.healthy()
        current = await hub.wait_healthy(2.0)
        assert current.status is HealthStatus.HEALTHY
    finally:
        await hub.stop()


async def test_a_hanging_check_times_out_as_unhealthy() -> None:
    slow = Recorder("clickhouse", [])
    hub = hub_with(slow)
    slow.check_delay = 5
    await hub.start()
    try:
        current = hub.health()
        assert current.status is HealthStatus.UNHEALTHY
        assert "timed out after 0.2s" in current.components["clickhouse"].reason
    finally:
        await hub.stop()


async def test_a_raising_check_is_reported_not_propagated() -> None:
    class Exploding(Recorder):
        async def health(self) -> Health:
            raise RuntimeError("driver bug")

    hub = hub_with(Exploding("redis", []))
    await hub.start()
    try:
        assert hub.health().components["redis"].reason == "RuntimeError: driver bug"
    finally:
        await hub.stop()


async def test_a_check_that_swallows_cancellation_cannot_hang_the_hub() -> None:
    release = asyncio.Event()

    class Stubborn(Recorder):
        async def health(self) -> Health:
            while not release.is_set():
                try:
                    await release.wait()
                except asyncio.CancelledError:
                    continue  # the driver bug: cancellation ignored
            return Health.healthy()

    hub = hub_with(Stubborn("redis", []))
    await hub.start()
    current = await _wait_status(hub, HealthStatus.UNHEALTHY)
    assert "timed out" in current.components["redis"].reason
    started = asyncio.get_running_loop().time()
    await hub.stop()
    assert asyncio.get_running_loop().time() - started < FAST.health_timeout_s + 1
    release.set()


def test_constructing_a_hub_does_no_work() -> None:
    hub = CentralHub()
    assert hub.names == []
    assert hub.health().status is HealthStatus.HEALTHY


async def _wait_status(hub: CentralHub, status: HealthStatus) -> object:
    for _ in range(200):
        current = hub.health()
        if current.status is status:
            return current
        await hub.wait_for_change(1.0)
    raise AssertionError(f"hub never became {status}: {hub.health()}")


async def test_a_component_not_yet_healthy_is_rechecked_soon_not_an_interval_later() -> None:
    """With a one-hour interval, a component that turns healthy just after start is seen
    healthy within seconds: until its first healthy check it is re-checked often (the demo's
    connector took a whole interval to show healthy)."""
    slow = Recorder("connector", [])
    slow.state = Health.unhealthy("no link yet")
    hub = CentralHub(HubSettings(health_interval_s=3600, health_timeout_s=1, start_timeout_s=5))
    hub.register(slow)
    await hub.start()
    try:
        assert hub.health().status is HealthStatus.UNHEALTHY
        slow.state = Health.healthy("linked")
        current = await hub.wait_healthy(within_s=30)
        assert current.status is HealthStatus.HEALTHY, current.reason
    finally:
        await hub.stop()


async def test_components_whose_dependencies_are_up_start_together() -> None:
    """Two servers with nothing in common boot at the same time: here each one's start waits
    for the other's to begin, which only concurrent starts can satisfy (one after the other,
    the first would time out)."""
    begun = {"a": asyncio.Event(), "b": asyncio.Event()}

    class Waiting(Recorder):
        async def start(self) -> None:
            begun[self.name].set()
            other = "b" if self.name == "a" else "a"
            await begun[other].wait()
            await super().start()

    journal: list[str] = []
    hub = CentralHub(HubSettings(health_interval_s=60, health_timeout_s=1, start_timeout_s=10))
    for component in (
        Waiting("a", journal),
        Waiting("b", journal),
        Recorder("c", journal, ("a", "b")),
    ):
        hub.register(component)
    await hub.start()
    try:
        assert journal[-1] == "start c"  # after both of its dependencies
        assert set(journal[:2]) == {"start a", "start b"}
    finally:
        await hub.stop()
    assert journal[3:] == ["stop c", "stop b", "stop a"]
