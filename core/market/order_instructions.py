"""Signed order instructions: what the trading-engine asks an MT5 connector to do.

An instruction is a compact JWS (EdDSA, the stack's key ring, `kid` in the header) with
`typ: "order"`, an audience naming the one connector it is for (`connector:<source>`), an
expiry and a nonce (`jti`). A connector executes an instruction only when the signature is
valid for a key it trusts, the audience is its own, it has not expired, and it has not
executed that order id before — so a replayed, redirected, stale or forged instruction does
nothing. An access token is never an instruction (`typ` differs) and vice versa.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from aitrading.core.security.jwt_manager import ALGORITHM, KeyRing

TYPE = "order"


class InstructionKind(StrEnum):
    PLACE = "place"
    CANCEL = "cancel"


class InstructionRejectedError(Exception):
    """The instruction must not be executed; the message says why."""


@dataclass(frozen=True)
class SignedInstruction:
    token: str
    nonce: str
    expires_at: float  # unix seconds


def sign_instruction(
    keys: KeyRing,
    issuer: str,
    target: str,
    kind: InstructionKind,
    order: dict[str, Any],
    ttl_s: float,
    now: float | None = None,
) -> SignedInstruction:
    issued = time.time() if now is None else now
    nonce = uuid.uuid4().hex
    expires = issued + ttl_s
    key = keys.active
    token = jwt.encode(
        {
            "iss": issuer,
            "aud": f"connector:{target}",
            "typ": TYPE,
            "kind": kind.value,
            "order": order,
            "iat": int(issued),
            "exp": int(expires),
            "jti": nonce,
        },
        key.private_key,
        algorithm=ALGORITHM,
        headers={"kid": key.kid},
    )
    return SignedInstruction(token, nonce, float(int(expires)))


def verify_instruction(
    token: str,
    public_key: Callable[[str], Ed25519PublicKey | None],
    issuer: str,
    target: str,
    leeway_s: int = 2,
) -> dict[str, Any]:
    """The instruction's claims, or `InstructionRejectedError` saying why it must not run."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = public_key(kid) if isinstance(kid, str) else None
        if key is None:
            raise InstructionRejectedError("signed by an unknown key")
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=[ALGORITHM],
            audience=f"connector:{target}",
            issuer=issuer,
            leeway=leeway_s,
            options={"require": ["exp", "iat", "iss", "aud", "jti", "typ"]},
        )
    except jwt.ExpiredSignatureError:
        raise InstructionRejectedError("expired") from None
    except jwt.InvalidAudienceError:
        raise InstructionRejectedError("meant for another connector") from None
    except jwt.InvalidTokenError as exc:
        raise InstructionRejectedError(f"invalid: {type(exc).__name__}") from None
    if claims.get("typ") != TYPE or claims.get("kind") not in set(InstructionKind):
        raise InstructionRejectedError("not an order instruction")
    if not isinstance(claims.get("order"), dict) or "id" not in claims["order"]:
        raise InstructionRejectedError("no order in the instruction")
    return claims
