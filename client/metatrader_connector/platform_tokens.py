"""Connector tokens minted from an ingest API key, renewed before they expire.

A connector runs for months; the platform's access tokens live minutes
(`security.access_token_ttl_s`, 10 by default). Each link asks for a token when it
(re)connects, so a connector holding one fixed token can stream until its first reconnect
after expiry and then never again (on a slow machine the e2e drill's pods come back more
than ten minutes after the stream began). This source asks the gateway again
(`POST /auth/connector-token` with the key) when the cached token is within `margin_s` of
its end; five links reconnecting at once mint one token.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable

import httpx


class TokenRefusedError(ConnectionError):
    """The gateway did not mint a token; the message has its status and error code, never
    the key."""


class ConnectorTokens:
    """An async callable giving a valid connector token (the `token` a `Connector` takes)."""

    def __init__(
        self,
        gateway_url: str,
        api_key: str,
        verify: ssl.SSLContext | bool = True,
        margin_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._url = gateway_url.rstrip("/") + "/auth/connector-token"
        self._api_key = api_key
        self._verify = verify
        self._margin_s = margin_s
        self._clock = clock
        self._transport = transport
        self._token = ""
        self._renew_at = 0.0
        self._lock = asyncio.Lock()
        self.minted = 0

    async def __call__(self) -> str:
        async with self._lock:  # the links that wait here get the token the first one minted
            if self._token and self._clock() < self._renew_at:
                return self._token
            async with httpx.AsyncClient(
                verify=self._verify, timeout=10, transport=self._transport
            ) as http:
                answer = await http.post(self._url, headers={"x-api-key": self._api_key})
            if answer.status_code != 200:
                raise TokenRefusedError(_refusal(answer))
            body = answer.json()
            lifetime = float(body["expires_in"])
            self._token = str(body["access_token"])
            # never renew more often than half a lifetime, however short the token lives
            self._renew_at = self._clock() + max(lifetime - self._margin_s, lifetime / 2)
            self.minted += 1
            return self._token


def _refusal(answer: httpx.Response) -> str:
    try:
        error = answer.json().get("error", {})
        detail = f"{error.get('code')}: {error.get('message')}"
    except (ValueError, AttributeError):
        detail = answer.reason_phrase
    return f"the gateway refused a connector token ({answer.status_code} {detail})"
