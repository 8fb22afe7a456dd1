"""TLS 1.3 as the floor for every connection that leaves loopback.

Development on one machine talks to embedded servers on 127.0.0.1 in plaintext; anything else
— a StatefulSet in the cluster, a managed database — is reached over TLS 1.3 with certificate
and host name verification, or not at all. Store factories call `check_transport` before
they connect, so a plaintext URL to a remote host fails at start-up with the setting to fix.
"""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path


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


def client_ssl_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """A client context that verifies the server and refuses anything below TLS 1.3."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def server_ssl_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server context for our own listeners: TLS 1.3 only."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(cert_file, key_file)
    return context


def check_transport(*, host: str | None, encrypted: bool, setting: str, store: str) -> None:
    """Refuse plaintext to a non-loopback host, naming the store and the setting to change."""
    if encrypted or is_loopback(host):
        return
    raise InsecureTransportError(
        f"{store}: refusing a plaintext connection to {host!r}; TLS 1.3 is required outside "
        f"loopback. Use an encrypted URL in {setting} (https://, rediss://, or sslmode=require)."
    )
