"""Pure functions: a TradingStack spec → the Kubernetes objects it stands for.

No API calls here — the reconcile loop applies what these return (server-side apply, one
field manager, owner references). `phases()` orders the rollout: databases, then
database-service, then the other services, then the retention CronJob.
"""

from __future__ import annotations

from typing import Any

from aitrading.operator.crd_model import DatabaseSpec, ServiceSpec, TradingStackSpec

Manifest = dict[str, Any]

DATABASE_IMAGES = {
    "postgres": "postgres:17.2",
    "clickhouse": "clickhouse/clickhouse-server:24.8",
    "dragonfly": "docker.dragonflydb.io/dragonflydb/dragonfly:v1.25.2",
    "weaviate": "semitechnologies/weaviate:1.35.2",
    "arango": "arangodb:3.12.3",
}
DATABASE_PORTS = {
    "postgres": 5432,
    "clickhouse": 8443,
    "dragonfly": 6379,
    "weaviate": 8080,
    "arango": 8529,
}
DATABASE_DATA = {
    "postgres": "/var/lib/postgresql/data",
    "clickhouse": "/var/lib/clickhouse",
    "dragonfly": "/data",
    "weaviate": "/var/lib/weaviate",
    "arango": "/var/lib/arangodb3",
}
SERVICE_PORTS = {
    "api-gateway": 8000,
    "data-bridge": 8001,
    "trading-engine": 8007,
    "database-service": 8008,
}
# which databases each service talks to (drives the NetworkPolicies)
SERVICE_DATABASES = {
    "database-service": ("postgres", "clickhouse", "dragonfly", "weaviate", "arango"),
    "api-gateway": ("postgres", "dragonfly"),
    "data-bridge": ("postgres", "dragonfly"),
    "trading-engine": ("postgres", "dragonfly"),
}
URL_ENV = {
    "postgres": "AITRADING_POSTGRES_DSN",
    "clickhouse": "AITRADING_CLICKHOUSE_DSN",
    "dragonfly": "AITRADING_REDIS_URL",
    "weaviate": "AITRADING_WEAVIATE_URL",
    "arango": "AITRADING_ARANGO_URL",
}


def labels(stack: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "aitrading",
        "app.kubernetes.io/instance": stack,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": "aitrading-operator",
    }


def _meta(stack: str, namespace: str, component: str, name: str | None = None) -> dict[str, Any]:
    return {
        "name": name or f"{stack}-{component}",
        "namespace": namespace,
        "labels": labels(stack, component),
    }


def _service_spec(spec: TradingStackSpec, service: str) -> ServiceSpec:
    return {
        "api-gateway": spec.services.api_gateway,
        "data-bridge": spec.services.data_bridge,
        "trading-engine": spec.services.trading_engine,
        "database-service": spec.services.database_service,
    }[service]


def _databases(spec: TradingStackSpec) -> dict[str, DatabaseSpec]:
    d = spec.databases
    return {
        "postgres": d.postgres,
        "clickhouse": d.clickhouse,
        "dragonfly": d.dragonfly,
        "weaviate": d.weaviate,
        "arango": d.arango,
    }


TLS_MOUNT = "/var/run/secrets/aitrading/tls"


def tls_secret_for(stack: str, spec: TradingStackSpec, service: str) -> str:
    """The spec's own certificate Secret, or the one the operator makes for this service."""
    return spec.security.tls_secret or f"{stack}-{service}-tls"


def _service_url(stack: str, namespace: str, service: str) -> str:
    return f"https://{stack}-{service}.{namespace}.svc:{SERVICE_PORTS[service]}"


