"""Each request is one SERVER span, ours (`RequestContext`): FastAPI's own instrumentation stays
off even once a global tracer provider exists (a library may set one), so no request is traced
twice and no request pays for FastAPI's provider look-ups."""

from __future__ import annotations

import httpx
import opentelemetry.trace
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from aitrading.core.infrastructure.config_manager import Settings

from .test_dependencies import APPS

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("service", sorted(APPS))
async def test_a_global_tracer_provider_gets_no_second_span_from_fastapi(
    service: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    exported = InMemorySpanExporter()
    global_provider = TracerProvider()
    global_provider.add_span_processor(SimpleSpanProcessor(exported))
    monkeypatch.setattr(opentelemetry.trace, "get_tracer_provider", lambda: global_provider)
    app = APPS[service](settings, CollectorRegistry())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        answer = await http.get("/health/live")
    assert answer.status_code == 200, answer.text
    assert answer.headers["traceparent"]  # ours ran
    assert exported.get_finished_spans() == ()
