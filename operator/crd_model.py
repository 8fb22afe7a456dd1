"""The `TradingStack` custom resource: one pydantic model, the single source of truth.

The CRD's structural OpenAPI schema (defaults, enums, bounds, required fields), its CEL rules
and its status subresource are generated from these models by `crd_manifest()`; the YAML
under `crds/` is that output, and a test fails when they drift. The operator validates specs
with the same models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

GROUP = "aitrading.io"
VERSION = "v1alpha1"
KIND = "TradingStack"
PLURAL = "tradingstacks"

SERVICES = ("api-gateway", "data-bridge", "trading-engine", "database-service")
DATABASES = ("postgres", "clickhouse", "dragonfly", "weaviate", "arango")
_QUANTITY = r"^([0-9]+(\.[0-9]+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Resources(_Spec):
    cpu: str = Field(default="250m", pattern=_QUANTITY, description="CPU request and limit")
    memory: str = Field(default="512Mi", pattern=_QUANTITY, description="memory request/limit")


class ServiceSpec(_Spec):
    replicas: int = Field(default=1, ge=0, le=50)
    resources: Resources = Resources()
    env: dict[str, str] = Field(default_factory=dict, description="extra AITRADING_* variables")
    storage_size: str = Field(
        default="2Gi",
        pattern=_QUANTITY,
        alias="storageSize",
        description="volume claim per replica, for services whose data outlives a pod"
        " (data-bridge's spool; database-service with ClickHouse embedded)",
    )


class Services(_Spec):
    api_gateway: ServiceSpec = Field(default_factory=ServiceSpec, alias="apiGateway")
    data_bridge: ServiceSpec = Field(default_factory=ServiceSpec, alias="dataBridge")
    trading_engine: ServiceSpec = Field(default_factory=ServiceSpec, alias="tradingEngine")
    database_service: ServiceSpec = Field(default_factory=ServiceSpec, alias="databaseService")


class DatabaseSpec(_Spec):
    enabled: bool = True
    image: str | None = Field(default=None, description="image with tag; default per database")
    storage_size: str = Field(default="10Gi", pattern=_QUANTITY, alias="storageSize")
    storage_class: str | None = Field(default=None, alias="storageClass")
    external_secret: str | None = Field(
        default=None,
        alias="externalSecret",
        min_length=1,
        max_length=253,
        description="Secret with the connection URL (key `url`) instead of a StatefulSet",
    )


class ClickHouseSpec(DatabaseSpec):
    """ClickHouse in one of three modes: a StatefulSet of the official server image (the
    default), an external server (`externalSecret`), or `embedded`: the real engine through
    chdb inside database-service, which then runs as one replica on its own volume claim
    (small installs, and clusters where no ClickHouse image can be had)."""

    embedded: bool = Field(
        default=False,
        description="chdb inside database-service (one replica, data on its volume claim)",
    )

    @model_validator(mode="after")
    def _one_mode(self) -> ClickHouseSpec:
        if self.embedded and self.external_secret is not None:
            raise ValueError("embedded and externalSecret exclude each other")
        return self


class Databases(_Spec):
    postgres: DatabaseSpec = Field(default_factory=DatabaseSpec)
    clickhouse: ClickHouseSpec = Field(default_factory=ClickHouseSpec)
    dragonfly: DatabaseSpec = Field(default_factory=DatabaseSpec)
    weaviate: DatabaseSpec = Field(default_factory=lambda: DatabaseSpec(enabled=False))
    arango: DatabaseSpec = Field(default_factory=lambda: DatabaseSpec(enabled=False))


class Retention(_Spec):
    debug: int = Field(default=7, ge=1, le=3650)
    info: int = Field(default=30, ge=1, le=3650)
    warning: int = Field(default=90, ge=1, le=3650)
    error: int = Field(default=180, ge=1, le=3650)
    critical: int = Field(default=365, ge=1, le=3650)


class Logging(_Spec):
    retention_days: Retention = Field(default_factory=Retention, alias="retentionDays")
    cold_storage_size: str = Field(
        default="10Gi",
        pattern=_QUANTITY,
        alias="coldStorageSize",
        description="volume claim of the cold log tier (compressed files)",
    )
    enforce_schedule: str = Field(
        default="17 * * * *",
        alias="enforceSchedule",
        pattern=r"^(\S+\s+){4}\S+$",
        description="cron, 5 fields",
    )


def _secret_ref(alias: str, description: str) -> Any:
    """An optional Secret name in the spec: the user's own, or unset for the operator's."""
    return Field(default=None, alias=alias, min_length=1, max_length=253, description=description)


class Security(_Spec):
    jwt_key_secret: str | None = _secret_ref(
        "jwtKeySecret",
        "Secret with key.pem (Ed25519) signing user and service tokens; unset: the"
        " operator generates <stack>-jwt once",
    )
    audit_key_secret: str | None = _secret_ref(
        "auditKeySecret",
        "Secret with key.pem (Ed25519) signing audit checkpoints; unset: the"
        " operator generates <stack>-audit-key once",
    )
    tls_secret: str | None = _secret_ref(
        "tlsSecret",
        "Secret with tls.crt, tls.key and ca.crt whose certificate names every"
        " service (<stack>-<service>.<namespace>.svc); unset: the operator creates a CA and"
        " one certificate per service",
    )
    requests_per_ip_per_minute: int = Field(
        default=600, ge=1, le=10_000_000, alias="requestsPerIpPerMinute"
    )


class Monitoring(_Spec):
    """The services handed to a Prometheus Operator: a ServiceMonitor each, when its CRD
    exists in the cluster (nothing is rendered, and nothing fails, when it does not)."""

    service_monitors: bool = Field(
        default=True,
        alias="serviceMonitors",
        description="render a ServiceMonitor per service when monitoring.coreos.com is installed",
    )
    interval: str = Field(
        default="30s", pattern=r"^[0-9]+(ms|s|m|h)$", description="scrape interval"
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="extra labels on each ServiceMonitor, for the Prometheus's"
        " serviceMonitorSelector (kube-prometheus-stack selects release: <its release>)",
    )
    scraper_namespace: str | None = Field(
        default=None,
        alias="scraperNamespace",
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="namespace whose pods may reach the services' port to scrape /metrics"
        " (the stack's NetworkPolicies deny it otherwise); unset: none",
    )


class TradingStackSpec(_Spec):
    image: str = Field(default="ghcr.io/aitrading/aitrading", min_length=1)
    image_registry: str | None = Field(
        default=None,
        alias="imageRegistry",
        min_length=1,
        max_length=253,
        pattern=r"^[a-zA-Z0-9.-]+(:[0-9]+)?(/[a-zA-Z0-9._/-]+)?$",
        description="for air-gapped clusters: every image (services, databases) is pulled from"
        " this registry instead, keeping its path (postgres:17.2 becomes"
        " <registry>/library/postgres:17.2)",
    )
    version: str = Field(min_length=1, max_length=128, description="image tag")
    services: Services = Field(default_factory=Services)
    databases: Databases = Field(default_factory=Databases)
    logging: Logging = Field(default_factory=Logging)
    security: Security = Field(default_factory=Security)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    paused: bool = False
    deletion_policy: Literal["Retain", "Delete"] = Field(default="Retain", alias="deletionPolicy")


CEL_RULES: list[dict[str, str]] = [
    {
        "rule": "!has(self.databases) || !has(self.databases.postgres) || "
        "self.databases.postgres.enabled || has(self.databases.postgres.externalSecret)",
        "message": "PostgreSQL is required: enable it or give databases.postgres.externalSecret",
    },
    {
        "rule": "!has(self.databases) || !has(self.databases.clickhouse) || "
        "self.databases.clickhouse.enabled || has(self.databases.clickhouse.externalSecret)",
        "message": "ClickHouse is required: enable it or give databases.clickhouse.externalSecret",
    },
    {
        "rule": "!has(self.databases) || !has(self.databases.clickhouse) || "
        "!has(self.databases.clickhouse.embedded) || !self.databases.clickhouse.embedded || "
        "!has(self.databases.clickhouse.externalSecret)",
        "message": "databases.clickhouse: embedded and externalSecret exclude each other",
    },
    {
        "rule": "!has(self.logging) || !has(self.logging.retentionDays) || "
        "self.logging.retentionDays.critical >= self.logging.retentionDays.error",
        "message": "logging.retentionDays.critical must be at least retentionDays.error",
    },
]


def _structural(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """pydantic's JSON schema → a Kubernetes structural schema (no $ref, anyOf, titles)."""
    if "$ref" in schema:
        return _structural(defs[schema["$ref"].split("/")[-1]], defs)
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        merged = _structural(options[0], defs)
        merged["nullable"] = True
        for key in ("description", "default"):
            if key in schema and schema[key] is not None:
                merged[key] = schema[key]
        return merged
    out: dict[str, Any] = {}
    for key in (
        "type",
        "description",
        "pattern",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "enum",
        "default",
    ):
        if key in schema:
            out[key] = schema[key]
    if "exclusiveMinimum" in schema:
        out["minimum"], out["exclusiveMinimum"] = schema["exclusiveMinimum"], True
    if "const" in schema:
        out["enum"] = [schema["const"]]
    if schema.get("type") == "object":
        if "properties" in schema:
            out["properties"] = {k: _structural(v, defs) for k, v in schema["properties"].items()}
            if schema.get("required"):
                out["required"] = schema["required"]
        elif "additionalProperties" in schema:
            out["additionalProperties"] = _structural(schema["additionalProperties"], defs)
    if schema.get("type") == "array" and "items" in schema:
        out["items"] = _structural(schema["items"], defs)
    if out.get("default") is None:
        out.pop("default", None)
    return out


