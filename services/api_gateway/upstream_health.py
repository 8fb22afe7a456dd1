"""Each upstream's readiness as a hub component, so the gateway's `/health/ready` covers them."""

from __future__ import annotations

import httpx

from aitrading.core.infrastructure.central_hub import Health, HealthStatus


class UpstreamHealth:
    depends_on: tuple[str, ...] = ()

    def __init__(self, name: str, url: str, critical: bool) -> None:
        self.name = f"upstream:{name}"
        self.critical = critical
        self._url = url
        self._http: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._http = httpx.AsyncClient(base_url=self._url, timeout=2.0)

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def health(self) -> Health:
        assert self._http is not None
        try:
            answer = await self._http.get("/health/ready")
            status = HealthStatus(answer.json().get("status", "unhealthy"))
        except (httpx.HTTPError, ValueError) as exc:
            return Health.unhealthy(f"{self._url} does not answer ({type(exc).__name__})")
        return Health(status, self._url)
