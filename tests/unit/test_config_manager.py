from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from aitrading.cli.main import app
from aitrading.core.infrastructure.config_manager import (
    ConfigError,
    effective_items,
    env_name,
    load_settings,
)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_layers_override_in_order_and_remember_their_source(tmp_path: Path) -> None:
    config = write(
        tmp_path / "c.yaml",
        "postgres:\n  port: 6001\n  pool_max_size: 7\nredis:\n  port: 6101\nlog_level: DEBUG\n",
    )
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    write(secrets / "REDIS_PORT", "6102\n")
    write(secrets / "AITRADING_POSTGRES_POOL_MAX_SIZE", "8")
    env = {
        "AITRADING_SECRETS_DIR": str(secrets),
        "AITRADING_POSTGRES_POOL_MAX_SIZE": "9",
    }
    loaded = load_settings(config, overrides={"log_level": "ERROR"}, environ=env)
    s = loaded.settings
    assert s.postgres.port == 6001
    assert s.redis.port == 6102
    assert s.postgres.pool_max_size == 9
    assert s.log_level == "ERROR"
    assert s.postgres.database == "aitrading"
    assert loaded.source_of("postgres.port") == f"file:{config}"
    assert loaded.source_of("redis.port").startswith("secret-file:")
    assert loaded.source_of("postgres.pool_max_size") == "env:AITRADING_POSTGRES_POOL_MAX_SIZE"
    assert loaded.source_of("log_level") == "override"
    assert loaded.source_of("postgres.database") == "default"


def test_config_file_from_environment_variable(tmp_path: Path) -> None:
    config = write(tmp_path / "c.yaml", "hub:\n  health_interval_s: 7\n")
    loaded = load_settings(environ={"AITRADING_CONFIG_FILE": str(config)})
    assert loaded.settings.hub.health_interval_s == 7


def test_every_problem_is_reported_at_once_with_path_and_source(tmp_path: Path) -> None:
    config = write(tmp_path / "c.yaml", "postgres:\n  port: 70000\n  bogus: 1\n")
    env = {
        "AITRADING_REDIS_MAX_CONNECTIONS": "0",
        "AITRADING_LOG_LEVEL": "LOUD",
        "AITRADING_POSTGRES_PROT": "5",
    }
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ=env)
    problems = {p.path: p for p in caught.value.problems}
    assert set(problems) == {
        "postgres.port",
        "postgres.bogus",
        "redis.max_connections",
        "log_level",
        "AITRADING_POSTGRES_PROT",
    }
    assert problems["postgres.port"].source == f"file:{config}"
    assert "65535" in problems["postgres.port"].message
    assert problems["redis.max_connections"].source == "env:AITRADING_REDIS_MAX_CONNECTIONS"
    assert "did you mean AITRADING_POSTGRES_PORT" in problems["AITRADING_POSTGRES_PROT"].message


def test_the_process_variables_of_the_prefix_are_not_unknown_settings() -> None:
    """AITRADING_DEBUG (tracebacks), AITRADING_TOKEN (`ticks watch`) and mt5-sim's
    AITRADING_MT5_TOKEN / AITRADING_MT5_API_KEY are read by the CLI; a command run with them
    must not die of "unknown setting" (it did, twice), while a typo still does."""
    env = {
        "AITRADING_DEBUG": "1",
        "AITRADING_TOKEN": "t",
        "AITRADING_MT5_TOKEN": "t",
        "AITRADING_MT5_API_KEY": "k",
        "AITRADING_ENVIRONMENT": "development",
    }
    assert load_settings(environ=env).settings.environment == "development"
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={**env, "AITRADING_TOKENS": "t"})
    assert [p.path for p in caught.value.problems] == ["AITRADING_TOKENS"]


def test_cross_field_rule_names_both_fields() -> None:
    env = {"AITRADING_POSTGRES_POOL_MIN_SIZE": "20", "AITRADING_POSTGRES_POOL_MAX_SIZE": "5"}
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=env)
    (problem,) = caught.value.problems
    assert problem.path == "postgres"
    assert "pool_min_size (20) exceeds pool_max_size (5)" in problem.message
    assert "AITRADING_POSTGRES_POOL_MIN_SIZE" in problem.source


def test_production_refuses_embedded_stores() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"AITRADING_ENVIRONMENT": "production"})
    message = str(caught.value)
    for variable in ("AITRADING_POSTGRES_DSN", "AITRADING_REDIS_URL", "AITRADING_CLICKHOUSE_DSN"):
        assert variable in message


def test_invalid_yaml_names_line_and_file(tmp_path: Path) -> None:
    config = write(tmp_path / "bad.yaml", "postgres:\n  port: [1,\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    (problem,) = caught.value.problems
    assert problem.source == str(config)
    assert "line" in problem.message


def test_yaml_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_settings(write(tmp_path / "list.yaml", "- 1\n- 2\n"), environ={})


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "absent.yaml", environ={})


def test_secrets_are_masked_everywhere() -> None:
    dsn = "postgresql://u:topsecretpw@db.internal:5432/x?sslmode=require"
    loaded = load_settings(environ={"AITRADING_POSTGRES_DSN": dsn})
    assert loaded.settings.postgres.dsn is not None
    assert loaded.settings.postgres.dsn.get_secret_value() == dsn
    shown = {path: value for path, value, _ in effective_items(loaded)}
    assert shown["postgres.dsn"] == "********"
    assert "topsecretpw" not in repr(loaded.settings)
    assert "topsecretpw" not in str(shown)


def test_env_name_matches_the_variable_that_sets_a_path() -> None:
    assert env_name("postgres.dsn") == "AITRADING_POSTGRES_DSN"
    loaded = load_settings(environ={env_name("arango.pool_size"): "3"})
    assert loaded.settings.arango.pool_size == 3


runner = CliRunner()


def test_cli_config_show_masks_and_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITRADING_REDIS_URL", "redis://:hunter2pw@127.0.0.1:1/0")
    monkeypatch.setenv("AITRADING_REDIS_PORT", "6500")
    result = runner.invoke(app, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    assert "hunter2pw" not in result.output
    assert '"source": "env:AITRADING_REDIS_PORT"' in result.output
    assert '"value": "********"' in result.output


def test_cli_exits_2_listing_every_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tmp_path / "c.yaml", "redis:\n  port: -1\n")
    monkeypatch.setenv("AITRADING_HUB_HEALTH_TIMEOUT_S", "never")
    result = runner.invoke(app, ["config", "show", "--config", str(config)])
    assert result.exit_code == 2
    assert "redis.port" in result.output
    assert "hub.health_timeout_s" in result.output
    assert "2 problem(s)" in result.output
