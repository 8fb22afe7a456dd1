"""The first two checks at the door, before any routing or authentication work: the body's
declared size, then the per-IP rate limit (health probes are exempt).

For a request the proxy will admit with a token already verified (`admission.py`), the door
leaves the per-IP decision to admission, which takes it first, in the same Redis call as the
token's revocation state and the user's limit. The proxy claims that deferred decision
(`claim_deferred`); one never claimed (a path some other route served) is charged when the
request ends, so the limit still counts every request.

A plain ASGI middleware rather than a Starlette `BaseHTTPMiddleware`: that one runs each
request through an anyio task group and memory streams, and showed as a large share of the
gateway's CPU per proxied request in the profile of bench/gateway_overhead.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from aitrading.core.security.rate_limiter import Decision, PendingHit, Policy, RateLimiter
from aitrading.core.security.rate_limiter import Scope as LimitScope
from aitrading.services.common.http import ApiError, error_response

MAX_BODY_BYTES = 1024 * 1024
_log = logging.getLogger(__name__)


_DEFERRED = "aitrading.door_limit_deferred"
DOOR_REFUSAL = "too many requests from this address"


def door_refusal(decision: Decision) -> ApiError | None:
    """The door's answer to an address over its limit (None when allowed): the same whether
    the door decided it or admission did for it."""
    if decision.allowed:
        return None
    return ApiError(
        429, "rate_limited", DOOR_REFUSAL, headers={"retry-after": decision.retry_after_header}
    )


def claim_deferred(state: dict[str, Any]) -> PendingHit | None:
    """The per-IP decision the door left to this request's handler, taken over by it."""
    pending: PendingHit | None = state.pop(_DEFERRED, None)
    return pending


class DoorLimits:
    def __init__(
        self,
        app: ASGIApp,
        limiter: Callable[[], RateLimiter | None],
        per_ip: Policy,
        deferrable: Callable[[Scope], bool] = lambda _: False,
    ) -> None:
        self.app = app
        self._limiter = limiter  # built in the lifespan; None until the stores are up
        self._per_ip = per_ip
        self._deferrable = deferrable

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            message = f"bodies are limited to {MAX_BODY_BYTES} bytes"
            too_large = ApiError(413, "payload_too_large", message)
            await error_response(too_large)(scope, receive, send)
            return
        limiter = self._limiter()
        if limiter is not None and not str(scope["path"]).startswith("/health"):
            client = scope.get("client")
            ip = client[0] if client else "unknown"
            if self._deferrable(scope):
                await self._deferred(scope, receive, send, limiter, ip)
                return
            refused = door_refusal(await limiter.hit(self._per_ip, LimitScope.IP, ip))
            if refused is not None:
                await error_response(refused)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _deferred(
        self, scope: Scope, receive: Receive, send: Send, limiter: RateLimiter, ip: str
    ) -> None:
        state: dict[str, Any] = scope.setdefault("state", {})
        state[_DEFERRED] = PendingHit(self._per_ip, LimitScope.IP, ip)
        try:
            await self.app(scope, receive, send)
        finally:
            unclaimed = state.pop(_DEFERRED, None)
            if unclaimed is not None:  # served by a route that does not admit: count it now
                _log.warning("per-IP limit left unclaimed on %s; charged after", scope["path"])
                await limiter.hit(self._per_ip, LimitScope.IP, ip)
