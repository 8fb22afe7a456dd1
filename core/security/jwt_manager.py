"""Access and refresh tokens: EdDSA (Ed25519) only, `kid`-rotated keys, JWKS, revocation.

PyJWT, not python-jose (see docs/decisions/0003-jwt-library.md). One algorithm family is
accepted — the verifier never reads `alg` to choose a key type, so `alg: none` and
HS256-signed-with-the-public-key are refused by construction. Every rejection carries a
precise reason for logs and metrics; HTTP callers answer 401 without it.

Revocation lives in the Redis-protocol store (`RevocationStore`): a jti denylist whose entries
expire with the token, a per-user token version for "revoke everything", and refresh-token
families where presenting an already-rotated refresh token revokes the whole family.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from prometheus_client import CollectorRegistry, Counter

from aitrading.core.security.scopes import DEFAULT_SCOPES, TokenScope, parse_scopes
from aitrading.core.security.verified_tokens import VerifiedTokens

_log = logging.getLogger(__name__)

ALGORITHM = "EdDSA"
MAX_LEEWAY_S = 30
REQUIRED_CLAIMS = ("exp", "iat", "nbf", "iss", "aud", "sub", "jti", "tier", "ent_ver", "typ")


class RejectReason(StrEnum):
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    WRONG_AUDIENCE = "wrong_audience"
    WRONG_ISSUER = "wrong_issuer"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    WRONG_ALGORITHM = "wrong_algorithm"
    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    MISSING_CLAIM = "missing_claim"
    WRONG_TYPE = "wrong_type"
    REVOKED = "revoked"
    REFRESH_REUSED = "refresh_reused"


class TokenRejectedError(Exception):
    """A token was refused; `reason` is for logs and metrics, never for the client."""

    def __init__(self, reason: RejectReason, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"token rejected: {reason.value}" + (f" ({detail})" if detail else ""))


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(kid=uuid.uuid4().hex[:16], private_key=Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, kid: str, pem: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"key {kid!r} is not an Ed25519 private key")
        return cls(kid=kid, private_key=key)

    @functools.cached_property
    def public_key(self) -> Ed25519PublicKey:
        """Derived once: every verified request asks for it."""
        return self.private_key.public_key()

    def jwk(self) -> dict[str, str]:
        raw = self.public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": x,
            "kid": self.kid,
            "use": "sig",
            "alg": ALGORITHM,
        }


class KeyRing:
    """The active signing key plus retired keys still accepted for verification."""

    def __init__(self, active: SigningKey, retired: list[SigningKey] | None = None) -> None:
        self._active = active
        self._retired = list(retired or [])

    @property
    def active(self) -> SigningKey:
        return self._active

    def rotate(self, new: SigningKey | None = None, keep_retired: int = 2) -> SigningKey:
        """Sign with a new key from now on; keep the last `keep_retired` keys for verification."""
        self._retired = [self._active, *self._retired][:keep_retired]
        self._active = new or SigningKey.generate()
        return self._active

    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        for key in (self._active, *self._retired):
            if key.kid == kid:
                return key.public_key
        return None

    def knows(self, kid: str) -> bool:
        """Whether tokens signed with `kid` are still accepted."""
        return any(key.kid == kid for key in (self._active, *self._retired))

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JWKS document the gateway publishes at /.well-known/jwks.json."""
        return {"keys": [k.jwk() for k in (self._active, *self._retired)]}


def revocation_keys(claims: dict[str, Any]) -> tuple[str, str, str | None]:
    """(jti, sub, refresh family) of decoded claims: what a token's revocation state is read by."""
    return str(claims["jti"]), str(claims["sub"]), str(claims["fam"]) if claims.get("fam") else None


class RevocationStore(Protocol):
    async def state(self, jti: str, sub: str, family: str | None) -> tuple[bool, int, bool]: ...

    async def revoke(self, jti: str, ttl_s: int) -> None: ...

    async def user_token_version(self, sub: str) -> int: ...

    async def bump_user_token_version(self, sub: str) -> int: ...

    async def rotate_refresh(self, family: str, jti: str, next_jti: str, ttl_s: int) -> bool: ...

    async def start_family(self, family: str, jti: str, ttl_s: int) -> None: ...

    async def revoke_family(self, family: str, ttl_s: int) -> None: ...


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


