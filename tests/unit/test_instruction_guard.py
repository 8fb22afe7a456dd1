"""Signal validation: forged, expired, misdirected, replayed (also after a restart) and
over-limit instructions never reach the terminal."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from aitrading.client.security.instruction_guard import InstructionGuard, LocalLimits
from aitrading.core.market.order_instructions import (
    InstructionKind,
    InstructionRejectedError,
    sign_instruction,
)
from aitrading.core.security.jwt_manager import KeyRing, SigningKey

SOURCE = "u1:t1"


def token(keys: KeyRing, order_id: str, **order: object) -> str:
    body = {"id": order_id, "symbol": "EURUSD", "side": "buy", "type": "market", "volume": 0.1}
    body.update(order)
    return sign_instruction(keys, "aitrading", SOURCE, InstructionKind.PLACE, body, 30).token


def guard(keys: KeyRing, path: Path, limits: LocalLimits = LocalLimits()) -> InstructionGuard:  # noqa: B008
    return InstructionGuard(path, keys.public_key, "aitrading", SOURCE, limits)


def test_admits_once_and_refuses_a_replay_even_after_a_restart(tmp_path: Path) -> None:
    keys = KeyRing(SigningKey.generate())
    first = guard(keys, tmp_path / "seen.db")
    signed = token(keys, "a" * 32)
    admitted = first.admit(signed)
    assert admitted.order["id"] == "a" * 32
    with pytest.raises(InstructionRejectedError, match="replayed"):
        first.admit(signed)
    with pytest.raises(InstructionRejectedError, match="replayed"):  # re-signed, same order
        first.admit(token(keys, "a" * 32))
    first.close()
    restarted = guard(keys, tmp_path / "seen.db")  # the PC rebooted
    with pytest.raises(InstructionRejectedError, match="replayed"):
        restarted.admit(signed)


def test_forged_expired_misdirected_and_over_limit_are_refused(tmp_path: Path) -> None:
    keys = KeyRing(SigningKey.generate())
    checker = guard(
        keys, tmp_path / "seen.db", LocalLimits(max_volume=1.0, symbols=frozenset({"EURUSD"}))
    )
    forged = token(KeyRing(SigningKey.generate()), "b" * 32)
    expired = sign_instruction(
        keys,
        "aitrading",
        SOURCE,
        InstructionKind.PLACE,
        {"id": "c" * 32, "volume": 0.1},
        1,
        now=time.time() - 120,
    ).token
    elsewhere = sign_instruction(
        keys, "aitrading", "u2:t9", InstructionKind.PLACE, {"id": "d" * 32, "volume": 0.1}, 30
    ).token
    for bad, why in (
        (forged, "unknown key"),
        (expired, "expired"),
        (elsewhere, "another connector"),
        (token(keys, "e" * 32, volume=5.0), "limit"),
        (token(keys, "f" * 32, symbol="XAUUSD"), "not traded here"),
    ):
        with pytest.raises(InstructionRejectedError, match=why):
            checker.admit(bad)
    assert checker.admit(token(keys, "e" * 32, volume=1.0)).order["volume"] == 1.0
