"""The simulated terminal executes like MT5: once per order id, only verified instructions,
requotes and rejections with the real retcodes."""

from __future__ import annotations

import asyncio
from typing import Any

from aitrading.client.metatrader_connector.simulator import Simulator
from aitrading.core.market.order_instructions import InstructionKind, sign_instruction
from aitrading.core.security.jwt_manager import KeyRing, SigningKey
from tests.support.bridge_executor import (
    TRADE_RETCODE_DONE,
    TRADE_RETCODE_REQUOTE,
    SimulatedTerminal,
)


class RecordingClient:
    """What the terminal sends, recorded (the unit under test is the terminal)."""

    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []
        self.state_frames = 0

    async def send_report(self, report: dict[str, Any]) -> int:
        self.reports.append(report)
        return len(self.reports)

    async def send_positions(self, login: int, positions: list[dict[str, Any]]) -> int:
        self.state_frames += 1
        return 0

    async def send_account(self, account: dict[str, Any]) -> int:
        self.state_frames += 1
        return 0


def terminal(
    keys: KeyRing, requote_probability: float = 0.0
) -> tuple[SimulatedTerminal, RecordingClient]:
    client = RecordingClient()
    return (
        SimulatedTerminal(
            client,  # type: ignore[arg-type]
            Simulator(seed=1),
            keys.public_key,
            "aitrading",
            "u1:t1",
            requote_probability=requote_probability,
        ),
        client,
    )


def place(keys: KeyRing, order_id: str, target: str = "u1:t1") -> str:
    order = {"id": order_id, "symbol": "EURUSD", "side": "buy", "type": "market", "volume": 0.1}
    return sign_instruction(keys, "aitrading", target, InstructionKind.PLACE, order, 30).token


def test_executes_each_order_once_and_only_verified_instructions() -> None:
    keys = KeyRing(SigningKey.generate())
    sim, client = terminal(keys)
    token = place(keys, "a" * 32)
    asyncio.run(sim.on_order(token))
    asyncio.run(sim.on_order(token))  # delivered again after a reconnect
    assert [(r["status"], r["retcode"]) for r in client.reports] == [("filled", TRADE_RETCODE_DONE)]
    assert sim.positions["EURUSD"].volume == 0.1
    asyncio.run(sim.on_order(place(keys, "b" * 32, target="u2:t1")))  # someone else's
    asyncio.run(sim.on_order(place(KeyRing(SigningKey.generate()), "c" * 32)))  # forged
    assert len(client.reports) == 1
    assert sim.refused == ["meant for another connector", "signed by an unknown key"]


def test_requotes_carry_the_mt5_retcode() -> None:
    keys = KeyRing(SigningKey.generate())
    sim, client = terminal(keys, requote_probability=1.0)
    asyncio.run(sim.on_order(place(keys, "d" * 32)))
    assert [(r["status"], r["retcode"]) for r in client.reports] == [
        ("rejected", TRADE_RETCODE_REQUOTE)
    ]
    assert sim.positions == {}
