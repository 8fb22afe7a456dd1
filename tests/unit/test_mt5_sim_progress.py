"""mt5-sim's progress line says how many links are down and the last reason, so a stalled
stream explains itself (the e2e drill prints these lines when it fails)."""

from __future__ import annotations

from pathlib import Path

from aitrading.cli.mt5_sim_cmd import _links_down
from aitrading.client.metatrader_connector.connector import (
    Connector,
    ConnectorOptions,
    LinkState,
)
from aitrading.client.metatrader_connector.outbox import Outbox
from aitrading.client.metatrader_connector.simulator_terminal import SimulatorTerminal


def _connector(tmp_path: Path) -> Connector:
    async def token() -> str:
        return "unused"

    return Connector(
        ConnectorOptions(url="ws://127.0.0.1:9/none", connections=3),
        SimulatorTerminal(),
        Outbox(tmp_path / "o.db"),
        token,
    )


def test_all_links_up_adds_nothing(tmp_path: Path) -> None:
    conn = _connector(tmp_path)
    for link in conn.links:
        link.state = LinkState.CONNECTED
    assert _links_down(conn) == ""


def test_links_down_are_counted_with_their_last_error(tmp_path: Path) -> None:
    conn = _connector(tmp_path)
    conn.links[0].state = LinkState.CONNECTED
    conn.links[1].last_error = "ConnectionError: refused: auth_failed: token rejected"
    assert _links_down(conn) == (
        "; 2 of 3 links down (last error: ConnectionError: refused: auth_failed: token rejected)"
    )
    conn.links[1].last_error = ""
    assert _links_down(conn) == "; 2 of 3 links down"
