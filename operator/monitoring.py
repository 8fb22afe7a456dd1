"""The stack's services, handed to the monitoring ecosystem: a ServiceMonitor per service.

Rendered only when the Prometheus Operator's `monitoring.coreos.com/v1` ServiceMonitor kind
exists (checked at every reconcile, so installing it later is picked up), and removed again
when `spec.monitoring.serviceMonitors` is turned off. Each monitor scrapes its Service's
port over HTTPS, verifying the service's certificate against the stack CA from the
service's own TLS Secret (its `ca.crt`) and the Service's DNS name.
"""

from __future__ import annotations

from typing import Any

from aitrading.operator.crd_model import SERVICES, TradingStackSpec
from aitrading.operator.render import Manifest, labels, tls_secret_for

API_VERSION = "monitoring.coreos.com/v1"
KIND = "ServiceMonitor"
PORT_NAME = "main"  # the name render.service() gives every Service's port


def service_monitors(stack: str, namespace: str, spec: TradingStackSpec) -> list[Manifest]:
    monitors = []
    for service in SERVICES:
        own = labels(stack, service)
        endpoint = {
            "port": PORT_NAME,
            "path": "/metrics",
            "scheme": "https",
            "interval": spec.monitoring.interval,
            "tlsConfig": {
                "ca": {"secret": {"name": tls_secret_for(stack, spec, service), "key": "ca.crt"}},
                "serverName": f"{stack}-{service}.{namespace}.svc",
            },
        }
        monitors.append(
            {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "metadata": {
                    "name": f"{stack}-{service}",
                    "namespace": namespace,
                    "labels": {**spec.monitoring.labels, **own},
                },
                "spec": {
                    "selector": {"matchLabels": own},
                    "namespaceSelector": {"matchNames": [namespace]},
                    "endpoints": [endpoint],
                },
            }
        )
    return monitors


def installed(dynamic: Any) -> bool:
    from kubernetes.dynamic.exceptions import ResourceNotFoundError

    try:
        dynamic.resources.get(api_version=API_VERSION, kind=KIND)
    except ResourceNotFoundError:
        return False
    return True


def remove_service_monitors(dynamic: Any, stack: str, namespace: str) -> int:
    """Delete the stack's monitors (turned off in the spec); how many were deleted."""
    api = dynamic.resources.get(api_version=API_VERSION, kind=KIND)
    selector = f"app.kubernetes.io/instance={stack},app.kubernetes.io/managed-by=aitrading-operator"
    found = api.get(namespace=namespace, label_selector=selector)
    names = [item["metadata"]["name"] for item in found.to_dict().get("items", [])]
    for name in names:
        api.delete(name=name, namespace=namespace)
    return len(names)
