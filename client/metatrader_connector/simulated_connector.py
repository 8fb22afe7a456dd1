"""A connector with a simulated terminal: what `aitrading mt5-sim` and `make demo` run.

The same `Connector` a trading PC runs (outbox, links, instruction guard, execution reports),
over `SimulatorTerminal`, whose market moves as time passes: ticks to capture, limit orders
that the price crosses, occasional requotes (10004) and rejections (10006).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aitrading.client.metatrader_connector.connector import Connector, ConnectorOptions
from aitrading.client.metatrader_connector.outbox import Outbox
from aitrading.client.metatrader_connector.simulator import DEFAULT_SYMBOLS
from aitrading.client.metatrader_connector.simulator_terminal import SimulatorTerminal
from aitrading.client.security.instruction_guard import InstructionGuard
from aitrading.core.infrastructure.config_manager import Settings
from aitrading.core.infrastructure.event_wait import wait_event
from aitrading.core.security.db_security_manager import TlsMaterial, client_context

STEP_S = 0.05


def simulated_connector(
    settings: Settings,
    url: str,
    token: Callable[[], Awaitable[str]],
    source: str,
    trade: bool = True,
    connections: int = 5,
) -> tuple[Connector, SimulatorTerminal]:
    """Its state lives under `<data_dir>/mt5-sim/<source>/`; with `trade`, instructions are
    verified with the stack's public keys (the key ring these settings load)."""
    from aitrading.core.security.keys import load_key_ring

    folder = settings.data_dir.resolve() / "mt5-sim" / source
    terminal = SimulatorTerminal(requote_probability=0.05, reject_probability=0.02)
    keys = load_key_ring(settings)

    def guard(source_id: str) -> InstructionGuard:
        return InstructionGuard(
            folder / "instructions.db", keys.public_key, settings.security.jwt_issuer, source_id
        )

    connector = Connector(
        ConnectorOptions(
            url=url,
            source=source,
            connections=connections,
            symbols=tuple(m.symbol for m in DEFAULT_SYMBOLS),
            capture_interval_s=STEP_S,
            # wss:// is verified against the configured CA (security.tls_ca_file: the stack's
            # own in Kubernetes), else the system's
            ssl_context=client_context(TlsMaterial.from_settings(settings.security))
            if url.startswith("wss://")
            else None,
        ),
        terminal,
        Outbox(folder / "outbox.db"),
        token,
        guard=guard if trade else None,
    )
    return connector, terminal


async def run_market(terminal: SimulatorTerminal, stop: asyncio.Event | None = None) -> None:
    """Let simulated time pass (ticks appear) until cancelled or `stop` is set."""
    while stop is None or not stop.is_set():
        terminal.advance(STEP_S)
        if stop is None:
            await asyncio.sleep(STEP_S)
        else:
            await wait_event(stop, STEP_S)