def config_map(stack: str, namespace: str, spec: TradingStackSpec) -> Manifest:
    ports = {
        f"AITRADING_SERVICES_{s.upper().replace('-', '_')}_PORT": str(p)
        for s, p in SERVICE_PORTS.items()
    }
    data = {
        "AITRADING_ENVIRONMENT": "production",
        "AITRADING_DATA_DIR": "/var/lib/aitrading",
        "AITRADING_SERVICES_BIND_HOST": "0.0.0.0",  # noqa: S104 - inside the pod
        # Between services: HTTPS/WSS with the stack's certificates (operator/service_certs.py
        # or the spec's tlsSecret), mounted at TLS_MOUNT in every service pod.
        "AITRADING_SERVICES_DATABASE_SERVICE_URL": _service_url(
            stack, namespace, "database-service"
        ),
        "AITRADING_SERVICES_DATA_BRIDGE_URL": _service_url(stack, namespace, "data-bridge"),
        "AITRADING_SERVICES_TRADING_ENGINE_URL": _service_url(stack, namespace, "trading-engine"),
        "AITRADING_SECURITY_TLS_CA_FILE": f"{TLS_MOUNT}/ca.crt",
        "AITRADING_SECURITY_TLS_CERT_FILE": f"{TLS_MOUNT}/tls.crt",
        "AITRADING_SECURITY_TLS_KEY_FILE": f"{TLS_MOUNT}/tls.key",
        "AITRADING_SECURITY_JWT_KEY_FILE": "/var/run/secrets/aitrading/jwt/key.pem",
        "AITRADING_SECURITY_REQUESTS_PER_IP_PER_MINUTE": str(
            spec.security.requests_per_ip_per_minute
        ),
        **ports,
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(stack, namespace, "config"),
        "data": data,
    }


def _database_env(stack: str, spec: TradingStackSpec) -> list[dict[str, Any]]:
    """Connection URLs: from the external Secret, or the in-cluster StatefulSet's Secret."""
    env = []
    for db, conf in _databases(spec).items():
        if not conf.enabled and conf.external_secret is None:
            continue
        secret = conf.external_secret or f"{stack}-{db}-connection"
        env.append(
            {"name": URL_ENV[db], "valueFrom": {"secretKeyRef": {"name": secret, "key": "url"}}}
        )
    return env


def deployment(stack: str, namespace: str, spec: TradingStackSpec, service: str) -> Manifest:
    conf = _service_spec(spec, service)
    port = SERVICE_PORTS[service]
    env = [{"name": k, "value": v} for k, v in sorted(conf.env.items())]
    container = {
        "name": service,
        "image": f"{spec.image}:{spec.version}",
        "args": ["serve", service],
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": f"{stack}-config"}}],
        "env": _database_env(stack, spec) + env,
        "resources": {
            "requests": {"cpu": conf.resources.cpu, "memory": conf.resources.memory},
            "limits": {"cpu": conf.resources.cpu, "memory": conf.resources.memory},
        },
        "livenessProbe": {
            "httpGet": {"path": "/health/live", "port": "http", "scheme": "HTTPS"},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "httpGet": {"path": "/health/ready", "port": "http", "scheme": "HTTPS"},
            "periodSeconds": 5,
            "failureThreshold": 2,
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "data", "mountPath": "/var/lib/aitrading"},
            {"name": "jwt", "mountPath": "/var/run/secrets/aitrading/jwt", "readOnly": True},
            {"name": "tls", "mountPath": TLS_MOUNT, "readOnly": True},
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(stack, namespace, service),
        "spec": {
            "replicas": 0 if spec.paused else conf.replicas,
            "selector": {"matchLabels": labels(stack, service)},
            "template": {
                "metadata": {"labels": labels(stack, service)},
                "spec": {
                    "securityContext": {
                        "seccompProfile": {"type": "RuntimeDefault"},
                        "fsGroup": 10001,
                    },
                    # Kubernetes would inject <SERVICE>_SERVICE_PORT_… variables for every
                    # Service; with a stack named "aitrading" they look like our settings.
                    "enableServiceLinks": False,
                    "containers": [container],
                    "volumes": [
                        {"name": "data", "emptyDir": {}},
                        {"name": "jwt", "secret": {"secretName": spec.security.jwt_key_secret}},
                        {
                            "name": "tls",
                            "secret": {"secretName": tls_secret_for(stack, spec, service)},
                        },
                    ],
                },
            },
        },
    }


