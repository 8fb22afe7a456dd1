"""OpenTelemetry traces for every service: spans, W3C trace context, OTLP when configured.

Each app gets its own `TracerProvider` (tests run several apps in one process; a global one
would mix their spans). Spans are made whether or not they are exported: the gateway's chain
registry is fed from them (`ChainSpanProcessor`). With `telemetry.otlp_endpoint` set they
are also batched to that OTLP/HTTP endpoint (TLS 1.3, verified; plain http:// only to
loopback); without it nothing leaves the process.

The trace context travels as the W3C `traceparent` header through OpenTelemetry's own
propagator, and `current_trace` (what log records and error bodies carry) mirrors the
current server span.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from aitrading.core.infrastructure.central_hub import Health
from aitrading.core.infrastructure.config_manager import TelemetrySettings, env_name
from aitrading.core.infrastructure.trace_context import TraceContext
from aitrading.core.security.db_security_manager import TlsMaterial, client_context
from aitrading.core.security.tls import check_transport

PROPAGATOR = TraceContextTextMapPropagator()


def tracer_provider(
    settings: TelemetrySettings, service: str, processors: Iterable[SpanProcessor] = ()
) -> TracerProvider:
    """A provider for one service; its spans go to `processors` and, when configured, OTLP."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "service.namespace": "aitrading"}),
        sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
    )
    for processor in processors:
        provider.add_span_processor(processor)
    if settings.otlp_endpoint is not None:
        provider.add_span_processor(BatchSpanProcessor(otlp_exporter(settings)))
    return provider


def otlp_exporter(settings: TelemetrySettings) -> Any:
    """The OTLP/HTTP exporter (imported only when an endpoint is set)."""
    import requests
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    endpoint = settings.otlp_endpoint
    assert endpoint is not None
    parts = urlsplit(endpoint)
    check_transport(
        host=parts.hostname,
        encrypted=parts.scheme == "https",
        setting=env_name("telemetry.otlp_endpoint"),
        store="OTLP collector",
    )
    session = requests.Session()
    if parts.scheme == "https":
        session.mount("https://", _tls13_adapter(settings))
    return OTLPSpanExporter(endpoint=endpoint, timeout=settings.export_timeout_s, session=session)


def _tls13_adapter(settings: TelemetrySettings) -> Any:
    """requests' adapter with TLS 1.3 as the floor and the configured CA (or the system's)."""
    from requests.adapters import HTTPAdapter

    # the project's one client-side TLS rule (TLS 1.3, verified, host name checked)
    context = client_context(TlsMaterial(ca_file=settings.otlp_ca_file))

    class Tls13Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["ssl_context"] = context
            super().init_poolmanager(*args, **kwargs)

    return Tls13Adapter()


def extract(headers: Mapping[str, str]) -> Any:
    """The caller's trace context from its `traceparent` (an invalid one starts a new trace)."""
    return PROPAGATOR.extract(headers)


def inject(headers: MutableMapping[str, str]) -> None:
    """Add the current span's `traceparent` to an outgoing request's headers."""
    PROPAGATOR.inject(headers)


def trace_of(span: Span, parent_span_id: str | None) -> TraceContext:
    """The ids a span stands for, as log records and error bodies carry them."""
    context = span.get_span_context()
    return TraceContext(
        f"{context.trace_id:032x}",
        f"{context.span_id:016x}",
        parent_span_id,
        context.trace_flags.sampled,
    )


class Tracing:
    """A service's tracer provider as a hub component: flushed and shut down with the hub
    (registered first, so stopped last: the spans of the shutdown are exported too)."""

    name = "tracing"
    depends_on: tuple[str, ...] = ()
    critical = False

    def __init__(
        self, settings: TelemetrySettings, service: str, processors: Iterable[SpanProcessor] = ()
    ) -> None:
        self.provider = tracer_provider(settings, service, processors)
        self.tracer = self.provider.get_tracer(f"aitrading.{service}")
        endpoint = settings.otlp_endpoint
        self._exporting_to = urlsplit(endpoint).hostname if endpoint else None

    async def start(self) -> None:
        """Nothing to start: spans are made from the first request."""

    async def stop(self) -> None:
        await asyncio.to_thread(self.provider.shutdown)

    async def health(self) -> Health:
        if self._exporting_to is None:
            return Health.healthy("spans are not exported (telemetry.otlp_endpoint unset)")
        return Health.healthy(f"spans exported over OTLP to {self._exporting_to}")
