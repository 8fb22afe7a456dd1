"""Layered, validated settings for every aitrading process.

Precedence, lowest to highest: defaults < YAML file < mounted secret files < environment
(`AITRADING_<SECTION>_<FIELD>`, e.g. `AITRADING_POSTGRES_DSN`) < explicit overrides.
Every value remembers which layer gave it, so `aitrading config show` can answer "why is
this set?". Invalid input is reported all at once — each problem with its dotted path, its
reason and its source — because fixing a config one error per restart makes outages longer.
Secrets are `SecretStr` and are masked wherever settings are shown.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource
from pydantic_settings import SettingsConfigDict as _SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from aitrading.core.infrastructure.environment import rules_for

ENV_PREFIX = "AITRADING_"
NESTED_DELIMITER = "_"
CONFIG_FILE_ENV = "AITRADING_CONFIG_FILE"
SECRETS_DIR_ENV = "AITRADING_SECRETS_DIR"
DEBUG_ENV = "AITRADING_DEBUG"  # the CLI keeps tracebacks
TOKEN_ENV = "AITRADING_TOKEN"  # noqa: S105 (a variable's name): an access token for CLI clients
# Variables of the prefix that are read by the process itself, not settings: an unknown
# AITRADING_ name is still an error (a typo must not pass silently), these are not unknown.
# `aitrading mt5-sim`'s credentials: an access token, or an ingest API key it mints them with
MT5_TOKEN_ENV = "AITRADING_MT5_TOKEN"  # noqa: S105 (a variable's name)
MT5_API_KEY_ENV = "AITRADING_MT5_API_KEY"
PROCESS_VARIABLES = frozenset(
    {CONFIG_FILE_ENV, SECRETS_DIR_ENV, DEBUG_ENV, TOKEN_ENV, MT5_TOKEN_ENV, MT5_API_KEY_ENV}
)

Port = int


class _Section(BaseModel):
    """Base of every settings section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class PostgresSettings(_Section):
    """PostgreSQL: users, subscriptions, orders, audit log, error groups."""

    dsn: SecretStr | None = Field(
        default=None,
        description="postgresql:// DSN; unset in development means the embedded server.",
    )
    migration_dsn: SecretStr | None = Field(
        default=None,
        description="DSN of the role that owns the schema (`db migrate`); unset: the `dsn` role."
        " Services then connect as a member of aitrading_runtime (`db runtime-login`).",
    )
    previous_migration_dsn: SecretStr | None = Field(
        default=None,
        description="the owner's DSN before a password rotation: `db adopt-password` logs in"
        " with it once to set the password of `migration_dsn`.",
    )
    port: Port = Field(default=54329, ge=1, le=65535, description="embedded server TCP port")
    database: str = Field(default="aitrading", min_length=1)
    user: str = Field(default="aitrading", min_length=1)
    pool_min_size: int = Field(default=1, ge=0, le=1000)
    pool_max_size: int = Field(default=10, ge=1, le=1000)
    connect_timeout_s: float = Field(default=5.0, gt=0, le=120)

    @model_validator(mode="after")
    def _pool_bounds(self) -> PostgresSettings:
        if self.pool_min_size > self.pool_max_size:
            raise ValueError(
                f"pool_min_size ({self.pool_min_size}) exceeds pool_max_size ({self.pool_max_size})"
            )
        return self


class RedisSettings(_Section):
    """DragonflyDB in production (Redis protocol): hot logs, rate limits, fan-out, revocations."""

    url: SecretStr | None = Field(
        default=None,
        description="redis:// or rediss:// URL; unset in development means embedded redis-server.",
    )
    port: Port = Field(default=56379, ge=1, le=65535, description="embedded server TCP port")
    max_connections: int = Field(default=32, ge=1, le=10_000)
    socket_timeout_s: float = Field(default=5.0, gt=0, le=120)


