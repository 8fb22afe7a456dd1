"""The gateway's route table (the upstream client is `upstreams.py`).

Every path the gateway serves is in one table, which says where it goes, who may call it
(public, any authenticated caller, admin) and whether a symbol entitlement applies — the
route-table test walks it to prove no non-public route answers an anonymous caller.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Access(StrEnum):
    PUBLIC = "public"
    USER = "user"
    ADMIN = "admin"


@dataclass(frozen=True)
class Route:
    prefix: str  # gateway path prefix
    upstream: str  # service name
    rewrite: str  # upstream path prefix that replaces `prefix`
    access: Access = Access.USER
    methods: frozenset[str] = frozenset({"GET"})
    symbol_param: str | None = None  # query parameter checked against entitlements
    feature: str | None = None  # plan feature the route needs

    def upstream_path(self, path: str) -> str:
        return self.rewrite + path[len(self.prefix) :]


DEFAULT_ROUTES: tuple[Route, ...] = (
    Route(
        "/api/v1/market/ticks",
        "database-service",
        "/api/v1/ticks",
        symbol_param="symbol",
        feature="ticks",
    ),
    Route(
        "/api/v1/market/ohlcv",
        "database-service",
        "/api/v1/ohlcv",
        symbol_param="symbol",
        feature="ohlcv",
    ),
    Route(
        "/api/v1/orders",
        "trading-engine",
        "/api/v1/orders",
        methods=frozenset({"GET", "POST", "DELETE"}),
        feature="orders",
    ),
    Route("/api/v1/positions", "trading-engine", "/api/v1/positions", feature="orders"),
    Route(
        "/api/v1/risk",
        "trading-engine",
        "/api/v1/risk",
        access=Access.ADMIN,
        methods=frozenset({"GET", "PUT"}),
    ),
    Route(
        "/api/v1/db",
        "database-service",
        "/api/v1",
        access=Access.ADMIN,
        methods=frozenset({"GET", "POST", "PUT", "DELETE"}),
    ),
)


def match(routes: tuple[Route, ...], path: str) -> Route | None:
    best = None
    for route in routes:
        if (path == route.prefix or path.startswith(route.prefix + "/")) and (
            best is None or len(route.prefix) > len(best.prefix)
        ):
            best = route
    return best


_MATCHED = "aitrading.route"


def routed(scope: MutableMapping[str, Any], routes: tuple[Route, ...]) -> Route | None:
    """`match` for this request's path, once per request: the door (deciding whether the
    per-IP limit can be deferred) and the proxy both need it; the answer is kept in the
    request's state, with the path it was matched for."""
    state: dict[str, Any] = scope.setdefault("state", {})
    path = str(scope["path"])
    kept = state.get(_MATCHED)
    if kept is not None and kept[0] == path:
        return kept[1]  # type: ignore[no-any-return]
    route = match(routes, path)
    state[_MATCHED] = (path, route)
    return route
