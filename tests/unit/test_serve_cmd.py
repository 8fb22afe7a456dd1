"""`aitrading serve` hands uvicorn the limits every service relies on (uvicorn stubbed out)."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from aitrading.cli.main import app


def test_serve_sets_header_idle_and_concurrency_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    import aitrading.core.logging.service_logging as service_logging

    seen: dict[str, Any] = {}

    class Server:  # uvicorn.Server's surface: run(), then `started` says whether it served
        def __init__(self, config: uvicorn.Config) -> None:
            seen.update(vars(config))
            self.started = False

        def run(self) -> None:
            seen["ran"] = True
            self.started = True

    monkeypatch.setattr(uvicorn, "Server", Server)
    monkeypatch.setattr(service_logging, "start_service_logging", lambda *a, **k: "router")
    stopped: list[object] = []
    monkeypatch.setattr(service_logging, "stop_service_logging", stopped.append)
    monkeypatch.setenv("AITRADING_SERVICES_DATABASE_SERVICE_PORT", "18999")
    result = CliRunner().invoke(app, ["serve", "database-service"])
    assert result.exit_code == 0, result.output
    assert seen["port"] == 18999
    assert seen["timeout_keep_alive"] == 5
    assert seen["h11_max_incomplete_event_size"] == 16 * 1024
    assert seen["limit_concurrency"] == 2000
    assert seen["ran"] is True
    assert seen["ssl"] is None  # no certificate configured: plaintext (development)
    assert stopped == ["router"]  # logging is flushed when the server stops


def test_production_refuses_plaintext_outside_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    monkeypatch.setattr(uvicorn, "Server", lambda config: pytest.fail("must not start"))
    monkeypatch.setenv("AITRADING_ENVIRONMENT", "production")
    monkeypatch.setenv("AITRADING_SERVICES_BIND_HOST", "0.0.0.0")  # noqa: S104 - the point
    for name, value in {
        "AITRADING_POSTGRES_DSN": "postgresql://u@127.0.0.1:1/d",
        "AITRADING_REDIS_URL": "redis://127.0.0.1:2",
        "AITRADING_CLICKHOUSE_DSN": "http://127.0.0.1:3",
    }.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["serve", "database-service"])
    assert result.exit_code == 2, result.output
    assert "AITRADING_SECURITY_TLS_CERT_FILE" in result.output


def test_a_server_that_never_started_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn returns from run() when the app's startup fails; that is not a clean exit."""
    import uvicorn

    import aitrading.core.logging.service_logging as service_logging

    class Server:
        def __init__(self, config: uvicorn.Config) -> None:
            self.started = False

        def run(self) -> None:
            return None  # startup failed: nothing served

    monkeypatch.setattr(uvicorn, "Server", Server)
    monkeypatch.setattr(service_logging, "start_service_logging", lambda *a, **k: "router")
    monkeypatch.setattr(service_logging, "stop_service_logging", lambda router: None)
    monkeypatch.setenv("AITRADING_SERVICES_DATABASE_SERVICE_PORT", "18998")
    result = CliRunner().invoke(app, ["serve", "database-service"])
    assert result.exit_code == 1, result.output
