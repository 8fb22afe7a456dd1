"""The operator's ClusterRole: exactly the resources and verbs it uses, nothing more.

Derived from what `render` produces (server-side apply = get, list, watch, create, patch;
deletion honours `deletionPolicy` = delete), plus its own resource and status, Events, and
the PVCs it removes when `deletionPolicy: Delete`.
"""

from __future__ import annotations

from typing import Any

from aitrading.operator.crd_model import GROUP, PLURAL

APPLY = ["get", "list", "watch", "create", "patch", "delete"]

RULES: list[dict[str, Any]] = [
    {"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["get", "list", "watch", "patch"]},
    {"apiGroups": [GROUP], "resources": [f"{PLURAL}/status"], "verbs": ["get", "patch"]},
    {"apiGroups": [""], "resources": ["configmaps", "services"], "verbs": APPLY},
    # the cold log tier's claim is applied; claims are deleted under deletionPolicy Delete
    {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": APPLY},
    # StatefulSet pods that cannot start block a fixed spec for ever: replaced (stuck_pods.py)
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "delete"]},
    # cert-manager issues the certificates when it is installed
    {"apiGroups": ["cert-manager.io"], "resources": ["issuers", "certificates"], "verbs": APPLY},
    # the stack's CA, certificates, signing keys and database credentials: read to reuse,
    # created once; the signing keys replaced when the stack asks for a rotation
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create", "update"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets"], "verbs": APPLY},
    {"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": APPLY},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": APPLY},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": APPLY},
    # a ServiceMonitor per service when the Prometheus Operator is installed (monitoring.py)
    {"apiGroups": ["monitoring.coreos.com"], "resources": ["servicemonitors"], "verbs": APPLY},
    # kopf peering (one active operator replica)
    {
        "apiGroups": ["kopf.dev"],
        "resources": ["clusterkopfpeerings", "kopfpeerings"],
        "verbs": ["get", "list", "watch", "patch"],
    },
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["get", "list", "watch"],
    },
    # At start the operator server-side-applies its own CRD (Helm never upgrades `crds/`):
    # patch on that one CRD only. When the CRD is missing (installed without Helm's crds/,
    # or deleted) the same apply creates it, which the API server authorises as `create` —
    # a verb that cannot be limited to one name, so it is granted on its own line.
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "resourceNames": [f"{PLURAL}.{GROUP}"],
        "verbs": ["patch"],
    },
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["create"],
    },
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
]


def cluster_role(name: str = "aitrading-operator") -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": RULES,
    }
