"""TLS 1.3 on every service listener, and the client side services use to reach each other.

A service with a certificate configured (`AITRADING_SECURITY_TLS_CERT_FILE` and `..._KEY_FILE`,
typically the per-service certificate the operator mounts) serves HTTPS/WSS only, TLS 1.3 and
nothing older. The same certificate is this service's client certificate toward the others
and the databases, and `AITRADING_SECURITY_TLS_CA_FILE` is the CA every peer is verified
against. Without a certificate a service serves plaintext — development on loopback.
"""

from __future__ import annotations

import ssl
from typing import Any

import uvicorn

from aitrading.core.infrastructure.config_manager import Settings
from aitrading.core.security.db_security_manager import TlsMaterial, client_context


def uvicorn_tls_kwargs(settings: Settings) -> dict[str, Any]:
    """uvicorn's certificate arguments, or nothing when no certificate is configured."""
    material = TlsMaterial.from_settings(settings.security)
    if material.cert_file is None or material.key_file is None:
        return {}
    return {"ssl_certfile": str(material.cert_file), "ssl_keyfile": str(material.key_file)}


def enforce_tls13(config: uvicorn.Config) -> None:
    """Load the config and raise the floor of its server context to TLS 1.3."""
    if not config.loaded:
        config.load()
    if config.ssl is not None:
        config.ssl.minimum_version = ssl.TLSVersion.TLSv1_3


def peer_client_context(settings: Settings) -> ssl.SSLContext:
    """How a service verifies another (the configured CA, TLS 1.3) and proves who it is
    (its certificate, when configured). Used for https:// and wss:// peers only."""
    return client_context(TlsMaterial.from_settings(settings.security))
