"""The platform's public keys, which sign order instructions: the gateway's JWKS.

Fetched over HTTPS (the connector's pinned CA when configured) and refreshed when an
instruction names a key id not seen yet (the platform rotated its key), at most once a
minute — so a flood of forged key ids cannot turn the connector into a JWKS hammer.
"""

from __future__ import annotations

import base64
import ssl
import time

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

REFRESH_AT_MOST_EVERY_S = 60.0


def keys_from_jwks(document: dict[str, object]) -> dict[str, Ed25519PublicKey]:
    found: dict[str, Ed25519PublicKey] = {}
    entries = document.get("keys")
    for jwk in entries if isinstance(entries, list) else []:
        if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        raw = base64.urlsafe_b64decode(str(jwk["x"]) + "=" * (-len(str(jwk["x"])) % 4))
        found[str(jwk["kid"])] = Ed25519PublicKey.from_public_bytes(raw)
    return found


class PlatformKeys:
    def __init__(self, gateway_url: str, verify: ssl.SSLContext | bool = True) -> None:
        self._url = gateway_url.rstrip("/") + "/.well-known/jwks.json"
        self._verify = verify
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._fetched_at = float("-inf")

    def refresh(self) -> None:
        answer = httpx.get(self._url, verify=self._verify, timeout=10)
        answer.raise_for_status()
        self._keys = keys_from_jwks(answer.json())
        self._fetched_at = time.monotonic()

    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        if kid not in self._keys and time.monotonic() - self._fetched_at >= REFRESH_AT_MOST_EVERY_S:
            try:
                self.refresh()
            except httpx.HTTPError:
                return None
        return self._keys.get(kid)
