"""TLS 1.3 as the floor for every connection that leaves loopback.

Development on one machine talks to embedded servers on 127.0.0.1 in plaintext; anything else
— a StatefulSet in the cluster, a managed database — is reached over TLS 1.3 with certificate
and host name verification (contexts: `db_security_manager`), or not at all. Store factories
call `check_transport` before they connect, so a plaintext URL to a remote host fails at
start-up with the setting to fix.
"""

from __future__ import annotations

import ipaddress


class InsecureTransportError(ValueError):
    """A plaintext connection to a non-loopback host was requested."""


def is_loopback(host: str | None) -> bool:
    """True for localhost and the loopback ranges (127.0.0.0/8, ::1); False for anything else."""
    if not host:
        return False
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_transport(*, host: str | None, encrypted: bool, setting: str, store: str) -> None:
    """Refuse plaintext to a non-loopback host, naming the store and the setting to change."""
    if encrypted or is_loopback(host):
        return
    raise InsecureTransportError(
        f"{store}: refusing a plaintext connection to {host!r}; TLS 1.3 is required outside "
        f"loopback. Use an encrypted URL in {setting} (https://, rediss://, or sslmode=require)."
    )


def postgres_server_tls_args(cert: str, key: str) -> list[str]:
    """PostgreSQL server arguments for TLS 1.3 only with this certificate: the embedded
    server's and the operator's StatefulSet's, one rule."""
    return [
        "-c",
        "ssl=on",
        "-c",
        f"ssl_cert_file={cert}",
        "-c",
        f"ssl_key_file={key}",
        "-c",
        "ssl_min_protocol_version=TLSv1.3",
    ]