class ClickHouseSettings(_Section):
    """ClickHouse: ticks and the warm log tier."""

    dsn: SecretStr | None = Field(
        default=None,
        description="http(s):// DSN in production or chdb:///path; unset means chdb in data_dir.",
    )
    database: str = Field(default="default", min_length=1)
    connect_timeout_s: float = Field(default=10.0, gt=0, le=120)
    tick_ttl_days: int = Field(default=365, ge=1, le=36500, description="ticks expire after")


class WeaviateSettings(_Section):
    """Weaviate: ErrorDNA similarity search. No embedded default."""

    url: str | None = Field(default=None, description="http(s)://host:port of the REST API")
    grpc_port: Port = Field(default=50051, ge=1, le=65535)
    api_key: SecretStr | None = None


class ArangoSettings(_Section):
    """ArangoDB: the service/request chain graph. No embedded default."""

    url: str | None = Field(default=None, description="http(s)://host:port of the server")
    database: str = Field(default="aitrading", min_length=1)
    username: str = "root"
    password: SecretStr | None = None
    pool_size: int = Field(default=10, ge=1, le=1000)


class HubSettings(_Section):
    """Central hub: how often and how patiently component health is checked."""

    health_interval_s: float = Field(default=2.0, gt=0, le=3600)
    health_timeout_s: float = Field(default=2.0, gt=0, le=600)
    start_timeout_s: float = Field(default=60.0, gt=0, le=3600)


class TelemetrySettings(_Section):
    """OpenTelemetry traces: every service makes spans (W3C trace context between services);
    they leave the process only when an OTLP endpoint is set."""

    otlp_endpoint: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/]+(/\S*)?$",
        description="OTLP/HTTP traces endpoint, e.g. https://collector:4318/v1/traces; unset:"
        " spans are not exported. Plain http:// only to loopback.",
    )
    sample_ratio: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="share of new traces sampled (a caller's decision is followed)",
    )
    otlp_ca_file: Path | None = Field(
        default=None, description="CA that signed the collector's certificate; unset: the system's"
    )
    export_timeout_s: float = Field(default=10.0, gt=0, le=300)


class SecuritySettings(_Section):
    """Tokens, audit checkpoints, secrets at rest and TLS material. Key files stay outside git."""

    jwt_key_file: Path | None = Field(
        default=None, description="Ed25519 PEM signing tokens; unset in development: generated"
    )
    jwt_issuer: str = Field(default="aitrading", min_length=1)
    jwt_audience: str = Field(default="aitrading-api", min_length=1)
    access_token_ttl_s: int = Field(default=600, ge=30, le=3600)
    refresh_token_ttl_s: int = Field(default=14 * 24 * 3600, ge=300, le=90 * 24 * 3600)
    login_attempts_per_minute: int = Field(
        default=10, ge=1, le=100_000, description="per IP, on /auth/*; fails closed"
    )
    requests_per_ip_per_minute: int = Field(
        default=600, ge=1, le=10_000_000, description="every request, before authentication"
    )
    audit_signing_key_file: Path | None = Field(
        default=None, description="Ed25519 PEM that signs audit checkpoints (not in the database)"
    )
    audit_checkpoint_interval_s: float = Field(default=300.0, gt=0, le=86400)
    audit_verify_interval_s: float = Field(
        default=3600.0,
        gt=0,
        le=7 * 86400,
        description="how often the gateway walks the whole audit chain (as `audit verify`"
        " does) and exports the outcome (`aitrading_audit_chain_intact`)",
    )
    audit_checkpoint_file: Path | None = Field(
        default=None,
        description="a second copy of every signed checkpoint, outside the database (its own"
        " volume); `audit verify` compares both",
    )
    master_key: SecretStr | None = Field(
        default=None, description="base64 of 32 bytes: wraps the data keys of encrypted secrets"
    )
    master_key_file: Path | None = Field(default=None, description="mounted master key file")
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None


