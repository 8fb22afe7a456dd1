"""Tokens already verified, so a client's next request with the same bearer token skips the
Ed25519 check and the JWT decode (a fifth of the gateway's CPU per proxied request in the
profile of bench/gateway_overhead.py; a client sends one access token for ten minutes).

An entry proves only that the signature and the claims were good when first checked. On every
hit the caller checks again what can change with time — expiry, and whether the signing key
is still in the ring — and revocation is never cached: it is asked on every request. Bounded
(least recently used first out), so a flood of distinct tokens costs a fixed amount of memory.
"""

from __future__ import annotations

import collections
import copy
from typing import Any


class VerifiedTokens:
    def __init__(self, capacity: int = 10_000) -> None:
        self._entries: collections.OrderedDict[str, tuple[str, dict[str, Any]]] = (
            collections.OrderedDict()
        )
        self._capacity = capacity

    def get(self, token: str) -> tuple[str, dict[str, Any]] | None:
        """(key id, a copy of the claims) of a token verified before, or None."""
        entry = self._entries.get(token)
        if entry is None:
            return None
        self._entries.move_to_end(token)
        return entry[0], copy.deepcopy(entry[1])  # callers may change theirs, never ours

    def peek(self, token: str) -> tuple[str, float] | None:
        """(key id, expiry) of a token verified before, without copying its claims."""
        entry = self._entries.get(token)
        return (entry[0], float(entry[1]["exp"])) if entry is not None else None

    def put(self, token: str, kid: str, claims: dict[str, Any]) -> None:
        self._entries[token] = (kid, copy.deepcopy(claims))
        self._entries.move_to_end(token)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def forget(self, token: str) -> None:
        self._entries.pop(token, None)
