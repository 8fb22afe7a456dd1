"""One idempotent reconcile for every trigger: resume, create, update and the drift timer.

kopf's create/update handlers are edge-triggered; a missed edge must not leave the stack
half-built, so all of them (and a timer) call `reconcile`, which server-side-applies every
rendered object under one field manager with an owner reference, phase by phase, and stops
at the first phase that is not ready yet. Re-applying is how drift is repaired: a deleted
child is created again, an edited field owned by the operator is set back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from aitrading.operator import monitoring
from aitrading.operator.crd_model import GROUP, KIND, VERSION, TradingStackSpec
from aitrading.operator.password_rollout import stamp_password_rotation
from aitrading.operator.render import Manifest, cert_manager_objects, phases
from aitrading.operator.service_certs import ensure_service_tls
from aitrading.operator.stack_secrets import RotationKind, ensure_stack_secrets
from aitrading.operator.stuck_pods import replace_stuck_pods

FIELD_MANAGER = "aitrading-operator"


@dataclass
class Outcome:
    phase: str
    ready: bool
    components: dict[str, dict[str, Any]] = field(default_factory=dict)
    message: str = ""
    applied: int = 0


def owner_reference(name: str, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def with_owner(manifest: Manifest, owner: dict[str, Any]) -> Manifest:
    """The manifest owned by the stack, so that the garbage collector removes it with the
    stack — except volume claims: their data follows `deletionPolicy` (kept under Retain,
    deleted by the operator's finalizer under Delete), like the StatefulSets' claims."""
    if manifest["kind"] == "PersistentVolumeClaim":
        return manifest
    body = {**manifest, "metadata": {**manifest["metadata"], "ownerReferences": [owner]}}
    return body


def is_ready(live: dict[str, Any]) -> tuple[bool, str]:
    """Whether a child is ready the way its controller reports it."""
    kind = live.get("kind")
    spec, status = live.get("spec") or {}, live.get("status") or {}
    if kind in ("Deployment", "StatefulSet"):
        wanted = spec.get("replicas", 1)
        ready = status.get("readyReplicas", 0) or 0
        current = status.get("observedGeneration", 0) >= live["metadata"].get("generation", 0)
        return (ready >= wanted and current), f"{ready}/{wanted} ready"
    return True, "applied"


class Applier:
    """Server-side apply through the `kubernetes` client's dynamic API."""

    def __init__(self, dynamic: Any) -> None:
        self.dynamic = dynamic

    def apply(self, manifest: Manifest) -> dict[str, Any]:
        api = self.dynamic.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
        live = api.server_side_apply(
            body=manifest,
            name=manifest["metadata"]["name"],
            namespace=manifest["metadata"].get("namespace"),
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
        )
        result: dict[str, Any] = live.to_dict()
        return result


def cert_manager_installed(dynamic: Any) -> bool:
    from kubernetes.dynamic.exceptions import ResourceNotFoundError

    try:
        dynamic.resources.get(api_version="cert-manager.io/v1", kind="Certificate")
    except ResourceNotFoundError:
        return False
    return True


def reconcile(
    applier: Applier,
    name: str,
    namespace: str,
    uid: str,
    spec: TradingStackSpec,
    rotations: dict[RotationKind, str | None] | None = None,
) -> Outcome:
    owner = owner_reference(name, uid)
    rotations = rotations or {}
    # The keys and database credentials the pods mount: generated once, reused after.
    ensure_stack_secrets(applier.dynamic, name, namespace, owner, spec, rotations)
    # Certificates first: every service pod mounts its own. The spec's own Secret, else
    # cert-manager's when it is installed, else the operator's (created once, then reused).
    if spec.security.tls_secret is None and cert_manager_installed(applier.dynamic):
        for manifest in cert_manager_objects(name, namespace, spec):
            applier.apply(with_owner(manifest, owner))
    else:
        ensure_service_tls(applier.dynamic, name, namespace, owner, spec)
    outcome = Outcome(phase="Progressing", ready=False)
    ordered = phases(name, namespace, spec)
    for index, phase in enumerate(ordered):
        phase_ready = True
        for manifest in phase:
            stamp_password_rotation(manifest, rotations.get("passwords"))
            live = applier.apply(with_owner(manifest, owner))
            outcome.applied += 1
            if manifest["kind"] == "StatefulSet":
                replace_stuck_pods(applier.dynamic, live)
            ready, detail = is_ready(live)
            component = manifest["metadata"]["labels"]["app.kubernetes.io/component"]
            if manifest["kind"] in ("Deployment", "StatefulSet"):
                outcome.components[component] = {"ready": ready, "message": detail}
            phase_ready = phase_ready and ready
        if not phase_ready:
            outcome.message = f"waiting for phase {index + 1} of {len(ordered)} to be ready"
            return outcome
    _monitors(applier, name, namespace, spec, owner, outcome)
    outcome.phase, outcome.ready = ("Paused", True) if spec.paused else ("Ready", True)
    outcome.message = "all components ready"
    return outcome


def _monitors(
    applier: Applier,
    name: str,
    namespace: str,
    spec: TradingStackSpec,
    owner: dict[str, Any],
    outcome: Outcome,
) -> None:
    """ServiceMonitors once the services are up, when the Prometheus Operator is there."""
    if not monitoring.installed(applier.dynamic):
        return
    if not spec.monitoring.service_monitors:
        monitoring.remove_service_monitors(applier.dynamic, name, namespace)
        return
    for manifest in monitoring.service_monitors(name, namespace, spec):
        applier.apply(with_owner(manifest, owner))
        outcome.applied += 1


def conditions(
    outcome: Outcome,
    generation: int,
    previous: list[dict[str, Any]] | None,
    error: str | None = None,
) -> list[dict[str, Any]]:
    """Ready / Progressing / Degraded, keeping lastTransitionTime when a status is unchanged."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    before = {c["type"]: c for c in previous or []}
    wanted = {
        "Ready": (
            "True" if outcome.ready and not error else "False",
            "AllComponentsReady" if outcome.ready else "Progressing",
            outcome.message,
        ),
        "Progressing": (
            "True" if not outcome.ready and not error else "False",
            "RollingOut" if not outcome.ready else "Complete",
            outcome.message,
        ),
        "Degraded": (
            "True" if error else "False",
            "ReconcileFailed" if error else "AsExpected",
            error or "",
        ),
    }
    result = []
    for kind, (status, reason, message) in wanted.items():
        old = before.get(kind)
        since = old["lastTransitionTime"] if old and old.get("status") == status else now
        result.append(
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "observedGeneration": generation,
                "lastTransitionTime": since,
            }
        )
    return result