class ServicesSettings(_Section):
    """Where the services listen and how they find each other."""

    bind_host: str = Field(default="127.0.0.1", description="0.0.0.0 inside a pod")
    api_gateway_port: Port = Field(default=8000, ge=1, le=65535)
    data_bridge_port: Port = Field(default=8001, ge=1, le=65535)
    trading_engine_port: Port = Field(default=8007, ge=1, le=65535)
    database_service_port: Port = Field(default=8008, ge=1, le=65535)
    database_service_url: str | None = Field(
        default=None, description="unset: http://127.0.0.1:<database_service_port>"
    )
    data_bridge_url: str | None = Field(
        default=None, description="unset: http://127.0.0.1:<data_bridge_port>"
    )
    trading_engine_url: str | None = Field(
        default=None, description="unset: http://127.0.0.1:<trading_engine_port>"
    )
    migrate_on_start: bool | None = Field(
        default=None, description="database-service applies migrations at start; unset: dev only"
    )
    request_timeout_s: float = Field(default=10.0, gt=0, le=300)
    require_service_identity: bool | None = Field(
        default=None,
        description="database-service refuses writes without a service token; unset: in"
        " production only (development listens on loopback)",
    )
    chain_flush_interval_s: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="how often each gateway writes its call-chain outcomes to database-service",
    )


class DataBridgeSettings(_Section):
    """The connector side of data-bridge."""

    max_clock_skew_ms: int = Field(
        default=5 * 60 * 1000,
        ge=1000,
        le=7 * 86400 * 1000,
        description="ticks further than this from the bridge's clock are refused",
    )
    max_frame_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="a larger WebSocket frame is refused (`too_large`)",
    )
    max_ticks_per_frame: int = Field(default=10_000, ge=1, le=100_000)
    forward_linger_s: float = Field(
        default=1.0,
        ge=0,
        le=10,
        description="how long journaled ticks gather before one insert reaches ClickHouse"
        " (acks never wait for it; about one insert a second, as ClickHouse asks)",
    )
    max_json_depth: int = Field(
        default=16,
        ge=2,
        le=256,
        description="deeper JSON is refused without being decoded past this depth",
    )


class SymbolSpec(_Section):
    """A tradable symbol's lot rules (MT5 `symbol_info`: volume_min/max/step, contract size)."""

    volume_min: float = Field(default=0.01, gt=0, le=1e6)
    volume_max: float = Field(default=100.0, gt=0, le=1e9)
    volume_step: float = Field(default=0.01, gt=0, le=1e6)
    contract_size: float = Field(default=100_000.0, gt=0, le=1e9)


class TradingEngineSettings(_Section):
    """Orders and pre-trade risk: each risk rule's limit is one setting (docs/orders.md)."""

    when_no_connector: Literal["wait", "refuse"] = Field(
        default="wait",
        description="wait: the order waits up to instruction_ttl_s for the account's connector,"
        " then EXPIRED; refuse: DENIED at once when none is online",
    )
    instruction_ttl_s: float = Field(
        default=30.0, ge=1, le=3600, description="a signed instruction is void after this"
    )
    expiry_grace_s: float = Field(
        default=5.0, ge=0, le=600, description="clock margin before an unanswered order expires"
    )
    sweep_interval_s: float = Field(default=1.0, gt=0, le=60)
    max_order_notional: float = Field(
        default=5_000_000.0, gt=0, description="volume x contract size x price, per order"
    )
    max_position_volume: float = Field(
        default=50.0, gt=0, description="lots per symbol and account, open orders included"
    )
    max_account_volume: float = Field(
        default=200.0, gt=0, description="lots over all symbols of an account"
    )
    max_open_orders: int = Field(default=50, ge=1, le=100_000, description="per account")
    orders_per_minute: int = Field(default=120, ge=1, le=1_000_000, description="per account")
    price_band_pct: float = Field(
        default=5.0, gt=0, le=100, description="limit/stop price distance from the latest mid"
    )
    max_tick_age_s: float = Field(
        default=300.0, gt=0, description="an older latest tick is no price to check against"
    )
    duplicate_window_s: float = Field(
        default=2.0, ge=0, le=3600, description="same side/symbol/volume/price again: denied"
    )
    check_free_margin: bool = Field(
        default=True, description="deny orders whose margin exceeds the account's free margin"
    )
    symbols: dict[str, SymbolSpec] = Field(
        default_factory=dict, description="per-symbol lot rules; others use default_symbol"
    )
    default_symbol: SymbolSpec = SymbolSpec()

    def spec(self, symbol: str) -> SymbolSpec:
        return self.symbols.get(symbol, self.default_symbol)


