"""`aitrading mt5-sim`: stream simulated MT5 ticks to data-bridge over the real protocol."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from aitrading.cli.common import ConfigOption, console, err_console, load_or_exit
from aitrading.core.infrastructure.config_manager import Settings
from aitrading.core.security.scopes import TokenScope

if TYPE_CHECKING:
    from aitrading.client.metatrader_connector.sim_terminal import SimulatedTerminal


async def development_token(
    settings: Settings,
    subject: str,
    tier: str = "pro",
    scopes: tuple[TokenScope, ...] = (TokenScope.INGEST,),
) -> str:
    """A token signed with the development key (never in production); by default a
    connector's (ingest), as the simulator needs; readers pass `(TokenScope.READ,)`."""
    from aitrading.core.security.jwt_manager import JWTManager
    from aitrading.core.security.keys import load_key_ring
    from aitrading.core.security.token_revocation import RedisRevocationStore
    from aitrading.core.stores.redis_store import RedisStore

    if settings.environment == "production":
        raise typer.BadParameter("pass --token: production does not mint development tokens")
    store = RedisStore.create(settings)
    try:
        manager = JWTManager(
            load_key_ring(settings),
            RedisRevocationStore(store.client),
            issuer=settings.security.jwt_issuer,
            audience=settings.security.jwt_audience,
            access_ttl_s=settings.security.access_token_ttl_s,
        )
        return (await manager.issue(subject, tier, 1, scopes)).access_token
    finally:
        await store.close()


async def run_simulator(
    url: str,
    token: str,
    duration_s: float | None,
    batch: bool,
    source: str,
    report_every_s: float = 5.0,
    quiet: bool = False,
    settings: Settings | None = None,
) -> int:
    """Stream ticks; with `settings`, also execute the platform's order instructions."""
    from aitrading.client.metatrader_connector.bridge_client import BridgeClient
    from aitrading.client.metatrader_connector.sim_terminal import terminal_for
    from aitrading.client.metatrader_connector.simulator import Simulator

    terminal: list[SimulatedTerminal] = []

    async def on_order(instruction: str) -> None:
        if terminal:
            await terminal[0].on_order(instruction)

    client = BridgeClient(url, token, source, on_order=on_order if settings else None)
    await client.connect()
    simulator = Simulator()
    if settings is not None:
        terminal.append(terminal_for(settings, client, simulator))
        await terminal[0].send_state()
    started = last_report = last = time.monotonic()
    try:
        while duration_s is None or time.monotonic() - started < duration_s:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            ticks = simulator.ticks_for(now - last)
            last = now
            if ticks:
                await client.send_ticks(ticks, one_frame=batch)
                if terminal:
                    await terminal[0].check_resting()
            if not quiet and now - last_report >= report_every_s:
                last_report = now
                stats = client.stats
                console.print(
                    f"mt5-sim: {stats.frames_sent} frames, {stats.ticks_acked} ticks "
                    f"acked, {len(client.unacked)} in flight, errors {stats.errors}"
                )
        await client.wait_acked(30)
    finally:
        await client.close()
    return client.stats.ticks_acked


def mt5_sim(
    config: Path | None = ConfigOption,
    url: str | None = typer.Option(None, help="data-bridge ingest URL (default: local)"),
    token: str | None = typer.Option(
        None, envvar="AITRADING_MT5_TOKEN", help="access token; development mints one"
    ),
    duration: float | None = typer.Option(None, min=0.1, help="seconds; default: until Ctrl-C"),
    batch: bool = typer.Option(True, help="send each interval's ticks as one `ticks` frame"),
    source: str = typer.Option("sim", help="terminal name, part of the tick source id"),
    trade: bool = typer.Option(
        True, help="execute the platform's signed order instructions like a terminal would"
    ),
) -> None:
    """Simulated MT5 ticks (random walk, spreads, bursts) through the real protocol; with
    --trade (default) it also executes order instructions (fills at the simulated price,
    occasional requotes and rejections with MT5 retcodes) and reports positions."""
    settings = load_or_exit(config).settings
    target = url or f"ws://127.0.0.1:{settings.services.data_bridge_port}/api/v1/ingest"
    try:
        bearer = token or asyncio.run(development_token(settings, "mt5-sim"))
        acked = asyncio.run(
            run_simulator(
                target, bearer, duration, batch, source, settings=settings if trade else None
            )
        )
    except (ConnectionError, OSError) as exc:
        err_console.print(f"mt5-sim: cannot stream to {target}: {exc}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        return
    console.print(f"mt5-sim: {acked} ticks acked")
