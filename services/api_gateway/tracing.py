"""The chain registry, fed from OpenTelemetry spans: how each call path fares.

Every proxied request is a CLIENT span of the gateway (`routers/proxy.py`) carrying its
route and upstream; `ChainSpanProcessor` turns each finished one into an outcome of its
chain — the gateway, then the upstream. The registry registers each new chain's definition
once through database-service (`chain_definitions`, and the ArangoDB graph when configured)
and keeps a sliding window of outcomes per chain, from which `/api/v1/chains` reports error
rate and latency p99. The statistics are those of sampled spans (`telemetry.sample_ratio`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import statistics
from collections import deque
from dataclasses import dataclass, field

import aiohttp
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from aitrading.core.security.service_identity import ServiceIdentity

_log = logging.getLogger(__name__)
WINDOW = 2000


@dataclass
class ChainStats:
    chain_id: str
    name: str
    services: tuple[str, ...]
    outcomes: deque[tuple[bool, float]] = field(default_factory=lambda: deque(maxlen=WINDOW))

    def summary(self) -> dict[str, object]:
        durations = [d for _, d in self.outcomes]
        errors = sum(1 for ok, _ in self.outcomes if not ok)
        p99 = (
            statistics.quantiles(durations, n=100)[98]
            if len(durations) >= 2
            else (durations[0] if durations else 0.0)
        )
        error_rate = errors / len(self.outcomes) if self.outcomes else 0.0
        return {
            "id": self.chain_id,
            "name": self.name,
            "services": list(self.services),
            "requests": len(self.outcomes),
            "error_rate": round(error_rate, 4),
            "latency_p99_ms": round(p99, 3),
            "status": "unhealthy" if error_rate > 0.05 else "healthy",
        }


def chain_id_for(route: str, method: str) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "-", f"{method} {route}".lower()).strip("-")[:128]


class ChainRegistry:
    def __init__(
        self,
        database_service_url: str | None,
        identity: ServiceIdentity | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self._identity = identity
        self._verify = verify
        self.chains: dict[str, ChainStats] = {}
        self._url = database_service_url
        self._registering: set[asyncio.Task[None]] = set()

    def record(self, method: str, route: str, upstream: str, ok: bool, duration_ms: float) -> None:
        key = chain_id_for(route, method)
        stats = self.chains.get(key)
        if stats is None:
            stats = ChainStats(key, f"{method} {route}", ("api-gateway", upstream))
            self.chains[key] = stats
            if self._url:
                task = asyncio.create_task(self._register(stats, route))
                self._registering.add(task)
                task.add_done_callback(self._registering.discard)
        stats.outcomes.append((ok, duration_ms))

    async def _register(self, stats: ChainStats, route: str) -> None:
        body = {
            "name": stats.name,
            "entry_service": "api-gateway",
            "steps": [{"service": stats.services[1], "operation": route}],
        }
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=5),
                connector=aiohttp.TCPConnector(ssl=self._verify),
            ) as http:
                headers = self._identity.headers_for("database-service") if self._identity else {}
                async with http.post(
                    f"{self._url}/api/v1/chains", json=body, headers=headers
                ) as answer:
                    if answer.status not in (201, 409):
                        _log.warning("chain %s not registered: HTTP %s", stats.name, answer.status)

    def report(self) -> list[dict[str, object]]:
        return [stats.summary() for stats in sorted(self.chains.values(), key=lambda s: s.name)]


# attributes of the gateway's CLIENT span per proxied request
CHAIN_ROUTE = "aitrading.chain.route"
CHAIN_UPSTREAM = "aitrading.chain.upstream"


class ChainSpanProcessor(SpanProcessor):
    """Each finished proxy span becomes an outcome of its chain (on the event loop's thread:
    span.end() runs the processors synchronously)."""

    def __init__(self, chains: ChainRegistry) -> None:
        self._chains = chains

    def on_end(self, span: ReadableSpan) -> None:
        attributes = span.attributes or {}
        route = attributes.get(CHAIN_ROUTE)
        if route is None or span.start_time is None or span.end_time is None:
            return
        status = attributes.get("http.response.status_code", 503)
        self._chains.record(
            str(attributes.get("http.request.method", "")),
            str(route),
            str(attributes.get(CHAIN_UPSTREAM, "")),
            isinstance(status, int) and status < 500,
            (span.end_time - span.start_time) / 1e6,
        )
