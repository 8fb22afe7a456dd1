"""kopf handlers for TradingStack: thin wrappers around `reconcile` (see reconcile.py).

Status fields written here are all declared in the CRD schema, so the API server never prunes
them (which would make kopf re-run handlers forever). Deletion goes through kopf's finalizer:
with `deletionPolicy: Delete` the stack's PersistentVolumeClaims are deleted too; with
`Retain` they stay (children themselves go with their owner reference).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import kopf
from prometheus_client import Counter

from aitrading.operator.crd_model import GROUP, PLURAL, VERSION, TradingStackSpec
from aitrading.operator.reconcile import Applier, conditions, reconcile
from aitrading.operator.stack_secrets import (
    ROTATE_ANNOTATION,
    ROTATE_PASSWORDS_ANNOTATION,
    RotationKind,
)

_log = logging.getLogger(__name__)
RECONCILES = Counter("aitrading_operator_reconciles", "Reconciles by outcome", ["outcome"])
DRIFT_INTERVAL_S = 30.0
RETRY_DELAY_S = 10.0
_dynamic: Any = None
_RECONCILE_LOCK = threading.Lock()


def configure(dynamic_client: Any, retry_delay_s: float | None = None) -> None:
    """Use this dynamic client instead of in-cluster/kubeconfig credentials (tests, tools)."""
    global _dynamic, RETRY_DELAY_S
    _dynamic = dynamic_client
    if retry_delay_s is not None:
        RETRY_DELAY_S = retry_delay_s


def _applier() -> Applier:
    return Applier(dynamic_client())


def dynamic_client() -> Any:
    """The configured dynamic client, or one from in-cluster/kubeconfig credentials."""
    global _dynamic
    if _dynamic is None:  # built on first use, never at import
        _dynamic = new_dynamic_client()
    return _dynamic


def new_dynamic_client() -> Any:
    """A dynamic client with its own, fresh discovery (the configured one's API client)."""
    from kubernetes import config, dynamic
    from kubernetes.client import api_client

    if _dynamic is not None:
        return dynamic.DynamicClient(_dynamic.client)  # type: ignore[no-untyped-call]
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return dynamic.DynamicClient(api_client.ApiClient())  # type: ignore[no-untyped-call]


def _run(
    body: kopf.Body,
    spec: kopf.Spec,
    name: str,
    namespace: str | None,
    patch: kopf.Patch,
    status: kopf.Status,
    reason: str,
) -> None:
    if namespace is None:
        raise kopf.PermanentError("TradingStack is namespaced")
    generation = int(body["metadata"].get("generation", 0))
    previous: Any = dict(status or {}).get("conditions")
    try:
        parsed = TradingStackSpec.model_validate(dict(spec))
        # kopf runs sync handlers in worker threads; the shared dynamic client's discovery
        # cache is not thread-safe (KeyError: 'resources'), so reconciles take turns.
        with _RECONCILE_LOCK:
            annotations = body["metadata"].get("annotations") or {}
            rotations: dict[RotationKind, str | None] = {
                "keys": annotations.get(ROTATE_ANNOTATION),
                "passwords": annotations.get(ROTATE_PASSWORDS_ANNOTATION),
            }
            outcome = reconcile(
                _applier(), name, namespace, body["metadata"]["uid"], parsed, rotations
            )
    except Exception as exc:
        RECONCILES.labels("error").inc()
        from aitrading.operator.reconcile import Outcome

        patch.status["conditions"] = conditions(
            Outcome("Degraded", False), generation, previous, error=f"{type(exc).__name__}: {exc}"
        )
        patch.status["phase"] = "Degraded"
        kopf.warn(body, reason="ReconcileFailed", message=str(exc))
        raise kopf.TemporaryError(str(exc), delay=RETRY_DELAY_S) from exc
    RECONCILES.labels("ready" if outcome.ready else "progressing").inc()
    patch.status["observedGeneration"] = generation
    patch.status["phase"] = outcome.phase
    patch.status["version"] = parsed.version
    patch.status["components"] = outcome.components
    patch.status["conditions"] = conditions(outcome, generation, previous)
    kopf.info(
        body,
        reason=reason,
        message=f"{outcome.phase}: {outcome.message} ({outcome.applied} objects applied)",
    )
    if not outcome.ready:
        raise kopf.TemporaryError(outcome.message, delay=RETRY_DELAY_S)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def on_change(
    body: kopf.Body,
    spec: kopf.Spec,
    name: str,
    namespace: str | None,
    patch: kopf.Patch,
    status: kopf.Status,
    **_: Any,
) -> None:
    _run(body, spec, name, namespace, patch, status, "Reconciled")


@kopf.timer(GROUP, VERSION, PLURAL, interval=DRIFT_INTERVAL_S, idle=DRIFT_INTERVAL_S)
def repair_drift(
    body: kopf.Body,
    spec: kopf.Spec,
    name: str,
    namespace: str | None,
    patch: kopf.Patch,
    status: kopf.Status,
    **_: Any,
) -> None:
    _run(body, spec, name, namespace, patch, status, "DriftChecked")


@kopf.on.delete(GROUP, VERSION, PLURAL)
def on_delete(body: kopf.Body, spec: kopf.Spec, name: str, namespace: str | None, **_: Any) -> None:
    policy = spec.get("deletionPolicy", "Retain")
    if namespace is None:
        return
    if policy != "Delete":
        kopf.info(body, reason="DataRetained", message="deletionPolicy Retain: volumes kept")
        return
    claims_api = _applier().dynamic.resources.get(api_version="v1", kind="PersistentVolumeClaim")
    claims = claims_api.get(
        namespace=namespace, label_selector=f"app.kubernetes.io/instance={name}"
    ).items
    for claim in claims:
        claims_api.delete(name=claim.metadata.name, namespace=namespace)
    kopf.info(
        body,
        reason="DataDeleted",
        message=f"deletionPolicy Delete: {len(claims)} volume claim(s) deleted",
    )
