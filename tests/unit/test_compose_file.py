"""docker-compose-phase1.yml, checked without a Docker engine (none runs here).

- It is valid against the compose specification's JSON schema (compose-go's, from the Go
  module proxy: `make compose-schema`; `.ci/run` fetches it).
- Every service's `AITRADING_` environment, with `.env.example`'s values put in, is a valid
  production configuration for the settings loader the service itself runs — no unknown
  variable, no embedded store, nothing missing.
- Every certificate and key a container reads is one the `init` service writes, every key
  owned by the user that reads it, and no plaintext URL leaves a container's own loopback.
`docker compose up` itself runs in the `compose` job of .github/workflows/e2e-kind.yml.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from aitrading.core.infrastructure.config_manager import load_settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose-phase1.yml"
SCHEMA = REPO / ".cache" / "compose-spec.json"
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Z_]+)(?::?[?-](?P<rest>[^}]*))?\}")


def example_env() -> dict[str, str]:
    values = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def interpolated(text: str, env: dict[str, str]) -> str:
    def value(found: re.Match[str]) -> str:
        name = found["name"]
        assert name in env or found.group(0).startswith("${" + name + ":-"), (
            f"{name} is used but not in .env.example"
        )
        return env.get(name, found["rest"] or "")

    return _VARIABLE.sub(value, text.replace("$$", "\0")).replace("\0", "$")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(interpolated(COMPOSE.read_text(), example_env()))
    return loaded


@pytest.mark.skipif(not SCHEMA.is_file(), reason="no compose schema: make compose-schema")
def test_the_file_follows_the_compose_specification() -> None:
    raw = yaml.safe_load(COMPOSE.read_text())
    jsonschema.validate(raw, json.loads(SCHEMA.read_text()))


def test_every_service_environment_is_a_valid_production_configuration() -> None:
    checked = []
    for name, service in compose()["services"].items():
        env = {
            k: str(v)
            for k, v in (service.get("environment") or {}).items()
            if k.startswith("AITRADING_")
        }
        if not env:
            continue
        settings = load_settings(environ=env).settings
        assert settings.environment == "production", name
        checked.append(name)
    assert {"database-service", "data-bridge", "trading-engine", "api-gateway", "migrate"} <= set(
        checked
    )


def test_every_file_a_container_reads_is_written_by_init_for_its_reader() -> None:
    services = compose()["services"]
    command = services["init"]["command"]
    names = {a.split("=", 1)[1] for a in command if a.startswith("--name=")}
    keys = {a.split("=", 1)[1] for a in command if a.startswith("--signing-key=")}
    owners = {a.split("=", 2)[1]: a.split("=", 2)[2] for a in command if a.startswith("--owner=")}
    text = COMPOSE.read_text()
    for cert in set(re.findall(r"/certs/([a-z-]+)\.(?:crt|key)\b", text)) - {"ca"}:
        assert cert in names, f"/certs/{cert}.crt is read but init does not write it"
    for key in re.findall(r"/certs/([a-z-]+)\.pem\b", text):
        assert key in keys, f"/certs/{key}.pem is read but init does not write it"
    app_user = "10001:10001"  # the Dockerfile's USER
    for service in ("database-service", "data-bridge", "trading-engine", "api-gateway"):
        assert owners[service] == app_user, service
    assert owners["jwt"] == owners["audit-key"] == app_user
    assert owners["postgres"] == "999:999"  # the postgres image's user, who must own its key
    assert set(owners) == names | keys  # every key has its reader as owner


def test_no_plaintext_url_leaves_a_containers_loopback() -> None:
    for name, service in compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if not (key.endswith(("_URL", "_DSN")) and isinstance(value, str)):
                continue
            plain = value.startswith(("http://", "redis://", "postgresql://"))
            if value.startswith("postgresql://"):
                plain = "sslmode=verify-full" not in value
            if plain:
                assert "127.0.0.1" in value, f"{name}: {key} is plaintext to another container"
                assert service.get("network_mode") == "service:database-service" or (
                    name == "database-service"
                ), f"{name}: {key} reaches 127.0.0.1 of a namespace it does not share"
