"""The log router: never blocks, sheds low levels first, never drops ERROR/CRITICAL, redacts."""

from __future__ import annotations

import io
import json
import logging
import threading
from pathlib import Path

import pytest

from aitrading.core.logging.optimized_log_router import LogRouter, StdoutSink
from aitrading.core.logging.records import LogRecord


class GatedSink:
    """A sink that can be held shut, to build a backlog, and records what it got."""

    name = "gated"

    def __init__(self) -> None:
        self.open = threading.Event()
        self.records: list[LogRecord] = []

    def write(self, records: list[LogRecord]) -> None:
        self.open.wait(10)
        self.records.extend(records)


def record(level: str, n: int) -> LogRecord:
    return LogRecord(ts_ms=1_700_000_000_000 + n, level=level, service="svc", message=f"m{n}")


def test_overload_sheds_debug_and_info_first_and_never_drops_errors(tmp_path: Path) -> None:
    sink = GatedSink()
    router = LogRouter(
        "svc",
        {lvl: [sink] for lvl in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")},
        tmp_path,
        capacity=10,
    )
    for n in range(5):
        router.submit(record("DEBUG", n))
    for n in range(5, 10):
        router.submit(record("INFO", n))
    for n in range(10, 20):  # the queue is full: each ERROR evicts a lower level, then spills
        router.submit(record("ERROR", n))
    router.submit(record("DEBUG", 99))  # nothing lower to evict: dropped and counted
    assert router.dropped == {"DEBUG": 6, "INFO": 5}
    assert router.spilled == 0  # the ten errors fit by evicting the ten lower records
    for n in range(20, 25):
        router.submit(record("CRITICAL", n))
    assert router.spilled == 5  # no lower level left to evict: spilled to disk, fsynced
    sink.open.set()
    router.start()  # replays the spill
    router.stop()
    delivered = {r.message for r in sink.records}
    assert {f"m{n}" for n in range(10, 25)} <= delivered  # every ERROR and CRITICAL arrived
    assert not (tmp_path / "svc-spill.jsonl").exists()


def test_a_failing_sink_keeps_errors_for_later(tmp_path: Path) -> None:
    class Flaky:
        name = "flaky"
        fail = True
        got: list[LogRecord] = []

        def write(self, records: list[LogRecord]) -> None:
            if self.fail:
                raise ConnectionError("redis down")
            self.got.extend(records)

    flaky = Flaky()
    router = LogRouter("svc", {"ERROR": [flaky], "INFO": [flaky]}, tmp_path)
    router.submit(record("ERROR", 1))
    router.submit(record("INFO", 2))
    router.flush()
    assert router.sink_errors["flaky"] == 1
    flaky.fail = False
    router.start()
    router.stop()
    assert [r.message for r in flaky.got] == ["m1"]  # the error survived the outage


def test_stdlib_logging_through_the_router_is_structured_traced_and_redacted(
    tmp_path: Path,
) -> None:
    out = io.StringIO()
    router = LogRouter(
        "data-bridge",
        {"INFO": [StdoutSink(out)], "ERROR": [StdoutSink(out)]},
        tmp_path,
        context=lambda: ("4bf92f3577b34da6a3ce929d0e0e4736", "req-1"),
    )
    logger = logging.getLogger("aitrading.test.router")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = router.handler()
    logger.addHandler(handler)
    try:
        logger.info(
            "connected to %s",
            "postgresql://app:s3cretpw@db:5432/x",
            extra={"symbol": "EURUSD", "refresh_token": "rt-9f8e7d6c", "peer": "Bearer eyJhbGc1"},
        )
        logger.error("login failed with token eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl")
    finally:
        logger.removeHandler(handler)
    router.flush()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["level"] for line in lines] == ["ERROR", "INFO"] or [
        line["level"] for line in lines
    ] == ["INFO", "ERROR"]
    first = next(line for line in lines if line["level"] == "INFO")
    assert first["service"] == "data-bridge"
    assert first["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert first["request_id"] == "req-1"
    assert json.loads(first["fields"]) == {
        "symbol": "EURUSD",
        "refresh_token": "***",
        "peer": "Bearer ***",
    }
    assert "s3cretpw" not in out.getvalue()
    assert "eyJzdWIiOi" not in out.getvalue()


@pytest.mark.parametrize("capacity", [1, 3])
def test_submit_never_blocks_even_when_the_sink_hangs(tmp_path: Path, capacity: int) -> None:
    sink = GatedSink()  # never opened: a hung sink
    router = LogRouter("svc", {"INFO": [sink]}, tmp_path, capacity=capacity)
    for n in range(1000):
        router.submit(record("INFO", n))  # returns at once although nothing drains
    assert router.dropped["INFO"] == 1000 - capacity
