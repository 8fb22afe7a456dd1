"""Every metric the chart's alerts and dashboard read is exported by a running service.

An alert on a metric nobody exports never fires, and a panel on one stays empty, silently.
This test reads the metric names out of the chart's PrometheusRule template and its Grafana
dashboard and scrapes `/metrics` of the four services running on the session's stores (the
gateway with its audit key, so the audit verifier runs). A labelled family with no sample yet
(orders by state before the first order) counts by its `# TYPE` line. promtool's check of the
rules and the dashboard's schema check are in tests/unit/test_helm_chart.py.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import httpx
import pytest

from aitrading.core.infrastructure.config_manager import Settings

from .conftest import session_audit_key
from .trading_stack import StackFactory, wait_for

pytestmark = pytest.mark.integration

CHART = Path(__file__).parents[2] / "charts" / "aitrading"
READERS = (
    CHART / "templates" / "prometheusrule.yaml",
    CHART / "files" / "dashboards" / "aitrading.json",
)
HISTOGRAM_SERIES = ("_bucket", "_count", "_sum")


def metrics_read(path: Path) -> set[str]:
    return set(re.findall(r"\b(aitrading_[a-z0-9_]+)\b", path.read_text()))


def exported_names(exposition: str) -> set[str]:
    """Sample names, plus what each `# TYPE` line declares (a histogram's three series)."""
    names = set(re.findall(r"^(aitrading_[a-z0-9_]+)", exposition, re.M))
    for family, kind in re.findall(r"^# TYPE (aitrading_[a-z0-9_]+) (\w+)", exposition, re.M):
        names.add(family)
        if kind == "histogram":
            names |= {family + series for series in HISTOGRAM_SERIES}
    return names


async def test_every_metric_an_alert_reads_is_exported(
    make_stack: StackFactory, settings: Settings
) -> None:
    stack = await make_stack(
        AITRADING_SECURITY_AUDIT_SIGNING_KEY_FILE=str(session_audit_key(settings)),
        AITRADING_SECURITY_AUDIT_VERIFY_INTERVAL_S="0.5",
    )
    wanted = set().union(*(metrics_read(path) for path in READERS))
    assert len(wanted) >= 15, wanted  # both files were read

    async def exported() -> set[str]:
        names: set[str] = set()
        async with httpx.AsyncClient(timeout=10) as http:
            for port in stack.ports.values():
                names |= exported_names((await http.get(f"http://127.0.0.1:{port}/metrics")).text)
        return names

    missing = set(wanted)

    async def all_exported() -> bool:  # the verifier's first walk may still be pending
        nonlocal missing
        missing = wanted - await exported()
        return not missing

    with contextlib.suppress(AssertionError):  # the assertion below names what is missing
        await wait_for(all_exported, "every metric the chart reads exported")
    assert not missing, f"read by the chart, exported by no service: {sorted(missing)}"
