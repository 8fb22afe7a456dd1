"""Service-to-service identity: short-lived signed tokens, one audience per callee.

Zero trust between services: database-service does not take a write because the request came
from inside the cluster network. Each calling service presents, in `X-Aitrading-Service-Token`,
an EdDSA token it signed with the stack's key ring (the same Secret as user tokens): `sub` is
`service:<caller>`, `aud` is `service:<callee>`, `typ` is `service`, valid for five minutes.
The callee accepts only its own audience and the callers it names. A user's access token is
never a service token (`typ` differs), and a token for one service is useless at another.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

from aitrading.core.security.jwt_manager import ALGORITHM, KeyRing

HEADER = "x-aitrading-service-token"
TOKEN_TTL_S = 300


class ServiceIdentityError(Exception):
    """The request carries no acceptable service identity; the message says why (logged)."""


class ServiceIdentity:
    """This service's identity toward the others; tokens are reused until half their life."""

    def __init__(self, keys: KeyRing, issuer: str, service: str, ttl_s: int = TOKEN_TTL_S) -> None:
        self._keys = keys
        self._issuer = issuer
        self.service = service
        self._ttl = ttl_s
        self._cache: dict[str, tuple[float, str]] = {}

    def token_for(self, callee: str) -> str:
        now = time.time()
        cached = self._cache.get(callee)
        if cached is not None and cached[0] > now:
            return cached[1]
        issued = int(now)
        key = self._keys.active
        token = jwt.encode(
            {
                "iss": self._issuer,
                "sub": f"service:{self.service}",
                "aud": f"service:{callee}",
                "typ": "service",
                "iat": issued,
                "nbf": issued,
                "exp": issued + self._ttl,
                "jti": uuid.uuid4().hex,
            },
            key.private_key,
            algorithm=ALGORITHM,
            headers={"kid": key.kid},
        )
        self._cache[callee] = (now + self._ttl / 2, token)
        return token

    def headers_for(self, callee: str) -> dict[str, str]:
        return {HEADER: self.token_for(callee)}


class ServiceTokenVerifier:
    """What a callee uses: its own audience, and the services allowed to call it."""

    def __init__(
        self, keys: KeyRing, issuer: str, callee: str, callers: frozenset[str], leeway_s: int = 10
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = f"service:{callee}"
        self._callers = callers
        self._leeway = leeway_s

    def verify(self, token: str | None) -> str:
        """The calling service's name, or `ServiceIdentityError` with the reason."""
        if not token:
            raise ServiceIdentityError("no service token")
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._keys.public_key(kid) if isinstance(kid, str) else None
            if key is None:
                raise ServiceIdentityError("unknown signing key")
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "typ"]},
            )
        except jwt.InvalidTokenError as exc:
            raise ServiceIdentityError(f"invalid service token: {type(exc).__name__}") from None
        if claims.get("typ") != "service":
            raise ServiceIdentityError("not a service token")
        caller = str(claims["sub"]).removeprefix("service:")
        if caller not in self._callers:
            raise ServiceIdentityError(f"service {caller!r} may not call this service")
        return caller
