"""How data-bridge relays a connector's reports and positions to the trading-engine."""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from aitrading.core.security.service_identity import ServiceIdentity
from aitrading.services.common.peer_http import peer_http


class TradingEngineUnavailableError(Exception):
    """The engine could not take it now (down, 5xx, timeout, our identity refused): the
    connector resends later."""


class TradingEngineRefusedError(Exception):
    """The engine judged the report itself (unknown order, not this connector's, a state the
    order cannot take, invalid): resending the same report cannot help. `code` says which."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# (status, error code) pairs that judge the content, not the moment
_REFUSALS = {
    404: "unknown_order",
    409: "order_state",
    422: "invalid_report",
    403: "not_your_order",
}


class TradingEngineClient:
    def __init__(
        self,
        base_url: str,
        timeout_s: float = 10.0,
        identity: ServiceIdentity | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self._identity = identity
        self._http = peer_http(base_url, timeout_s, verify)

    async def execution_report(self, body: dict[str, Any]) -> dict[str, Any]:
        answer = await self._post("/internal/v1/execution-reports", body)
        result: dict[str, Any] = answer.json()
        return result

    async def positions(self, body: dict[str, Any]) -> None:
        await self._post("/internal/v1/positions", body)

    async def close(self) -> None:
        await self._http.aclose()

    async def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        headers = self._identity.headers_for("trading-engine") if self._identity else {}
        try:
            answer = await self._http.post(path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise TradingEngineUnavailableError(type(exc).__name__) from exc
        if answer.status_code < 400:
            return answer
        code, message = _error(answer)
        if _REFUSALS.get(answer.status_code) == code or answer.status_code == 422:
            raise TradingEngineRefusedError(code or "invalid_report", message)
        raise TradingEngineUnavailableError(f"HTTP {answer.status_code}: {message}")


def _error(answer: httpx.Response) -> tuple[str, str]:
    try:
        error = answer.json()["error"]
        return str(error.get("code", "")), str(error.get("message", ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        return "", answer.text[:200]
