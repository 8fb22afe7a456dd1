"""The simulated terminal executes like MT5: once per order id, only verified instructions,
requotes and rejections with the real retcodes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

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


def test_the_simulated_connector_verifies_wss_against_the_configured_ca(tmp_path: Path) -> None:
    """In a cluster the gateway's certificate comes from the stack's CA: mt5-sim must trust
    that CA (security.tls_ca_file), not only the system's."""
    from aitrading.client.metatrader_connector.simulated_connector import simulated_connector
    from aitrading.core.infrastructure.config_manager import load_settings
    from aitrading.operator.service_certs import new_ca

    key = tmp_path / "jwt.pem"
    key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ca = tmp_path / "ca.crt"
    ca.write_bytes(new_ca("t")[1])
    settings = load_settings(
        environ={
            "AITRADING_DATA_DIR": str(tmp_path),
            "AITRADING_SECURITY_JWT_KEY_FILE": str(key),
            "AITRADING_SECURITY_TLS_CA_FILE": str(ca),
        }
    ).settings

    async def token() -> str:
        return "t"

    secure, _ = simulated_connector(settings, "wss://gw.example:8000/api/v1/ingest", token, "a")
    context = secure.options.ssl_context
    assert context is not None
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "aitrading t CA"),),)
    ]
    plain, _ = simulated_connector(settings, "ws://127.0.0.1:8001/api/v1/ingest", token, "b")
    assert plain.options.ssl_context is None
