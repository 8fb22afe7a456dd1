"""The stack's own CA and one certificate per service, for TLS between services.

When the TradingStack names no `security.tlsSecret`, the operator creates a CA for the
stack (`<stack>-ca`) on first reconcile and signs one certificate per service
(`<stack>-<service>-tls`: `tls.crt`, `tls.key`, `ca.crt`) whose names are the Service's DNS
names. Each certificate serves the service's HTTPS/WSS listener and is its client
certificate toward the others. The secrets are created once and reused (never rewritten by a
reconcile, never logged, never in status), owned by the TradingStack so they go with it.
"""

from __future__ import annotations

import base64
from typing import Any

from aitrading.core.security import certificates
from aitrading.operator.crd_model import TradingStackSpec
from aitrading.operator.render import certificate_holders, labels


def ca_secret_name(stack: str) -> str:
    return f"{stack}-ca"


def service_secret_name(stack: str, service: str) -> str:
    return f"{stack}-{service}-tls"


def dns_names(stack: str, namespace: str, service: str) -> list[str]:
    base = f"{stack}-{service}"
    return [
        base,
        f"{base}.{namespace}",
        f"{base}.{namespace}.svc",
        f"{base}.{namespace}.svc.cluster.local",
        "localhost",
    ]


def new_ca(stack: str) -> tuple[bytes, bytes]:
    """(key PEM, certificate PEM) of a new CA for this stack."""
    return certificates.new_ca(f"aitrading {stack} CA")


def service_certificate(
    ca_key_pem: bytes, ca_cert_pem: bytes, stack: str, namespace: str, service: str
) -> tuple[bytes, bytes]:
    """(key PEM, certificate PEM) for one service, signed by the stack's CA."""
    return certificates.signed_certificate(
        ca_key_pem, ca_cert_pem, dns_names(stack, namespace, service)
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _secret(stack: str, namespace: str, name: str, component: str, data: dict[str, bytes]) -> Any:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls" if "tls.crt" in data else "Opaque",
        "metadata": {"name": name, "namespace": namespace, "labels": labels(stack, component)},
        "data": {k: _b64(v) for k, v in data.items()},
    }


def ensure_service_tls(
    dynamic: Any, stack: str, namespace: str, owner: dict[str, Any], spec: TradingStackSpec
) -> list[str]:
    """Create what is missing (the CA, then each service's and in-cluster database's
    certificate); returns the names of the secrets created now. Nothing when the spec brings
    its own `tlsSecret`."""
    if spec.security.tls_secret is not None:
        return []
    from kubernetes.dynamic.exceptions import NotFoundError

    secrets = dynamic.resources.get(api_version="v1", kind="Secret")
    created: list[str] = []

    def existing(name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = secrets.get(name=name, namespace=namespace).to_dict()
            return found
        except NotFoundError:
            return None

    def create(body: dict[str, Any]) -> None:
        body["metadata"]["ownerReferences"] = [owner]
        secrets.create(body=body, namespace=namespace)
        created.append(body["metadata"]["name"])

    ca = existing(ca_secret_name(stack))
    if ca is None:
        key_pem, cert_pem = new_ca(stack)
        create(
            _secret(
                stack,
                namespace,
                ca_secret_name(stack),
                "ca",
                {"ca.key": key_pem, "ca.crt": cert_pem},
            )
        )
    else:
        key_pem = base64.b64decode(ca["data"]["ca.key"])
        cert_pem = base64.b64decode(ca["data"]["ca.crt"])
    for service in certificate_holders(spec):
        name = service_secret_name(stack, service)
        if existing(name) is not None:
            continue
        svc_key, svc_cert = service_certificate(key_pem, cert_pem, stack, namespace, service)
        create(
            _secret(
                stack,
                namespace,
                name,
                service,
                {"tls.crt": svc_cert, "tls.key": svc_key, "ca.crt": cert_pem},
            )
        )
    return created