class JWTManager:
    """Issues and verifies tokens for one issuer and audience."""

    def __init__(
        self,
        keys: KeyRing,
        revocations: RevocationStore,
        *,
        issuer: str,
        audience: str,
        access_ttl_s: int = 600,
        refresh_ttl_s: int = 14 * 24 * 3600,
        leeway_s: int = 10,
        max_token_bytes: int = 8192,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if not 0 <= leeway_s <= MAX_LEEWAY_S:
            raise ValueError(f"leeway must be between 0 and {MAX_LEEWAY_S} s, got {leeway_s}")
        self._keys = keys
        self._revocations = revocations
        self.issuer = issuer
        self.audience = audience
        self.access_ttl_s = access_ttl_s
        self.refresh_ttl_s = refresh_ttl_s
        self._leeway = leeway_s
        self._max_bytes = max_token_bytes
        self._verified = VerifiedTokens()
        self._rejections = Counter(
            "aitrading_auth_token_rejections",
            "Tokens refused, by reason (clients only ever see 401)",
            ["reason"],
            registry=registry if registry is not None else CollectorRegistry(),
        )

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public keys that verify this manager's tokens (for `/.well-known/jwks.json`)."""
        return self._keys.jwks()

    async def issue(
        self,
        sub: str,
        tier: str,
        entitlement_version: int,
        scopes: tuple[TokenScope, ...] = DEFAULT_SCOPES,
    ) -> TokenPair:
        """A new login (a session): an access token and the first refresh token of a new
        family. Both carry the family, so logging out ends every token of the session."""
        family = uuid.uuid4().hex
        refresh_jti = uuid.uuid4().hex
        await self._revocations.start_family(family, refresh_jti, self.refresh_ttl_s)
        return await self._pair(sub, tier, entitlement_version, family, refresh_jti, scopes)

    async def refresh(self, refresh_token: str, tier: str, entitlement_version: int) -> TokenPair:
        """Rotate: the presented refresh token is spent; presenting it again revokes the family."""
        claims = await self.verify(refresh_token, expected_type="refresh")
        family = str(claims["fam"])
        next_jti = uuid.uuid4().hex
        if not await self._revocations.rotate_refresh(
            family, claims["jti"], next_jti, self.refresh_ttl_s
        ):
            await self._revocations.revoke_family(family, self.refresh_ttl_s)
            raise TokenRejectedError(RejectReason.REFRESH_REUSED, "family revoked")
        granted = claims["scp"] if "scp" in claims else [s.value for s in DEFAULT_SCOPES]
        scopes = parse_scopes(granted)
        return await self._pair(
            str(claims["sub"]), tier, entitlement_version, family, next_jti, scopes
        )

    async def revoke(self, token: str) -> None:
        """Logout: deny this token's jti for the rest of its life, and end its session (the
        refresh family), whichever of the session's tokens is presented."""
        claims = await self.verify(token, expected_type=None)
        remaining = max(1, int(claims["exp"]) - int(time.time()) + self._leeway)
        await self._revocations.revoke(str(claims["jti"]), remaining)
        if claims.get("fam"):
            await self._revocations.revoke_family(str(claims["fam"]), self.refresh_ttl_s)

    async def revoke_all(self, sub: str) -> int:
        """Revoke every token of a user issued so far: bumps the user's token version."""
        return await self._revocations.bump_user_token_version(sub)

    async def verify(self, token: str, expected_type: str | None = "access") -> dict[str, Any]:
        """The claims of a valid token, or `TokenRejectedError` with the precise reason.

        Every rejection is logged with its reason and counted; the token itself never is.
        """
        claims = self.claims(token, expected_type)
        jti, sub, family = revocation_keys(claims)
        self.check_revocation(claims, await self._revocations.state(jti, sub, family))
        return claims

    def claims(self, token: str, expected_type: str | None = "access") -> dict[str, Any]:
        """The first half of `verify`: `decode`, with a rejection logged and counted. A caller
        that fetches the revocation state itself (in a round trip it shares) passes it to
        `check_revocation`, the second half."""
        with self._counted():
            return self.decode(token, expected_type)

    def check_revocation(self, claims: dict[str, Any], state: tuple[bool, int, bool]) -> None:
        """`TokenRejectedError` (logged, counted) unless the state from
        `RevocationStore.state(*revocation_keys(claims))` leaves the token valid."""
        denied, version, family_revoked = state
        with self._counted():
            if denied:
                raise TokenRejectedError(RejectReason.REVOKED, "jti denied")
            if int(claims.get("tv", 0)) < version:
                raise TokenRejectedError(RejectReason.REVOKED, "user token version")
            if family_revoked:
                raise TokenRejectedError(RejectReason.REVOKED, "refresh family")

    @contextlib.contextmanager
    def _counted(self) -> Iterator[None]:
        try:
            yield
        except TokenRejectedError as exc:
            self._rejections.labels(exc.reason.value).inc()
            _log.warning("token rejected: %s", exc.reason.value)
            raise

    def known(self, token: str) -> bool:
        """Whether `decode` would take `token` from the verified cache (unexpired, its key
        still in the ring): it then costs no signature check. The gateway's door lets such a
        request take its per-IP limit in the same Redis call as the revocation check."""
        entry = self._verified.peek(token)
        return entry is not None and self._still_good(*entry)

    def _still_good(self, kid: str, expires: float) -> bool:
        """What can change after a token was verified: its key leaving the ring, its expiry
        (with the leeway, as PyJWT)."""
        return self._keys.knows(kid) and time.time() < expires + self._leeway

    def decode(self, token: str, expected_type: str | None = "access") -> dict[str, Any]:
        """Signature and claim checks without the revocation round trip.

        A token verified before skips the signature check (`verified_tokens.py`) while it is
        unexpired and its key is still in the ring; anything else takes the full path, which
        gives the precise reason."""
        if len(token.encode()) > self._max_bytes:
            raise TokenRejectedError(RejectReason.TOO_LARGE, f"over {self._max_bytes} bytes")
        known = self._verified.get(token)
        if known is not None:
            kid, claims = known
            if self._still_good(kid, float(claims["exp"])):
                return self._of_type(claims, expected_type)
            self._verified.forget(token)
        claims, kid = self._verify_signature_and_claims(token)
        self._verified.put(token, kid, claims)
        return self._of_type(claims, expected_type)

    @staticmethod
    def _of_type(claims: dict[str, Any], expected_type: str | None) -> dict[str, Any]:
        if expected_type is not None and claims.get("typ") != expected_type:
            raise TokenRejectedError(RejectReason.WRONG_TYPE, f"expected {expected_type}")
        return claims

    def _verify_signature_and_claims(self, token: str) -> tuple[dict[str, Any], str]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:  # DecodeError, and a non-string `kid`
            raise TokenRejectedError(RejectReason.MALFORMED, str(exc)) from None
        if header.get("alg") != ALGORITHM:
            raise TokenRejectedError(RejectReason.WRONG_ALGORITHM, repr(header.get("alg")))
        kid = header.get("kid")
        if not isinstance(kid, str) or (key := self._keys.public_key(kid)) is None:
            raise TokenRejectedError(RejectReason.UNKNOWN_KEY, repr(kid))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self._leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejectedError(RejectReason.EXPIRED) from None
        except jwt.ImmatureSignatureError:
            raise TokenRejectedError(RejectReason.NOT_YET_VALID) from None
        except jwt.InvalidAudienceError:
            raise TokenRejectedError(RejectReason.WRONG_AUDIENCE) from None
        except jwt.InvalidIssuerError:
            raise TokenRejectedError(RejectReason.WRONG_ISSUER) from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRejectedError(RejectReason.MISSING_CLAIM, exc.claim) from None
        except jwt.InvalidSignatureError:
            raise TokenRejectedError(RejectReason.BAD_SIGNATURE) from None
        except jwt.InvalidTokenError as exc:
            raise TokenRejectedError(RejectReason.MALFORMED, type(exc).__name__) from None
        return claims, kid

    async def _pair(
        self,
        sub: str,
        tier: str,
        entitlement_version: int,
        family: str,
        refresh_jti: str,
        scopes: tuple[TokenScope, ...],
    ) -> TokenPair:
        version = await self._revocations.user_token_version(sub)
        base = {
            "sub": sub,
            "tier": tier,
            "ent_ver": entitlement_version,
            "tv": version,
            "fam": family,
            "scp": [s.value for s in scopes],
        }
        access = self._sign({**base, "typ": "access", "jti": uuid.uuid4().hex}, self.access_ttl_s)
        refresh = self._sign({**base, "typ": "refresh", "jti": refresh_jti}, self.refresh_ttl_s)
        return TokenPair(access, refresh, self.access_ttl_s)

    def _sign(self, claims: dict[str, Any], ttl_s: int) -> str:
        now = int(time.time())
        payload = {
            **claims,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_s,
        }
        key = self._keys.active
        return jwt.encode(payload, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})
