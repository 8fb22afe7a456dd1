"""Every stored tick of a symbol, read from database-service page by page (its cursor)."""

from __future__ import annotations

from typing import Any

import httpx


async def stored_ticks(dbs: str, symbol: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    async with httpx.AsyncClient(base_url=dbs, timeout=30) as http:
        while True:
            params: dict[str, Any] = {
                "symbol": symbol,
                "start": 0,
                "end": 9_999_999_999_999,
                "limit": 10_000,
            }
            if cursor:
                params["cursor"] = cursor
            page = (await http.get("/api/v1/ticks", params=params)).json()
            found += page["ticks"]
            cursor = page.get("next_cursor")
            if not cursor:
                return found