class Settings(BaseSettings):
    """Every setting of an aitrading process. Build it with `load_settings`."""

    model_config = _SettingsConfigDict(extra="forbid", validate_default=True)

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Field(
        default=Path(".aitrading"),
        description="where embedded stores keep their data and state",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    postgres: PostgresSettings = PostgresSettings()
    redis: RedisSettings = RedisSettings()
    clickhouse: ClickHouseSettings = ClickHouseSettings()
    weaviate: WeaviateSettings = WeaviateSettings()
    arango: ArangoSettings = ArangoSettings()
    hub: HubSettings = HubSettings()
    security: SecuritySettings = SecuritySettings()
    services: ServicesSettings = ServicesSettings()
    data_bridge: DataBridgeSettings = DataBridgeSettings()
    trading_engine: TradingEngineSettings = TradingEngineSettings()
    telemetry: TelemetrySettings = TelemetrySettings()

    @model_validator(mode="after")
    def _production_needs_real_servers(self) -> Settings:
        if not rules_for(self.environment).needs_real_servers:
            return self
        missing = [
            name
            for name, value in (
                ("postgres.dsn", self.postgres.dsn),
                ("redis.url", self.redis.url),
                ("clickhouse.dsn", self.clickhouse.dsn),
            )
            if value is None
        ]
        if missing:
            raise ValueError(
                "production has no embedded stores; set " + ", ".join(env_name(m) for m in missing)
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Layering happens in `load_settings`, which records where every value came from.
        return (init_settings,)


@dataclass(frozen=True)
class ConfigProblem:
    """One invalid value: where it is, why it is wrong and which layer supplied it."""

    path: str
    message: str
    source: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message} (from {self.source})"


class ConfigError(Exception):
    """Raised with every problem of a configuration at once."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration ({len(problems)} problem(s)):\n{lines}")


@dataclass
class LoadedSettings:
    """Validated settings plus the layer each leaf value came from."""

    settings: Settings
    sources: dict[str, str] = field(default_factory=dict)

    def source_of(self, path: str) -> str:
        return self.sources.get(path, "default")


def env_name(path: str) -> str:
    """The environment variable that sets a dotted settings path."""
    return ENV_PREFIX + path.replace(".", NESTED_DELIMITER).upper()


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' env parsing, fed from a given mapping instead of os.environ."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._given = {k.lower(): v for k, v in environ.items()}
        super().__init__(
            Settings,
            case_sensitive=False,
            env_prefix=ENV_PREFIX,
            env_nested_delimiter=NESTED_DELIMITER,
            env_nested_max_split=1,
        )

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return self._given


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [ConfigProblem("<file>", f"cannot read: {exc.strerror}", str(path))]
        ) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError([ConfigProblem("<file>", f"{reason}{where}", str(path))]) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            [
                ConfigProblem(
                    "<file>", f"top level must be a mapping, got {type(data).__name__}", str(path)
                )
            ]
        )
    return data


def _read_secret_files(directory: Path) -> dict[str, str]:
    """Mounted secrets (a Kubernetes Secret volume): one file per variable.

    A file named `POSTGRES_DSN` or `AITRADING_POSTGRES_DSN` sets `postgres.dsn`; its content,
    stripped of the trailing newline, is the value.
    """
    found: dict[str, str] = {}
    if not directory.is_dir():
        return found
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith(".") or not entry.is_file():
            continue  # Kubernetes' ..data links and hidden files
        name = entry.name.upper()
        key = name if name.startswith(ENV_PREFIX) else ENV_PREFIX + name
        found[key] = entry.read_text(encoding="utf-8").rstrip("\r\n")
    return found


def _flatten(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, path + ".")
        else:
            yield path, value


def _deep_merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _env_layer(
    environ: Mapping[str, str], label: str, problems: list[ConfigProblem]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Parse the `AITRADING_` variables; unknown names are added to `problems`."""
    known = _known_env_names()
    relevant: dict[str, str] = {}
    for key, value in environ.items():
        name = key.upper()
        if not name.startswith(ENV_PREFIX) or name in PROCESS_VARIABLES:
            continue
        if name in known:
            relevant[key] = value
        else:
            problems.append(_unknown_variable(name, label))
    try:
        values = _MappingEnvSource(relevant)()
    except SettingsError as exc:
        raise ConfigError([ConfigProblem("<environment>", str(exc), label)]) from exc
    origins = {path: f"{label}:{env_name(path)}" for path, _ in _flatten(values)}
    return values, origins


def _known_env_names() -> set[str]:
    names = set()
    for name, info in Settings.model_fields.items():
        names.add(env_name(name))
        section = info.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            names.update(env_name(f"{name}.{leaf}") for leaf in section.model_fields)
    return names


def _unknown_variable(name: str, label: str) -> ConfigProblem:
    close = difflib.get_close_matches(name, sorted(_known_env_names()), n=1, cutoff=0.85)
    hint = f"; did you mean {close[0]}?" if close else ""
    return ConfigProblem(name, f"unknown setting{hint}", label)


def load_settings(
    config_file: Path | str | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> LoadedSettings:
    """Build validated settings from every layer, or raise `ConfigError` listing all problems.

    `config_file` defaults to `$AITRADING_CONFIG_FILE`; mounted secrets are read from
    `$AITRADING_SECRETS_DIR` when set. `environ` defaults to `os.environ` (tests pass their own).
    """
    env = dict(os.environ if environ is None else environ)
    problems: list[ConfigProblem] = []
    layers: list[tuple[dict[str, Any], dict[str, str]]] = []

    file_path = config_file if config_file is not None else env.get(CONFIG_FILE_ENV)
    if file_path:
        path = Path(file_path)
        data = _read_yaml(path)
        layers.append((data, {p: f"file:{path}" for p, _ in _flatten(data)}))

    secrets_dir = env.get(SECRETS_DIR_ENV)
    if secrets_dir:
        secret_env = _read_secret_files(Path(secrets_dir))
        layers.append(_env_layer(secret_env, f"secret-file:{secrets_dir}", problems))

    layers.append(_env_layer(env, "env", problems))

    if overrides:
        layers.append((dict(overrides), {p: "override" for p, _ in _flatten(overrides)}))

    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for values, layer_origins in layers:
        merged = _deep_merge(merged, values)
        origins.update(layer_origins)

    try:
        settings = Settings(**merged)
    except ValidationError as exc:
        raise ConfigError(problems + _problems_from(exc, origins)) from None
    if problems:
        raise ConfigError(problems)
    return LoadedSettings(settings=settings, sources=origins)


def _problems_from(exc: ValidationError, origins: Mapping[str, str]) -> list[ConfigProblem]:
    problems = []
    for err in exc.errors(include_input=False, include_url=False):
        path = ".".join(str(part) for part in err["loc"]) or "<root>"
        source = origins.get(path)
        if source is None:  # a model-level rule: name the section's sources
            inside = sorted({v for k, v in origins.items() if k.startswith(path + ".")})
            source = ", ".join(inside) if inside else "default"
        message = err["msg"].removeprefix("Value error, ")
        problems.append(ConfigProblem(path=path, message=message, source=source))
    return problems


def effective_items(loaded: LoadedSettings) -> list[tuple[str, str, str]]:
    """(path, shown value, source) for every leaf setting; secrets are masked."""
    rows: list[tuple[str, str, str]] = []

    def walk(model: BaseModel, prefix: str) -> None:
        for name in type(model).model_fields:
            value = getattr(model, name)
            path = f"{prefix}{name}"
            if isinstance(value, BaseModel):
                walk(value, path + ".")
                continue
            rows.append((path, _show(value), loaded.source_of(path)))

    walk(loaded.settings, "")
    return rows


def _show(value: object) -> str:
    if isinstance(value, SecretStr):
        return "********" if value.get_secret_value() else "(empty)"
    if value is None:
        return "(unset)"
    return str(value)
