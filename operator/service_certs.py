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
import datetime as dt
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from aitrading.operator.crd_model import TradingStackSpec
from aitrading.operator.render import certificate_holders, labels

CA_DAYS = 3650
CERT_DAYS = 825


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


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def new_ca(stack: str) -> tuple[bytes, bytes]:
    """(key PEM, certificate PEM) of a new CA for this stack."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"aitrading {stack} CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return _pem(key), cert.public_bytes(serialization.Encoding.PEM)


def service_certificate(
    ca_key_pem: bytes, ca_cert_pem: bytes, stack: str, namespace: str, service: str
) -> tuple[bytes, bytes]:
    """(key PEM, certificate PEM) for one service, signed by the stack's CA."""
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the stack CA key is not an EC key")
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    names = dns_names(stack, namespace, service)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    return _pem(key), cert.public_bytes(serialization.Encoding.PEM)


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
