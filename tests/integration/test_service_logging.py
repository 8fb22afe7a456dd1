"""Service logging end to end: a log line inside a request reaches the hot tier with its trace."""

from __future__ import annotations

import logging
import uuid

import pytest
import redis

from aitrading.core.infrastructure.config_manager import Settings
from aitrading.core.infrastructure.trace_context import (
    TraceContext,
    current_request_id,
    current_trace,
)
from aitrading.core.logging.service_logging import start_service_logging, stop_service_logging
from aitrading.core.logging.tiered_log_storage import HotTier
from aitrading.core.stores.redis_store import redis_url

pytestmark = pytest.mark.integration


def test_a_request_log_line_lands_in_the_hot_tier_traced_and_redacted(settings: Settings) -> None:
    router = start_service_logging(settings, "test-service", stdout=False)
    trace = TraceContext(uuid.uuid4().hex, uuid.uuid4().hex[:16], None)
    trace_token = current_trace.set(trace)
    request_token = current_request_id.set("req-42")
    marker = uuid.uuid4().hex
    try:
        logging.getLogger("aitrading.services.test").info(
            "order %s placed with password=%s", marker, "hunter2hunter2"
        )
    finally:
        current_trace.reset(trace_token)
        current_request_id.reset(request_token)
        stop_service_logging(router)
    assert not [h for h in logging.getLogger().handlers if getattr(h, "router", None) is router]
    client = redis.Redis.from_url(redis_url(settings))
    records = HotTier(client).by_trace(trace.trace_id)
    client.close()
    mine = [r for r in records if marker in r.message]
    assert len(mine) == 1
    assert mine[0].service == "test-service"
    assert mine[0].request_id == "req-42"
    assert "hunter2hunter2" not in mine[0].message
