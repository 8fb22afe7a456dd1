"""Each upstream's readiness as a hub component, so the gateway's `/health/ready` covers them."""

from __future__ import annotations

import ssl

import aiohttp

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
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        # aiohttp, as the proxied requests: the gateway carries one HTTP client library
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=2.0),
            connector=aiohttp.TCPConnector(ssl=self._verify),
        )

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def health(self) -> Health:
        assert self._http is not None
        try:
            async with self._http.get(f"{self._url}/health/ready") as answer:
                body = await answer.json(content_type=None)
            status = HealthStatus(body.get("status", "unhealthy"))
        except (TimeoutError, aiohttp.ClientError, ValueError, AttributeError) as exc:
            return Health.unhealthy(f"{self._url} does not answer ({type(exc).__name__})")
        return Health(status, self._url)
