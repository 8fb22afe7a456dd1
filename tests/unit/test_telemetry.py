"""Each request is an OpenTelemetry server span that continues the caller's W3C context;
nothing leaves the process unless an OTLP endpoint is set, and never in plaintext beyond
loopback."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry

from aitrading.core.infrastructure.central_hub import HealthStatus, HubHealth
from aitrading.core.infrastructure.config_manager import TelemetrySettings
from aitrading.core.infrastructure.telemetry import Tracing, otlp_exporter
from aitrading.core.security.tls import InsecureTransportError
from aitrading.services.common.http import install_common
from aitrading.services.common.tracing import current_trace

CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def traced_app() -> tuple[FastAPI, InMemorySpanExporter]:
    exported = InMemorySpanExporter()
    tracing = Tracing(TelemetrySettings(), "test-service", [SimpleSpanProcessor(exported)])
    app = FastAPI()
    install_common(
        app,
        "test-service",
        lambda: HubHealth(HealthStatus.HEALTHY, "", {}),
        CollectorRegistry(),
        tracing.tracer,
    )

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, str]:
        trace = current_trace.get()
        assert trace is not None
        return {"trace_id": trace.trace_id, "span_id": trace.span_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    return app, exported


async def test_a_request_continues_the_callers_trace_as_a_named_server_span() -> None:
    app, exported = traced_app()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        answer = await http.get("/items/7", headers={"traceparent": CALLER})
        fresh = await http.get("/items/8", headers={"traceparent": "00-garbage"})
        crashed = await http.get("/boom")
    first, second, third = exported.get_finished_spans()
    assert first.name == "GET /items/{item_id}"
    assert first.kind is SpanKind.SERVER
    assert f"{first.context.trace_id:032x}" == CALLER.split("-")[1]
    assert first.parent is not None
    assert f"{first.parent.span_id:016x}" == CALLER.split("-")[2]
    assert first.attributes is not None
    assert first.attributes["http.route"] == "/items/{item_id}"
    assert first.attributes["http.response.status_code"] == 200
    # what handlers and log records see, and what the response says, is this span
    assert answer.json() == {
        "trace_id": f"{first.context.trace_id:032x}",
        "span_id": f"{first.context.span_id:016x}",
    }
    assert answer.headers["traceparent"].split("-")[2] == f"{first.context.span_id:016x}"
    assert second.parent is None  # an invalid traceparent starts a new trace
    assert fresh.headers["traceparent"].split("-")[1] == f"{second.context.trace_id:032x}"
    assert crashed.status_code == 500
    assert third.status.status_code is StatusCode.ERROR


def test_spans_leave_the_process_only_over_tls_beyond_loopback() -> None:
    with pytest.raises(InsecureTransportError, match="AITRADING_TELEMETRY_OTLP_ENDPOINT"):
        otlp_exporter(TelemetrySettings(otlp_endpoint="http://collector.example:4318/v1/traces"))
    assert otlp_exporter(TelemetrySettings(otlp_endpoint="http://127.0.0.1:4318/v1/traces"))
    assert otlp_exporter(TelemetrySettings(otlp_endpoint="https://collector.example/v1/traces"))


async def test_tracing_says_where_its_spans_go_and_never_the_url() -> None:
    quiet = await Tracing(TelemetrySettings(), "s").health()
    assert "not exported" in quiet.reason
    loud = Tracing(
        TelemetrySettings(otlp_endpoint="https://user:token@collector.example/v1/traces"), "s"
    )
    reason = (await loud.health()).reason
    assert "collector.example" in reason
    assert "token" not in reason
    await loud.stop()
