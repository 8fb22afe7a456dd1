"""The typed client other services use to reach database-service (never SQL)."""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from aitrading.core.security.service_identity import ServiceIdentity
from aitrading.services.common.peer_http import peer_http
from aitrading.services.database_service.models import TickBatchResult

# Answers that judge the request's content: retrying the same body cannot help.
_REFUSALS = frozenset({400, 413, 422})


class DatabaseServiceUnavailableError(Exception):
    """database-service could not take the request now (down, 5xx, timeout): retry later."""


class DatabaseServiceRejectedError(Exception):
    """database-service refused the request as invalid (4xx): retrying will not help.

    `details` are the error body's items (`{"index", "location", "reason"}` for a batch), so
    a caller can tell which items of a batch were refused and why."""

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.details = details or []


class DatabaseServiceClient:
    def __init__(
        self,
        base_url: str,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        identity: ServiceIdentity | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self._identity = identity
        self._http = peer_http(base_url, timeout_s, verify, transport)

    async def insert_ticks_raw(self, body: bytes) -> TickBatchResult:
        """POST an already-encoded `{"ticks": [...]}` body (what the spool keeps)."""
        answer = await self._post("/api/v1/ticks/batch", body)
        return TickBatchResult.model_validate_json(answer.content)

    async def insert_dead_letters_raw(self, body: bytes) -> int:
        """POST an encoded `{"letters": [...]}` body: refused ticks kept with their reason."""
        answer = await self._post("/api/v1/ticks/dead-letters", body)
        return int(answer.json()["stored"])

    async def insert_accounts_raw(self, body: bytes) -> int:
        answer = await self._post("/api/v1/accounts/snapshots", body)
        return int(answer.json()["stored"])

    async def ready(self) -> bool:
        try:
            return (await self._http.get("/health/ready")).status_code == 200
        except httpx.HTTPError:
            return False

    async def close(self) -> None:
        await self._http.aclose()

    async def _post(self, path: str, body: bytes) -> httpx.Response:
        try:
            headers = {"content-type": "application/json"}
            if self._identity is not None:  # who is writing (database-service checks it)
                headers.update(self._identity.headers_for("database-service"))
            answer = await self._http.post(path, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DatabaseServiceUnavailableError(f"{type(exc).__name__}: {exc}") from exc
        if answer.status_code not in _REFUSALS and answer.status_code >= 400:
            # 5xx, 429, and 401/403/404 — a misconfigured identity or URL is our problem, not
            # the data's: retry later (the bridge spools), never dead-letter good ticks.
            raise DatabaseServiceUnavailableError(f"HTTP {answer.status_code}: {_message(answer)}")
        if answer.status_code >= 400:
            raise DatabaseServiceRejectedError(
                f"HTTP {answer.status_code}: {_message(answer)}", _details(answer)
            )
        return answer


def _details(answer: httpx.Response) -> list[dict[str, Any]]:
    try:
        details = answer.json()["error"].get("details") or []
    except (ValueError, KeyError, TypeError, AttributeError):
        return []
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def _message(answer: httpx.Response) -> str:
    try:
        body: Any = answer.json()
        return str(body["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return answer.text[:200]