def spec_schema() -> dict[str, Any]:
    schema = TradingStackSpec.model_json_schema(by_alias=True)
    defs = schema.pop("$defs", {})
    structural = _structural(schema, defs)
    defaults = TradingStackSpec(version="-").model_dump(by_alias=True, exclude_none=True)
    _fill_object_defaults(structural, defaults)
    structural["x-kubernetes-validations"] = CEL_RULES
    return structural


def _fill_object_defaults(schema: dict[str, Any], values: dict[str, Any]) -> None:
    """Nested objects default to the model's own default values, so that what the API server
    stores for an omitted section is exactly what pydantic would assume (e.g. Weaviate off)."""
    for name, prop in schema.get("properties", {}).items():
        if (
            prop.get("type") == "object"
            and "properties" in prop
            and isinstance(values.get(name), dict)
        ):
            prop["default"] = values[name]
            _fill_object_defaults(prop, values[name])


STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "observedGeneration": {"type": "integer"},
        "phase": {
            "type": "string",
            "enum": ["Pending", "Progressing", "Ready", "Degraded", "Paused", "Deleting"],
        },
        "version": {"type": "string"},
        "conditions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "status"],
                "properties": {
                    "type": {"type": "string"},
                    "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                    "reason": {"type": "string"},
                    "message": {"type": "string"},
                    "observedGeneration": {"type": "integer"},
                    "lastTransitionTime": {"type": "string", "format": "date-time"},
                },
            },
        },
        "components": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {"ready": {"type": "boolean"}, "message": {"type": "string"}},
            },
        },
    },
    # kopf keeps its own progress here; undeclared fields would be pruned (and handlers re-run)
    "x-kubernetes-preserve-unknown-fields": True,
}


def crd_manifest() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "plural": PLURAL,
                "singular": "tradingstack",
                "kind": KIND,
                "shortNames": ["ts"],
                "categories": ["aitrading"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {
                            "name": "Ready",
                            "type": "string",
                            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
                        },
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {"name": "Version", "type": "string", "jsonPath": ".spec.version"},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema(),
                                "status": STATUS_SCHEMA,
                            },
                        }
                    },
                }
            ],
        },
    }
