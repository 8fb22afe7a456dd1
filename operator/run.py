"""Run the kopf operator: `aitrading operator` in the cluster, or in a thread in tests."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import kopf


def ensure_crd(dynamic: Any) -> str:
    """Server-side apply this version's CRD over whatever the cluster has.

    Helm installs files in a chart's `crds/` once and never upgrades them; the operator, whose
    image carries the CRD it was built against, brings the cluster's copy up to date before it
    starts handling resources. Returns the applied resourceVersion.
    """
    from aitrading.operator.crd_model import crd_manifest
    from aitrading.operator.reconcile import FIELD_MANAGER

    crds = dynamic.resources.get(
        api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
    )
    manifest = crd_manifest()
    applied = crds.server_side_apply(
        body=manifest,
        name=manifest["metadata"]["name"],
        field_manager=FIELD_MANAGER,
        force_conflicts=True,
    )
    return str(applied.metadata.resourceVersion)


def wait_until_served(new_dynamic: Callable[[], Any], timeout_s: float = 300.0) -> None:
    """Block until the API server serves TradingStacks (CRD Established, and found by a fresh
    discovery). kopf resolves its resources once at start: started right after the CRD was
    created, it logged "Unresolved resources cannot be served" and ignored every
    TradingStack until restarted (once in two cold starts on a real cluster)."""
    from aitrading.operator.crd_model import GROUP, KIND, VERSION, crd_manifest
    from aitrading.operator.handlers import failure_text

    name = crd_manifest()["metadata"]["name"]
    deadline = time.monotonic() + timeout_s
    last = "not checked yet"
    while time.monotonic() < deadline:
        try:
            dynamic = new_dynamic()
            crds = dynamic.resources.get(
                api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
            )
            conditions = crds.get(name=name).to_dict().get("status", {}).get("conditions") or []
            established = any(
                c.get("type") == "Established" and c.get("status") == "True" for c in conditions
            )
            if established:
                dynamic.resources.get(api_version=f"{GROUP}/{VERSION}", kind=KIND)
                return
            last = "the CRD is not Established yet"
        except Exception as exc:  # discovery not caught up yet: try again
            last = failure_text(exc)
        time.sleep(0.5)
    raise TimeoutError(f"TradingStacks were not served within {timeout_s:.0f} s: {last}")


def run(
    connection: kopf.ConnectionInfo | None = None,
    stop_flag: threading.Event | None = None,
    ready_flag: threading.Event | None = None,
    liveness: str | None = "http://0.0.0.0:8080/healthz",
    standalone: bool = True,
    dynamic: Any | None = None,
    retry_delay_s: float | None = None,
) -> None:
    """Blocking. Standalone by default: one replica with a Recreate strategy guarantees a
    single active operator without kopf's peering CRDs; `standalone=False` uses peering.
    `dynamic` and `retry_delay_s` replace the in-cluster client and the retry delay (tests)."""
    from aitrading.operator import handlers

    registry = kopf.get_default_registry()
    if connection is not None:

        @kopf.on.login(registry=registry)
        def login(**_: Any) -> kopf.ConnectionInfo:
            return connection

    client = dynamic if dynamic is not None else handlers.new_dynamic_client()
    ensure_crd(client)
    wait_until_served(lambda: handlers.fresh_discovery(client))
    memo = kopf.Memo(dynamic=client)
    if retry_delay_s is not None:
        memo.retry_delay_s = retry_delay_s
    asyncio.run(
        kopf.operator(
            registry=registry,
            clusterwide=True,
            standalone=standalone,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
            liveness_endpoint=liveness,
            priority=100,
            memo=memo,
        )
    )
