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

from aitrading.core.security.redaction import redact
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


@kopf.on.startup()
def connect(memo: kopf.Memo, **_: Any) -> None:
    """The operator's state lives in kopf's memo, made once at start (no module globals):
    the dynamic client (`run` may hand one in), the delay before a retry, and the lock that
    makes reconciles take turns — kopf runs sync handlers in worker threads, and the
    client's discovery cache is not thread-safe (KeyError: 'resources')."""
    if memo.get("dynamic") is None:
        memo.dynamic = new_dynamic_client()
    memo.setdefault("retry_delay_s", RETRY_DELAY_S)
    memo.reconciling = threading.Lock()


def new_dynamic_client() -> Any:
    """A dynamic client with its own, fresh discovery, from in-cluster or kubeconfig
    credentials."""
    from kubernetes import config, dynamic
    from kubernetes.client import api_client

    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return dynamic.DynamicClient(api_client.ApiClient())  # type: ignore[no-untyped-call]


MAX_FAILURE_CHARS = 1000


def failure_text(exc: Exception) -> str:
    """What a failed reconcile says in the status condition, the Event and kopf's log: the
    error redacted and bounded. A validation error repeats the input it refused, and an API
    error the server's answer; either may carry a password or a token, and a status field is
    readable by anyone who may read the TradingStack."""
    return redact(f"{type(exc).__name__}: {exc}")[:MAX_FAILURE_CHARS]


def fresh_discovery(client: Any) -> Any:
    """Another dynamic client over the same API client, with its own discovery."""
    from kubernetes import dynamic

    return dynamic.DynamicClient(client.client)  # type: ignore[no-untyped-call]


def _run(
    memo: kopf.Memo,
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
        with memo.reconciling:  # reconciles take turns (see `connect`)
            annotations = body["metadata"].get("annotations") or {}
            rotations: dict[RotationKind, str | None] = {
                "keys": annotations.get(ROTATE_ANNOTATION),
                "passwords": annotations.get(ROTATE_PASSWORDS_ANNOTATION),
            }
            outcome = reconcile(
                Applier(memo.dynamic), name, namespace, body["metadata"]["uid"], parsed, rotations
            )
    except Exception as exc:
        RECONCILES.labels("error").inc()
        from aitrading.operator.reconcile import Outcome

        failure = failure_text(exc)
        patch.status["conditions"] = conditions(
            Outcome("Degraded", False), generation, previous, error=failure
        )
        patch.status["phase"] = "Degraded"
        kopf.warn(body, reason="ReconcileFailed", message=failure)
        raise kopf.TemporaryError(failure, delay=memo.retry_delay_s) from exc
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
        raise kopf.TemporaryError(outcome.message, delay=memo.retry_delay_s)


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
    memo: kopf.Memo,
    **_: Any,
) -> None:
    _run(memo, body, spec, name, namespace, patch, status, "Reconciled")


@kopf.timer(GROUP, VERSION, PLURAL, interval=DRIFT_INTERVAL_S, idle=DRIFT_INTERVAL_S)
def repair_drift(
    body: kopf.Body,
    spec: kopf.Spec,
    name: str,
    namespace: str | None,
    patch: kopf.Patch,
    status: kopf.Status,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    _run(memo, body, spec, name, namespace, patch, status, "DriftChecked")


@kopf.on.delete(GROUP, VERSION, PLURAL)
def on_delete(
    body: kopf.Body,
    spec: kopf.Spec,
    name: str,
    namespace: str | None,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    policy = spec.get("deletionPolicy", "Retain")
    if namespace is None:
        return
    if policy != "Delete":
        kopf.info(body, reason="DataRetained", message="deletionPolicy Retain: volumes kept")
        return
    claims_api = memo.dynamic.resources.get(api_version="v1", kind="PersistentVolumeClaim")
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
