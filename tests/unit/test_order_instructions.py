"""Signed order instructions: only the right connector runs them, only while valid."""

from __future__ import annotations

import time

import jwt
import pytest

from aitrading.core.market.order_instructions import (
    InstructionKind,
    InstructionRejectedError,
    sign_instruction,
    verify_instruction,
)
from aitrading.core.security.jwt_manager import KeyRing, SigningKey

ORDER = {"id": "a" * 32, "symbol": "EURUSD", "side": "buy", "volume": 0.1}


def test_a_valid_instruction_is_verified_for_its_connector() -> None:
    keys = KeyRing(SigningKey.generate())
    signed = sign_instruction(keys, "aitrading", "u1:t1", InstructionKind.PLACE, ORDER, 30)
    claims = verify_instruction(signed.token, keys.public_key, "aitrading", "u1:t1")
    assert claims["order"] == ORDER
    assert claims["kind"] == "place"
    assert claims["jti"] == signed.nonce
    assert signed.expires_at > time.time()


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("other connector", "another connector"),
        ("expired", "expired"),
        ("forged", "unknown key"),
        ("other issuer", "invalid"),
        ("tampered", "invalid"),
        ("not an instruction", "not an order instruction"),
    ],
)
def test_a_bad_instruction_is_never_executed(case: str, why: str) -> None:
    keys = KeyRing(SigningKey.generate())
    target, issuer = "u1:t1", "aitrading"
    token = sign_instruction(keys, issuer, target, InstructionKind.PLACE, ORDER, 30).token
    if case == "other connector":
        target = "u2:t1"
    elif case == "expired":
        token = sign_instruction(
            keys, issuer, target, InstructionKind.PLACE, ORDER, 1, now=time.time() - 60
        ).token
    elif case == "forged":
        token = sign_instruction(
            KeyRing(SigningKey.generate()), issuer, target, InstructionKind.PLACE, ORDER, 30
        ).token
    elif case == "other issuer":
        issuer = "someone-else"
    elif case == "tampered":
        head, body, sig = token.split(".")
        token = ".".join((head, body[:-2] + ("AA" if body[-2:] != "AA" else "BB"), sig))
    elif case == "not an instruction":  # an access-token-like JWS with the same key
        key = keys.active
        token = jwt.encode(
            {
                "iss": issuer,
                "aud": f"connector:{target}",
                "typ": "access",
                "iat": int(time.time()),
                "exp": int(time.time()) + 60,
                "jti": "x",
            },
            key.private_key,
            algorithm="EdDSA",
            headers={"kid": key.kid},
        )
    with pytest.raises(InstructionRejectedError, match=why):
        verify_instruction(token, keys.public_key, issuer, target)
