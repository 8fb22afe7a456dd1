"""Every metric the chart's alerts read is exported by a running service.

An alert on a metric nobody exports never fires, silently. This test reads the metric names
out of the chart's PrometheusRule template and scrapes `/metrics` of the four services
running on the session's stores (the gateway with its audit key, so the audit verifier runs).
promtool's check of the same rules is in tests/unit/test_helm_chart.py.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import httpx
import pytest

from aitrading.core.security.audit_logger import write_signing_key

from .trading_stack import StackFactory

pytestmark = pytest.mark.integration

RULES = Path(__file__).parents[2] / "charts" / "aitrading" / "templates" / "prometheusrule.yaml"


def alert_metrics() -> set[str]:
    return set(re.findall(r"\b(aitrading_[a-z0-9_]+)\b", RULES.read_text()))


async def test_every_metric_an_alert_reads_is_exported(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    key = tmp_path / "audit.key"
    write_signing_key(key)
    stack = await make_stack(
        AITRADING_SECURITY_AUDIT_SIGNING_KEY_FILE=str(key),
        AITRADING_SECURITY_AUDIT_VERIFY_INTERVAL_S="0.5",
    )
    wanted = alert_metrics()
    assert len(wanted) >= 5, wanted  # the template was read, not an empty file

    async def exported() -> set[str]:
        names: set[str] = set()
        async with httpx.AsyncClient(timeout=10) as http:
            for port in stack.ports.values():
                text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                names |= set(re.findall(r"^(aitrading_[a-z0-9_]+)", text, re.M))
        return names

    deadline = time.monotonic() + 30  # the verifier's first walk may still be pending
    found = await exported()
    while not wanted <= found and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        found = await exported()
    assert wanted <= found, f"read by alerts, exported by no service: {sorted(wanted - found)}"
