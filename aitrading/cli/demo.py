"""`aitrading demo` (what `make demo` runs): the whole stack in one process, live.

It starts the embedded stores, database-service (8008), data-bridge (8001), trading-engine
(8007) and the MT5 simulator streaming ticks end to end (simulator → data-bridge →
database-service → ClickHouse, fanned out through Redis) and executing order instructions
(trading-engine → data-bridge → simulator → execution reports), shows every component's
health as it is checked, keeps running when something goes down (and says which and why),
and on Ctrl-C or SIGTERM stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from rich.live import Live
from rich.table import Table

from aitrading.cli.common import STATUS_STYLE as _STYLE
from aitrading.cli.common import console, err_console, real_console
from aitrading.cli.demo_trading import DemoLogin, DemoLoginHolder, DemoTrader, login_file
from aitrading.core.infrastructure.central_hub import CentralHub, Component, HubError, HubHealth
from aitrading.core.infrastructure.config_manager import Settings
from aitrading.core.infrastructure.import_manager import ImportManager
from aitrading.core.stores.components import store_components

PROGRESS_EVERY_S = 5.0


SERVICE_MODULES = (
    "aitrading.services.database_service.app",
    "aitrading.services.data_bridge.app",
    "aitrading.services.trading_engine.app",
    "aitrading.services.api_gateway.app",
)


def prefetch_service_modules() -> threading.Thread:
    """Import the services' modules in a thread while the stores start: about two seconds of
    imports that would otherwise come before the first store is even started. A module that
    fails to import here fails again, with its error, where the service is built."""

    def run() -> None:
        for module in SERVICE_MODULES:
            with contextlib.suppress(Exception):
                importlib.import_module(module)

    thread = threading.Thread(target=run, name="prefetch-service-modules", daemon=True)
    thread.start()
    return thread


def _app(module: str, settings: Settings) -> Any:
    return importlib.import_module(module).create_app(settings)


def service_components(settings: Settings, login: DemoLoginHolder) -> list[Component]:
    """database-service, data-bridge, trading-engine and the MT5 simulator (streaming ticks
    and executing order instructions), in this process. Each service's module is imported
    when its component starts (see `prefetch_service_modules`)."""
    from aitrading.cli.mt5_sim_cmd import development_token
    from aitrading.client.metatrader_connector.simulator_component import SimulatorComponent
    from aitrading.services.common.runner import ServiceComponent

    database_module, bridge_module, engine_module, gateway_module = SERVICE_MODULES
    host, ports = "127.0.0.1", settings.services
    database = ServiceComponent(
        "database-service",
        lambda: _app(database_module, settings),
        host,
        ports.database_service_port,
        "services.database_service_port",
        depends_on=("postgres", "redis", "clickhouse"),
    )
    bridge = ServiceComponent(
        "data-bridge",
        lambda: _app(bridge_module, settings),
        host,
        ports.data_bridge_port,
        "services.data_bridge_port",
        depends_on=("database-service",),
    )

    engine = ServiceComponent(
        "trading-engine",
        lambda: _app(engine_module, settings),
        host,
        ports.trading_engine_port,
        "services.trading_engine_port",
        depends_on=("database-service",),  # which applied the orders schema
    )

    gateway = ServiceComponent(
        "api-gateway",
        lambda: _app(gateway_module, settings),
        host,
        ports.api_gateway_port,
        "services.api_gateway_port",
        depends_on=("database-service", "data-bridge", "trading-engine"),
    )

    async def token() -> str:  # the demo user's own connector (its orders come here)
        return await development_token(settings, (await login.get()).user_id)

    simulator = SimulatorComponent(
        f"ws://{host}:{ports.data_bridge_port}/api/v1/ingest",
        token,
        settings,
        depends_on=("data-bridge", "trading-engine"),
    )
    trader = DemoTrader(f"http://{host}:{ports.api_gateway_port}", login, "demo")
    return [database, bridge, engine, gateway, simulator, trader]


def render(health: HubHealth, started_at: float) -> Table:
    table = Table(
        title=f"aitrading demo — overall [{_STYLE[health.status]}]{health.status.value}[/]"
        f"  (up {time.monotonic() - started_at:.0f}s, Ctrl-C to stop)"
    )
    for column in ("component", "status", "latency", "detail"):
        table.add_column(column)
    for name, comp in health.components.items():
        table.add_row(
            name,
            f"[{_STYLE[comp.status]}]{comp.status.value}[/]",
            f"{comp.latency_s * 1000:.1f} ms",
            comp.reason,
        )
    return table


def summary_line(health: HubHealth) -> str:
    parts = " ".join(f"{name}={h.status.value}" for name, h in health.components.items())
    line = f"overall={health.status.value} {parts}"
    return f"{line} reason: {health.reason}" if health.reason else line


async def run_demo(settings: Settings, duration_s: float | None = None) -> int:
    """Run until a signal (or `duration_s`); return the process exit status."""
    prefetch_service_modules()
    hub = CentralHub(settings.hub)
    imports = ImportManager()
    for component in store_components(settings, imports):
        hub.register(component)
    login = DemoLoginHolder(settings)
    for component in service_components(settings, login):
        hub.register(component)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    started_at = time.monotonic()
    console.print(f"starting {', '.join(hub.start_order())} (data: {settings.data_dir.resolve()})")
    try:
        await hub.start()
    except HubError as exc:
        err_console.print(f"[red]demo could not start:[/] {exc}")
        return 1
    console.print(f"hub ready in {time.monotonic() - started_at:.2f}s")
    costs = ", ".join(f"{r.module} {r.seconds * 1000:.0f} ms" for r in imports.records())
    if costs:
        console.print(f"optional imports: {costs}")
    print_login(await login.get(), settings)

    try:
        await _show(hub, stop, started_at, duration_s)
    finally:
        console.print("stopping everything the demo started ...")
        errors = await hub.stop()
        for error in errors:
            err_console.print(f"[red]stop failed:[/] {error}")
        console.print("stopped")
    return 0


def own_command() -> str:
    """How to run this `aitrading` from the directory the demo runs in (`.venv/bin/aitrading`
    under `make demo`), since the venv is usually not on PATH."""
    script = Path(sys.executable).with_name("aitrading")
    if not script.exists():
        return "aitrading"
    with contextlib.suppress(ValueError):
        return str(script.relative_to(Path.cwd()))
    return str(script)


def print_login(login: DemoLogin, settings: Settings) -> None:
    """The demo login, ready to paste; the password only when it was just made."""
    from aitrading.services.common.urls import api_gateway_url

    gateway = api_gateway_url(settings)
    password = login.password if login.created_now else f"(in {login_file(settings)}, 0600)"
    console.print(f"demo login: {login.email}  password: {password}", soft_wrap=True)
    pasted = login.password if login.created_now else "<password>"
    console.print(
        "try:\n"
        f"  TOKEN=$(curl -s {gateway}/auth/token -H 'content-type: application/json'"
        f' -d \'{{"email": "{login.email}", "password": "{pasted}"}}\''
        " | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')\n"
        f'  curl -s -H "Authorization: Bearer $TOKEN" \'{gateway}/api/v1/market/ohlcv'
        "?symbol=EURUSD&timeframe=1m&start=0&end=9999999999999'\n"
        f"  AITRADING_TOKEN=$TOKEN {own_command()} ticks watch EURUSD --count 5\n"
        f'  curl -s -H "Authorization: Bearer $TOKEN" {gateway}/api/v1/orders'
        ' -H \'content-type: application/json\' -d \'{"client_order_id": "my-1",'
        ' "account": "demo", "symbol": "EURUSD", "side": "buy",'
        ' "type": "market", "volume": 0.1}\'',
        soft_wrap=True,
        markup=False,
        highlight=False,
    )


async def _show(
    hub: CentralHub, stop: asyncio.Event, started_at: float, duration_s: float | None
) -> None:
    deadline = None if duration_s is None else started_at + duration_s

    def remaining() -> float:
        return 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))

    async def next_tick() -> None:
        waiter = asyncio.create_task(stop.wait())
        change = asyncio.create_task(hub.wait_for_change(remaining()))
        await asyncio.wait({waiter, change}, return_when=asyncio.FIRST_COMPLETED)
        for task in (waiter, change):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def finished() -> bool:
        return stop.is_set() or (deadline is not None and time.monotonic() >= deadline)

    if console.is_terminal:
        with Live(
            render(hub.health(), started_at), console=real_console(console), refresh_per_second=4
        ) as live:
            while not finished():
                await next_tick()
                live.update(render(hub.health(), started_at))
        return

    last, last_progress = "", time.monotonic()
    while not finished():
        current = hub.health()
        line = summary_line(current)
        if line != last:  # logs and pipes get one line per change, not a redraw per second
            console.print(line, soft_wrap=True)
            last = line
        if time.monotonic() - last_progress >= PROGRESS_EVERY_S:
            for name in ("mt5-sim", "demo-trader"):  # ticks and orders flowing
                if name in current.components:
                    console.print(f"{name}: {current.components[name].reason}", soft_wrap=True)
            last_progress = time.monotonic()
        await next_tick()
