"""Run the kopf operator: `aitrading operator` in the cluster, or in a thread in tests."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import kopf


def run(
    connection: kopf.ConnectionInfo | None = None,
    stop_flag: threading.Event | None = None,
    ready_flag: threading.Event | None = None,
    liveness: str | None = "http://0.0.0.0:8080/healthz",
    standalone: bool = True,
) -> None:
    """Blocking. Standalone by default: one replica with a Recreate strategy guarantees a
    single active operator without kopf's peering CRDs; `standalone=False` uses peering."""
    from aitrading.operator import handlers

    registry = kopf.get_default_registry()
    if connection is not None:

        @kopf.on.login(registry=registry)
        def login(**_: Any) -> kopf.ConnectionInfo:
            return connection

    del handlers  # imported for its registrations
    asyncio.run(
        kopf.operator(
            registry=registry,
            clusterwide=True,
            standalone=standalone,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
            liveness_endpoint=liveness,
            priority=100,
        )
    )
