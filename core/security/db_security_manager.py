"""TLS for every database client, from one place: TLS 1.3 floor, CA, client certificates.

The stores never build SSL contexts themselves; they ask here, with the material named in
settings (`AITRADING_SECURITY_TLS_CA_FILE`, `..._TLS_CERT_FILE`, `..._TLS_KEY_FILE` — files,
typically a mounted Kubernetes Secret). Verification of the server's certificate and host
name is always on; a client certificate is presented when one is configured.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aitrading.core.infrastructure.config_manager import SecuritySettings, env_name


class TlsConfigError(ValueError):
    """TLS material is missing or unreadable; the message names the setting."""


@dataclass(frozen=True)
class TlsMaterial:
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @classmethod
    def from_settings(cls, settings: SecuritySettings) -> TlsMaterial:
        material = cls(settings.tls_ca_file, settings.tls_cert_file, settings.tls_key_file)
        material.check()
        return material

    def check(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise TlsConfigError(
                f"set both {env_name('security.tls_cert_file')} and "
                f"{env_name('security.tls_key_file')} for a client certificate, or neither"
            )
        for path, setting in (
            (self.ca_file, "security.tls_ca_file"),
            (self.cert_file, "security.tls_cert_file"),
            (self.key_file, "security.tls_key_file"),
        ):
            if path is not None and not path.is_file():
                raise TlsConfigError(f"{env_name(setting)}: {path} is not a readable file")


def client_context(material: TlsMaterial | None = None) -> ssl.SSLContext:
    """Verify the server (system CAs, or the configured CA), present our cert if any, TLS 1.3+."""
    material = material or TlsMaterial()
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=material.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    if material.cert_file is not None and material.key_file is not None:
        context.load_cert_chain(material.cert_file, material.key_file)
    return context


def redis_ssl_kwargs(material: TlsMaterial) -> dict[str, Any]:
    """Keyword arguments for redis-py's connection pool (rediss://)."""
    kwargs: dict[str, Any] = {
        "ssl_min_version": ssl.TLSVersion.TLSv1_3,
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": True,
    }
    if material.ca_file is not None:
        kwargs["ssl_ca_certs"] = str(material.ca_file)
    if material.cert_file is not None and material.key_file is not None:
        kwargs["ssl_certfile"] = str(material.cert_file)
        kwargs["ssl_keyfile"] = str(material.key_file)
    return kwargs


def weaviate_connection_params(material: TlsMaterial) -> dict[str, Any]:
    """weaviate-client v4 verifies with the system store or `SSL_CERT_FILE`/gRPC roots.

    Returns the environment the client reads for a private CA; the factory applies it before
    connecting. A client certificate is not supported by weaviate-client: it raises.
    """
    if material.cert_file is not None:
        raise TlsConfigError("weaviate-client does not support client certificates")
    if material.ca_file is None:
        return {}
    return {
        "SSL_CERT_FILE": str(material.ca_file),
        "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(material.ca_file),
    }
