"""OpenTelemetry across the services, exported over OTLP to a real receiver.

A request through the gateway is one trace: the caller's `traceparent` is continued, the
gateway's server span has a client span for the hop, and database-service's server span is
that client span's child — the W3C context crossed the wire. The spans leave each process
through the OTLP/HTTP exporter, and the gateway's chain registry is fed from the same spans.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from aitrading.core.infrastructure.config_manager import Settings
from aitrading.core.stores.clickhouse import ClickHouseStore
from tests.support.otlp_receiver import ReceivedSpan, otlp_receiver
from tests.support.waiting import until

from .conftest import free_port, gateway_stack
from .test_api_gateway import accounts, bearer, login

pytestmark = pytest.mark.integration
SERVER, CLIENT = 2, 3  # OTLP's SpanKind values
__all__ = ["accounts"]  # the fixture, imported for this module


async def test_a_request_is_one_trace_across_gateway_and_database_service(
    settings: Settings,
    clickhouse: ClickHouseStore,
    key_file: Path,
    tmp_path: Path,
    accounts: dict[str, Any],
) -> None:
    del clickhouse, key_file
    async with otlp_receiver(free_port()) as receiver:
        env = {"AITRADING_TELEMETRY_OTLP_ENDPOINT": receiver.url}
        async with gateway_stack(settings, tmp_path, **env) as gateway:
            http = gateway["http"]
            pro = bearer((await login(http, accounts["pro"]["email"]))["access_token"])
            trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
            answer = await http.get(
                "/api/v1/market/ticks",
                params={"symbol": "EURUSD", "start": 0, "end": 1},
                headers={**pro, "traceparent": f"00-{trace_id}-{caller_span}-01"},
            )
            assert answer.status_code == 200, answer.text
            assert answer.headers["traceparent"].split("-")[1] == trace_id

            def in_trace(service: str, kind: int) -> list[ReceivedSpan]:
                return [
                    s for s in receiver.of(service) if s.trace_id == trace_id and s.kind == kind
                ]

            await until(
                lambda: in_trace("database-service", SERVER) and in_trace("api-gateway", CLIENT),
                "the spans of both services exported",
            )
            report = (await http.get("/api/v1/chains", headers=pro)).json()["chains"]
        (gateway_server,) = in_trace("api-gateway", SERVER)
        (hop,) = in_trace("api-gateway", CLIENT)
        (database,) = in_trace("database-service", SERVER)
    assert gateway_server.parent_span_id == caller_span  # the caller's trace, continued
    assert gateway_server.name == "GET /api/v1/{rest:path}"
    assert hop.parent_span_id == gateway_server.span_id
    assert hop.attributes["aitrading.chain.route"] == "/api/v1/market/ticks"
    assert hop.attributes["http.response.status_code"] == 200
    assert database.parent_span_id == hop.span_id  # the context crossed the wire
    assert database.name == "GET /api/v1/ticks"
    assert database.attributes["http.route"] == "/api/v1/ticks"
    ticks = next(c for c in report if c["name"] == "GET /api/v1/market/ticks")
    assert ticks["requests"] >= 1  # the chain registry, fed from the hop's span
