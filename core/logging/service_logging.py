"""Every service's logging: stdlib `logging` → LogRouter → hot tier (Redis) and stdout.

`aitrading serve` calls `start_service_logging` before the app runs, so each log line of a
request carries the request's trace id and request id, is redacted, and never blocks the
request. The warm and cold tiers are filled by `aitrading logs enforce` (the CronJob) from
the hot tier; services themselves never open ClickHouse.
"""

from __future__ import annotations

import logging

from aitrading.core.infrastructure.config_manager import Settings
from aitrading.core.infrastructure.trace_context import current_request_id, current_trace
from aitrading.core.logging.optimized_log_router import (
    LogRouter,
    Sink,
    StdoutSink,
    default_routes,
    install,
)
from aitrading.core.logging.tiered_log_storage import HotTier
from aitrading.core.stores.redis_store import sync_client


def request_context() -> tuple[str, str]:
    """(trace id, request id) of the request being served, or empty strings."""
    trace = current_trace.get()
    return (trace.trace_id if trace else "", current_request_id.get())


def start_service_logging(settings: Settings, service: str, stdout: bool = True) -> LogRouter:
    client = sync_client(settings, timeout_s=2)
    sinks: dict[str, Sink] = {"hot": HotTier(client)}
    if stdout:
        sinks["stdout"] = StdoutSink()
    router = LogRouter(
        service,
        default_routes(sinks),
        settings.data_dir.resolve() / "log-spill",
        context=request_context,
    )
    install(router, settings.log_level)
    router.start()
    return router


def stop_service_logging(router: LogRouter) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "router", None) is router:
            root.removeHandler(handler)
    router.stop()
