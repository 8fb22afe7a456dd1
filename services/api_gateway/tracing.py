"""The chain registry, fed from OpenTelemetry spans and persisted through database-service.

Every proxied request is a CLIENT span of the gateway (`routers/proxy.py`) carrying its
route and upstream; `ChainSpanProcessor` turns each finished one into an outcome of its
chain — the gateway, then the upstream. The registry registers each new chain's definition
once (`chain_definitions`, and the ArangoDB graph when configured) and counts outcomes per
chain in the current window: requests, errors (5xx or no answer) and a latency histogram with
the shared bounds. Every `flush_interval_s`, and before it answers `/api/v1/chains`, it
writes its window to database-service (`chain_outcomes`, one row per chain, replica and
window), so the report is the sum over every replica and survives restarts. The statistics
are those of sampled spans (`telemetry.sample_ratio`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import ssl
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from aitrading.core.infrastructure.background import Worker
from aitrading.core.infrastructure.central_hub import Health
from aitrading.core.infrastructure.latency_histogram import BUCKETS, bucket_of
from aitrading.core.security.service_identity import ServiceIdentity

_log = logging.getLogger(__name__)
SUMMARY_WINDOW_S = 300
# attributes of the gateway's CLIENT span per proxied request
CHAIN_ROUTE = "aitrading.chain.route"
CHAIN_UPSTREAM = "aitrading.chain.upstream"


class ChainsUnavailableError(Exception):
    """database-service cannot take or give chain outcomes now."""


@dataclass
class _Window:
    requests: int = 0
    errors: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * BUCKETS)

    def add(self, other: _Window) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]


def chain_id_for(route: str, method: str) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "-", f"{method} {route}".lower()).strip("-")[:128]


class ChainRegistry(Worker):
    """A hub component: flushes on a schedule and once more when it stops."""

    def __init__(
        self,
        database_service_url: str | None,
        identity: ServiceIdentity | None = None,
        verify: ssl.SSLContext | bool = True,
        flush_interval_s: float = 10.0,
    ) -> None:
        super().__init__("chain-registry")
        self._url = database_service_url
        self._identity = identity
        self._verify = verify
        self._interval = flush_interval_s
        # a pod's name in Kubernetes; the suffix tells apart gateways sharing a host
        self.replica = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"[:253]
        self._window: dict[str, _Window] = {}
        self._known: set[str] = set()
        self._registering: set[asyncio.Task[None]] = set()
        self._flushing = asyncio.Lock()
        self._http: aiohttp.ClientSession | None = None
        self._failing = ""

    def record(self, method: str, route: str, upstream: str, ok: bool, duration_ms: float) -> None:
        key = chain_id_for(route, method)
        window = self._window.setdefault(key, _Window())
        window.requests += 1
        window.errors += 0 if ok else 1
        window.buckets[bucket_of(duration_ms)] += 1
        if key not in self._known and self._url:
            self._known.add(key)
            task = asyncio.create_task(self._register(key, f"{method} {route}", upstream, route))
            self._registering.add(task)
            task.add_done_callback(self._registering.discard)

    async def start(self) -> None:
        self._loop.start(self._run())

    async def stop(self) -> None:
        await self._loop.stop()
        with contextlib.suppress(ChainsUnavailableError):
            await self.flush()  # what this replica counted since the last flush
        if self._http is not None:
            await self._http.close()

    async def health(self) -> Health:
        if self._failing:
            return Health.degraded(f"chain outcomes not persisted: {self._failing}")
        return self._loop.health()

    async def flush(self) -> None:
        """Write the current window; on failure it is kept and merged into the next."""
        async with self._flushing:
            window, self._window = self._window, {}
            if not window:
                return
            body = {
                "replica": self.replica,
                "window_end_ms": int(time.time() * 1000),
                "outcomes": [
                    {
                        "chain_id": key,
                        "requests": w.requests,
                        "errors": w.errors,
                        "latency_buckets": w.buckets,
                    }
                    for key, w in window.items()
                ],
            }
            try:
                await self._call("POST", "/api/v1/chain-outcomes", body, expect=201)
            except ChainsUnavailableError:
                for key, kept in window.items():
                    self._window.setdefault(key, _Window()).add(kept)
                raise

    async def report(
        self, window_s: int = SUMMARY_WINDOW_S, since_ms: int | None = None
    ) -> list[dict[str, Any]]:
        """Every chain over the last `window_s` (or since `since_ms`), summed over every
        replica — this one's latest window and new chains' definitions included: they are
        written first."""
        if self._registering:
            await asyncio.gather(*self._registering, return_exceptions=True)
        await self.flush()
        query = f"window_s={window_s}" + (f"&since_ms={since_ms}" if since_ms is not None else "")
        answer = await self._call(
            "GET", f"/api/v1/chain-outcomes/summary?{query}", None, expect=200
        )
        assert isinstance(answer, list)
        return answer

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            with contextlib.suppress(ChainsUnavailableError):
                await self.flush()

    async def _register(self, key: str, name: str, upstream: str, route: str) -> None:
        body = {
            "name": name,
            "entry_service": "api-gateway",
            "steps": [{"service": upstream, "operation": route}],
        }
        try:
            await self._call("POST", "/api/v1/chains", body, expect=201, also=409)
        except ChainsUnavailableError:
            self._known.discard(key)  # registered at its next request

    async def _call(
        self, method: str, path: str, body: Any, expect: int, also: int | None = None
    ) -> Any:
        if not self._url:
            raise ChainsUnavailableError("no database-service is configured")
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=5),
                connector=aiohttp.TCPConnector(ssl=self._verify),
            )
        headers = self._identity.headers_for("database-service") if self._identity else {}
        try:
            async with self._http.request(
                method, self._url + path, json=body, headers=headers
            ) as answer:
                if answer.status not in (expect, also):
                    raise ChainsUnavailableError(f"database-service answered {answer.status}")
                result = await answer.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._failing = f"database-service unreachable ({type(exc).__name__})"
            raise ChainsUnavailableError(self._failing) from None
        except ChainsUnavailableError as exc:
            self._failing = str(exc)
            raise
        self._failing = ""
        return result


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