def service(
    stack: str, namespace: str, component: str, port: int, headless: bool = False
) -> Manifest:
    body: dict[str, Any] = {
        "selector": labels(stack, component),
        "ports": [{"name": "main", "port": port, "targetPort": port, "protocol": "TCP"}],
    }
    if headless:
        body["clusterIP"] = "None"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(stack, namespace, component),
        "spec": body,
    }


def stateful_set(stack: str, namespace: str, spec: TradingStackSpec, db: str) -> Manifest:
    conf = _databases(spec)[db]
    claim: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": conf.storage_size}},
    }
    if conf.storage_class:
        claim["storageClassName"] = conf.storage_class
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta(stack, namespace, db),
        "spec": {
            "serviceName": f"{stack}-{db}",
            "replicas": 0 if spec.paused else 1,
            "selector": {"matchLabels": labels(stack, db)},
            "template": {
                "metadata": {"labels": labels(stack, db)},
                "spec": {
                    "enableServiceLinks": False,
                    "containers": [
                        {
                            "name": db,
                            "image": conf.image or DATABASE_IMAGES[db],
                            "ports": [{"name": "main", "containerPort": DATABASE_PORTS[db]}],
                            "envFrom": [
                                {
                                    "secretRef": {
                                        "name": f"{stack}-{db}-credentials",
                                        "optional": True,
                                    }
                                }
                            ],
                            "volumeMounts": [{"name": "data", "mountPath": DATABASE_DATA[db]}],
                            "readinessProbe": {
                                "tcpSocket": {"port": DATABASE_PORTS[db]},
                                "periodSeconds": 5,
                            },
                        }
                    ],
                },
            },
            "volumeClaimTemplates": [
                {"metadata": {"name": "data", "labels": labels(stack, db)}, "spec": claim}
            ],
        },
    }


def retention_cron_job(stack: str, namespace: str, spec: TradingStackSpec) -> Manifest:
    job_container = {
        "name": "logs-enforce",
        "image": f"{spec.image}:{spec.version}",
        "args": ["logs", "enforce"],
        "envFrom": [{"configMapRef": {"name": f"{stack}-config"}}],
        "env": _database_env(stack, spec),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/aitrading"}],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _meta(stack, namespace, "logs-enforce"),
        "spec": {
            "schedule": spec.logging.enforce_schedule,
            "concurrencyPolicy": "Forbid",
            "suspend": spec.paused,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 2,
                    "template": {
                        "metadata": {"labels": labels(stack, "logs-enforce")},
                        "spec": {
                            "restartPolicy": "OnFailure",
                            "enableServiceLinks": False,
                            "containers": [job_container],
                            "volumes": [{"name": "data", "emptyDir": {}}],
                        },
                    },
                }
            },
        },
    }


def network_policies(stack: str, namespace: str, spec: TradingStackSpec) -> list[Manifest]:
    """Default deny; the gateway takes traffic from anywhere; each service only from the
    gateway (the bridge also from MT5 connectors via the gateway; the trading-engine also
    from the bridge, which relays connector reports); databases only from the services
    that use them."""
    policies: list[Manifest] = [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta(stack, namespace, "default-deny"),
            "spec": {
                "podSelector": {"matchLabels": {"app.kubernetes.io/instance": stack}},
                "policyTypes": ["Ingress"],
            },
        }
    ]

    def allow(component: str, port: int, sources: list[str] | None) -> Manifest:
        rule: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": port}]}
        if sources is not None:
            rule["from"] = [{"podSelector": {"matchLabels": labels(stack, s)}} for s in sources]
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta(stack, namespace, f"allow-{component}"),
            "spec": {
                "podSelector": {"matchLabels": labels(stack, component)},
                "policyTypes": ["Ingress"],
                "ingress": [rule],
            },
        }

    policies.append(allow("api-gateway", 8000, None))
    policies.append(allow("data-bridge", SERVICE_PORTS["data-bridge"], ["api-gateway"]))
    # orders from the gateway; execution reports and positions relayed by data-bridge
    policies.append(
        allow("trading-engine", SERVICE_PORTS["trading-engine"], ["api-gateway", "data-bridge"])
    )
    policies.append(
        allow(
            "database-service",
            8008,
            ["api-gateway", "data-bridge", "trading-engine", "logs-enforce"],
        )
    )
    for db, conf in _databases(spec).items():
        if conf.enabled and conf.external_secret is None:
            users = sorted(s for s, dbs in SERVICE_DATABASES.items() if db in dbs)
            policies.append(allow(db, DATABASE_PORTS[db], [*users, "logs-enforce"]))
    return policies


