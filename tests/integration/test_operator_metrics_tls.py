"""The operator's metrics listener: TLS 1.3 only when the chart gives it a certificate."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest

from aitrading.cli.operator_cmd import serve_metrics

from .conftest import free_port
from .test_tls_listeners import _handshake, make_pki, trusting

pytestmark = pytest.mark.integration


def test_operator_metrics_serve_tls13_only(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    port = free_port()
    server = serve_metrics(port, pki["cert"], pki["key"])
    try:
        answer = httpx.get(f"https://127.0.0.1:{port}/metrics", verify=trusting(pki["ca"]))
        assert answer.status_code == 200
        assert "python_info" in answer.text or "process_" in answer.text
        assert _handshake(port, pki["ca"], ssl.TLSVersion.TLSv1_3) == ssl.TLSVersion.TLSv1_3
        assert _handshake(port, pki["ca"], ssl.TLSVersion.TLSv1_2) is None
    finally:
        server.shutdown()  # type: ignore[attr-defined]
        server.server_close()  # type: ignore[attr-defined]
