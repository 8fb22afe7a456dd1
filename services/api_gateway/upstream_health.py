"""Each upstream's readiness as a hub component, so the gateway's `/health/ready` covers them."""

from __future__ import annotations

import ssl

import httpx

from aitrading.core.infrastructure.central_hub import Health, HealthStatus


class UpstreamHealth:
    depends_on: tuple[str, ...] = ()

    def __init__(
        self, name: str, url: str, critical: bool, verify: ssl.SSLContext | bool = True
    ) -> None:
        self.name = f"upstream:{name}"
        self.critical = critical
        self._url = url
        # The same trust as the proxied requests: the stack CA, TLS 1.3, the gateway's own
        # certificate. With the system's CAs the probe failed against every https:// peer and
        # the gateway was never ready in Kubernetes.
        self._verify = verify
        self._http: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._http = httpx.AsyncClient(base_url=self._url, timeout=2.0, verify=self._verify)

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
