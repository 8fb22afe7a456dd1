"""`aitrading mt5-sim`: stream simulated MT5 ticks to data-bridge over the real protocol."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from aitrading.cli.common import ConfigOption, console, err_console, load_or_exit
from aitrading.core.infrastructure.config_manager import (
    MT5_API_KEY_ENV,
    MT5_TOKEN_ENV,
    Settings,
)
from aitrading.core.infrastructure.environment import rules_for
from aitrading.core.security.scopes import TokenScope

if TYPE_CHECKING:
    from aitrading.client.metatrader_connector.connector import Connector


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

    if not rules_for(settings.environment).dev_tokens:
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


async def _stop_market(market: asyncio.Task[None]) -> None:
    market.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await market


class NoLinkError(ConnectionError):
    """No link reached data-bridge in time; the message has the links' last errors."""


async def run_simulator(
    settings: Settings,
    url: str,
    token: Callable[[], Awaitable[str]],
    duration_s: float | None,
    source: str,
    trade: bool = True,
    report_every_s: float = 5.0,
    connect_within_s: float = 15.0,
) -> int:
    """The simulated connector until `duration_s` (or Ctrl-C); the ticks acked. `token` is
    asked for a token on every (re)connect of a link."""
    from aitrading.client.metatrader_connector.simulated_connector import (
        run_market,
        simulated_connector,
    )

    connector, terminal = simulated_connector(settings, url, token, source, trade)
    # SIGTERM (a container's stop, a service manager) and Ctrl-C end the run the way the
    # duration does: what was captured still goes out, and the final count is printed.
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
            loop.add_signal_handler(signum, stopping.set)
    await connector.start()
    market = asyncio.create_task(run_market(terminal))
    started = last_report = time.monotonic()
    try:
        while not any(link.state.value == "connected" for link in connector.links):
            if time.monotonic() - started > connect_within_s:
                errors = {link.last_error for link in connector.links if link.last_error}
                raise NoLinkError("; ".join(sorted(errors)) or "no answer")
            await asyncio.sleep(0.1)
        while not stopping.is_set() and (
            duration_s is None or time.monotonic() - started < duration_s
        ):
            await asyncio.sleep(0.1)
            if time.monotonic() - last_report >= report_every_s:
                last_report = time.monotonic()
                status = connector.status()
                console.print(
                    f"mt5-sim: {connector.stats.ticks_acked} ticks acked,"
                    f" {status['outbox_depth']} in the outbox,"
                    f" {connector.stats.instructions_executed} orders executed"
                    + _links_down(connector)
                )
        # The market stops first, so nothing new is captured; then up to 30 s for what was
        # captured to be acked (the count printed is then every tick the terminal produced).
        await _stop_market(market)
        for _ in range(300):
            if not any(f.kind == "ticks" for f in connector.outbox.pending()):
                break
            await asyncio.sleep(0.1)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
        await _stop_market(market)
        await connector.stop()
    return connector.stats.ticks_acked


def _links_down(connector: Connector) -> str:
    """What a user needs when the stream stalls: how many links are down, and why."""
    down = [link for link in connector.links if link.state.value != "connected"]
    if not down:
        return ""
    errors = sorted({link.last_error for link in down if link.last_error})
    why = f" (last error: {errors[-1]})" if errors else ""
    return f"; {len(down)} of {len(connector.links)} links down{why}"


def _token_source(
    settings: Settings, token: str | None, api_key: str | None, gateway_url: str | None
) -> Callable[[], Awaitable[str]]:
    """An API key mints and renews tokens at the gateway (a stream that outlives a token);
    a fixed --token serves until it expires; development mints one with its own key."""
    if api_key:
        from aitrading.client.metatrader_connector.platform_tokens import ConnectorTokens
        from aitrading.core.security.db_security_manager import TlsMaterial, client_context

        gateway = gateway_url or f"http://127.0.0.1:{settings.services.api_gateway_port}"
        verify = (
            client_context(TlsMaterial.from_settings(settings.security))
            if gateway.startswith("https://")
            else True
        )
        return ConnectorTokens(gateway, api_key, verify=verify)
    fixed = token or asyncio.run(development_token(settings, "mt5-sim"))

    async def bearer() -> str:
        return fixed

    return bearer


def mt5_sim(
    config: Path | None = ConfigOption,
    url: str | None = typer.Option(None, help="data-bridge ingest URL (default: local)"),
    token: str | None = typer.Option(
        None, envvar=MT5_TOKEN_ENV, help="access token; development mints one"
    ),
    api_key: str | None = typer.Option(
        None,
        envvar=MT5_API_KEY_ENV,
        help="an API key with the ingest scope: tokens are minted and renewed at the gateway",
    ),
    gateway_url: str | None = typer.Option(
        None, help="api-gateway base URL for --api-key (default: local)"
    ),
    duration: float | None = typer.Option(None, min=0.1, help="seconds; default: until Ctrl-C"),
    source: str = typer.Option("sim", help="terminal name, part of the tick source id"),
    trade: bool = typer.Option(
        True, help="execute the platform's signed order instructions like a terminal would"
    ),
) -> None:
    """A simulated MT5 terminal behind the real connector (durable outbox, 5 links): random-walk
    ticks in; with --trade (default) signed order instructions executed (fills at the
    simulated price, occasional requotes and rejections with MT5 retcodes) and reported."""
    settings = load_or_exit(config).settings
    target = url or f"ws://127.0.0.1:{settings.services.data_bridge_port}/api/v1/ingest"
    try:
        bearer = _token_source(settings, token, api_key, gateway_url)
        acked = asyncio.run(run_simulator(settings, target, bearer, duration, source, trade))
    except (ConnectionError, OSError) as exc:
        err_console.print(f"mt5-sim: cannot stream to {target}: {exc}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        return
    console.print(f"mt5-sim: {acked} ticks acked")