def phases(stack: str, namespace: str, spec: TradingStackSpec) -> list[list[Manifest]]:
    """Rollout order: each phase must be ready before the next is applied."""
    databases: list[Manifest] = [
        config_map(stack, namespace, spec),
        *network_policies(stack, namespace, spec),
    ]
    for db, conf in _databases(spec).items():
        if conf.enabled and conf.external_secret is None:
            databases += [
                stateful_set(stack, namespace, spec, db),
                service(stack, namespace, db, DATABASE_PORTS[db], headless=True),
            ]
    owner = [
        deployment(stack, namespace, spec, "database-service"),
        service(stack, namespace, "database-service", 8008),
    ]
    rest: list[Manifest] = []
    for svc in ("data-bridge", "trading-engine", "api-gateway"):
        rest += [
            deployment(stack, namespace, spec, svc),
            service(stack, namespace, svc, SERVICE_PORTS[svc]),
        ]
    return [databases, owner, rest, [retention_cron_job(stack, namespace, spec)]]


def render(stack: str, namespace: str, spec: TradingStackSpec) -> list[Manifest]:
    return [m for phase in phases(stack, namespace, spec) for m in phase]


def cert_manager_objects(stack: str, namespace: str) -> list[Manifest]:
    """When cert-manager is installed it issues the stack's certificates: a self-signed
    issuer makes the stack CA, a CA issuer signs one certificate per service into the same
    Secrets (`<stack>-<service>-tls`, with `ca.crt`) the operator would otherwise create."""

    def issuer(name: str, spec: dict[str, Any]) -> Manifest:
        return {
            "apiVersion": "cert-manager.io/v1",
            "kind": "Issuer",
            "metadata": _meta(stack, namespace, "tls", name),
            "spec": spec,
        }

    def certificate(name: str, spec: dict[str, Any]) -> Manifest:
        return {
            "apiVersion": "cert-manager.io/v1",
            "kind": "Certificate",
            "metadata": _meta(stack, namespace, "tls", name),
            "spec": {"privateKey": {"algorithm": "ECDSA", "size": 256}, **spec},
        }

    objects = [
        issuer(f"{stack}-selfsigned", {"selfSigned": {}}),
        certificate(
            f"{stack}-ca",
            {
                "isCA": True,
                "commonName": f"aitrading {stack} CA",
                "secretName": f"{stack}-ca",
                "issuerRef": {"name": f"{stack}-selfsigned", "kind": "Issuer"},
            },
        ),
        issuer(f"{stack}-ca", {"ca": {"secretName": f"{stack}-ca"}}),
    ]
    for service in SERVICE_PORTS:
        base = f"{stack}-{service}"
        objects.append(
            certificate(
                base,
                {
                    "secretName": f"{base}-tls",
                    "dnsNames": [
                        base,
                        f"{base}.{namespace}",
                        f"{base}.{namespace}.svc",
                        f"{base}.{namespace}.svc.cluster.local",
                    ],
                    "usages": ["server auth", "client auth"],
                    "issuerRef": {"name": f"{stack}-ca", "kind": "Issuer"},
                },
            )
        )
    return objects
