"""What a token may be used for, beyond who it belongs to.

A person's login reads (market data, orders of their own); only a connector identity — a
token minted for an API key that carries the `ingest` scope — may publish ticks, account
info and positions, which every other user then reads as market data. Tokens carry their
scopes in the `scp` claim; a token without the claim (issued before scopes existed) reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any


class TokenScope(StrEnum):
    READ = "read"
    INGEST = "ingest"


DEFAULT_SCOPES: tuple[TokenScope, ...] = (TokenScope.READ,)


def parse_scopes(values: Iterable[str]) -> tuple[TokenScope, ...]:
    """Known scopes, in a stable order; `ValueError` naming an unknown one."""
    found = set()
    for value in values:
        try:
            found.add(TokenScope(value))
        except ValueError:
            known = ", ".join(s.value for s in TokenScope)
            raise ValueError(f"unknown scope {value!r} (known: {known})") from None
    return tuple(sorted(found))


def has_scope(claims: Mapping[str, Any], scope: TokenScope) -> bool:
    granted = claims.get("scp")
    if granted is None:
        return scope in DEFAULT_SCOPES
    return isinstance(granted, list) and scope.value in granted
