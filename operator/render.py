"""Pure functions: a TradingStack spec → the Kubernetes objects it stands for.

No API calls here — the reconcile loop applies what these return (server-side apply, one
field manager, owner references). `phases()` orders the rollout: databases, then
database-service, then the other services, then the retention CronJob.
"""

from __future__ import annotations

from typing import Any

from aitrading.core.security.tls import postgres_server_tls_args
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
# the credential a database takes apart from its URL: (variable, key in the connection Secret)
CREDENTIAL_ENV = {
    "weaviate": ("AITRADING_WEAVIATE_API_KEY", "api-key"),
    "arango": ("AITRADING_ARANGO_PASSWORD", "password"),
}
URL_ENV = {
    "postgres": "AITRADING_POSTGRES_DSN",
    "clickhouse": "AITRADING_CLICKHOUSE_DSN",
    "dragonfly": "AITRADING_REDIS_URL",
    "weaviate": "AITRADING_WEAVIATE_URL",
    "arango": "AITRADING_ARANGO_URL",
}


# PostgreSQL roles: the image's superuser owns the schema (migrations only); services log in
# as a member of aitrading_runtime, which cannot rewrite the audit log (decision 0004).
POSTGRES_DATABASE = "aitrading"
POSTGRES_OWNER = "aitrading_owner"
POSTGRES_RUNTIME_LOGIN = "aitrading_app"
DATA_DIR = "/var/lib/aitrading"
EMBEDDED_CLICKHOUSE_DSN = f"chdb://{DATA_DIR}/clickhouse"
DATABASE_TLS_MOUNT = "/var/run/secrets/aitrading/database-tls"
DATABASE_CERT = f"{DATABASE_TLS_MOUNT}/tls.crt"
DATABASE_KEY = f"{DATABASE_TLS_MOUNT}/tls.key"
KEY_MOUNT = "/var/run/secrets/aitrading"


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


def with_registry(image: str, registry: str | None) -> str:
    """`image` pulled from `registry` with its repository path kept, Docker Hub's short names
    spelled out (`postgres:17.2` → `<registry>/library/postgres:17.2`)."""
    if registry is None:
        return image
    first, _, rest = image.partition("/")
    has_domain = bool(rest) and ("." in first or ":" in first or first == "localhost")
    path = rest if has_domain else image
    if "/" not in path:
        path = f"library/{path}"
    return f"{registry.rstrip('/')}/{path}"


def app_image(spec: TradingStackSpec) -> str:
    return with_registry(f"{spec.image}:{spec.version}", spec.image_registry)


def database_image(spec: TradingStackSpec, db: str) -> str:
    return with_registry(_databases(spec)[db].image or DATABASE_IMAGES[db], spec.image_registry)


def in_cluster_databases(spec: TradingStackSpec) -> list[str]:
    """The databases this stack runs as its own StatefulSets."""
    return [
        db
        for db, conf in _databases(spec).items()
        if conf.enabled
        and conf.external_secret is None
        and not (db == "clickhouse" and spec.databases.clickhouse.embedded)
    ]


def jwt_key_secret(stack: str, spec: TradingStackSpec) -> str:
    return spec.security.jwt_key_secret or f"{stack}-jwt"


def audit_key_secret(stack: str, spec: TradingStackSpec) -> str:
    return spec.security.audit_key_secret or f"{stack}-audit-key"


def stateful_services(spec: TradingStackSpec) -> set[str]:
    """Services whose data must outlive their pods: data-bridge's spool (what makes an ack
    safe while database-service is away) and, with ClickHouse embedded, database-service."""
    found = {"data-bridge"}
    if spec.databases.clickhouse.embedded:
        found.add("database-service")
    return found


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
    """Connection URLs: from the external Secret, or the in-cluster StatefulSet's Secret
    (with the credential a database takes apart from its URL)."""
    env: list[dict[str, Any]] = []
    for db, conf in _databases(spec).items():
        if db == "clickhouse" and spec.databases.clickhouse.embedded:
            env.append({"name": URL_ENV[db], "value": EMBEDDED_CLICKHOUSE_DSN})
            continue
        if not conf.enabled and conf.external_secret is None:
            continue
        secret = conf.external_secret or f"{stack}-{db}-connection"
        env.append(
            {"name": URL_ENV[db], "valueFrom": {"secretKeyRef": {"name": secret, "key": "url"}}}
        )
        extra = CREDENTIAL_ENV.get(db)
        if extra is not None and conf.external_secret is None:
            env.append(
                {"name": extra[0], "valueFrom": {"secretKeyRef": {"name": secret, "key": extra[1]}}}
            )
    return env


_RESTRICTED = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def _migrate_container(stack: str, spec: TradingStackSpec, image: str) -> dict[str, Any]:
    """database-service's init container: every schema to head as the owner, then the
    runtime login the services use (its password from the connection Secret). Idempotent."""
    env = _database_env(stack, spec)
    mounts = [
        {"name": "data", "mountPath": DATA_DIR},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - the pod's own emptyDir
        {"name": "tls", "mountPath": TLS_MOUNT, "readOnly": True},
    ]
    script = "aitrading db migrate"
    if "postgres" in in_cluster_databases(spec):
        connection = f"{stack}-postgres-connection"
        env.append(
            {
                "name": "AITRADING_POSTGRES_MIGRATION_DSN",
                "valueFrom": {"secretKeyRef": {"name": connection, "key": "migration-url"}},
            }
        )
        env.append(  # present after a password rotation only (stack_secrets.py)
            {
                "name": "AITRADING_POSTGRES_PREVIOUS_MIGRATION_DSN",
                "valueFrom": {
                    "secretKeyRef": {
                        "name": connection,
                        "key": "previous-migration-url",
                        "optional": True,
                    }
                },
            }
        )
        script = "aitrading db adopt-password && " + script
        mounts.append({"name": "runtime-login", "mountPath": f"{KEY_MOUNT}/runtime-login"})
        script += (
            f" && aitrading db runtime-login {POSTGRES_RUNTIME_LOGIN} --password-stdin"
            f" < {KEY_MOUNT}/runtime-login/runtime-password"
        )
    return {
        "name": "migrate",
        "image": image,
        "command": ["/bin/sh", "-c", script],
        "envFrom": [{"configMapRef": {"name": f"{stack}-config"}}],
        "env": env,
        "securityContext": _RESTRICTED,
        "volumeMounts": mounts,
    }


def deployment(stack: str, namespace: str, spec: TradingStackSpec, service: str) -> Manifest:
    """One service: a Deployment, or a StatefulSet with a volume claim per replica when its
    data must outlive the pod (`stateful_services`)."""
    conf = _service_spec(spec, service)
    port = SERVICE_PORTS[service]
    image = app_image(spec)
    env = [{"name": k, "value": v} for k, v in sorted(conf.env.items())]
    mounts = [
        {"name": "data", "mountPath": DATA_DIR},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - the pod's own emptyDir
        {"name": "jwt", "mountPath": f"{KEY_MOUNT}/jwt", "readOnly": True},
        {"name": "tls", "mountPath": TLS_MOUNT, "readOnly": True},
    ]
    volumes: list[dict[str, Any]] = [
        # the root filesystem is read-only; temporary files go to the pod's own scratch space
        {"name": "tmp", "emptyDir": {}},
        {"name": "jwt", "secret": {"secretName": jwt_key_secret(stack, spec)}},
        {"name": "tls", "secret": {"secretName": tls_secret_for(stack, spec, service)}},
    ]
    if service == "api-gateway":  # the gateway signs the audit checkpoints
        mounts.append({"name": "audit-key", "mountPath": f"{KEY_MOUNT}/audit", "readOnly": True})
        volumes.append(
            {"name": "audit-key", "secret": {"secretName": audit_key_secret(stack, spec)}}
        )
        env.append(
            {
                "name": "AITRADING_SECURITY_AUDIT_SIGNING_KEY_FILE",
                "value": f"{KEY_MOUNT}/audit/key.pem",
            }
        )
    container = {
        "name": service,
        "image": image,
        "args": ["serve", service],
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": f"{stack}-config"}}],
        "env": _database_env(stack, spec) + env,
        "resources": {
            "requests": {"cpu": conf.resources.cpu, "memory": conf.resources.memory},
            "limits": {"cpu": conf.resources.cpu, "memory": conf.resources.memory},
        },
        # Liveness is judged only once the process has started: under a small CPU limit the
        # imports alone can take longer than liveness would wait (up to 5 minutes here).
        "startupProbe": {
            "httpGet": {"path": "/health/live", "port": "http", "scheme": "HTTPS"},
            "periodSeconds": 2,
            "failureThreshold": 150,
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
        "securityContext": _RESTRICTED,
        "volumeMounts": mounts,
    }
    pod: dict[str, Any] = {
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}, "fsGroup": 10001},
        # replicas of one service on different nodes where the cluster has them
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "labelSelector": {"matchLabels": labels(stack, service)},
                            "topologyKey": "kubernetes.io/hostname",
                        },
                    }
                ]
            }
        },
        # Kubernetes would inject <SERVICE>_SERVICE_PORT_… variables for every Service; with
        # a stack named "aitrading" they look like our settings.
        "enableServiceLinks": False,
        "containers": [container],
        "volumes": volumes,
    }
    if service == "database-service":
        pod["initContainers"] = [_migrate_container(stack, spec, image)]
        if "postgres" in in_cluster_databases(spec):
            volumes.append(
                {
                    "name": "runtime-login",
                    "secret": {
                        "secretName": f"{stack}-postgres-connection",
                        "items": [{"key": "runtime-password", "path": "runtime-password"}],
                    },
                }
            )
    stateful = service in stateful_services(spec)
    replicas = conf.replicas
    if service == "database-service" and spec.databases.clickhouse.embedded:
        replicas = min(replicas, 1)  # one process owns an embedded engine's files
    body: dict[str, Any] = {
        "replicas": 0 if spec.paused else replicas,
        "selector": {"matchLabels": labels(stack, service)},
        "template": {"metadata": {"labels": labels(stack, service)}, "spec": pod},
    }
    if stateful:
        body["serviceName"] = f"{stack}-{service}"
        body["podManagementPolicy"] = "Parallel"
        body["volumeClaimTemplates"] = [_claim(stack, service, conf.storage_size, None)]
    else:
        volumes.append({"name": "data", "emptyDir": {}})
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet" if stateful else "Deployment",
        "metadata": _meta(stack, namespace, service),
        "spec": body,
    }


def _claim(stack: str, component: str, size: str, storage_class: str | None) -> Manifest:
    claim: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
    }
    if storage_class:
        claim["storageClassName"] = storage_class
    return {"metadata": {"name": "data", "labels": labels(stack, component)}, "spec": claim}


def disruption_budget(stack: str, namespace: str, component: str) -> Manifest:
    """At most one replica of a service evicted at a time (a drain, an upgrade of the node);
    with one replica it never blocks a drain."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(stack, namespace, component),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels(stack, component)}},
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


def _database_tls(stack: str, spec: TradingStackSpec, db: str) -> tuple[dict[str, Any], ...]:
    """(container fields, pod fields) that make a database serve TLS 1.3 with its
    certificate from the stack CA, the way its official image is configured."""
    secret = {"name": "tls-secret", "secret": {"secretName": tls_secret_for(stack, spec, db)}}
    cert, key = DATABASE_CERT, DATABASE_KEY
    if db == "postgres":
        # PostgreSQL insists that its key belongs to its own user with mode 0600 (a Secret
        # volume is root's): an init container of the same image copies it for that user.
        copy = {
            "name": "tls-for-postgres",
            "image": database_image(spec, "postgres"),
            "command": [
                "sh",
                "-c",
                f"install -o postgres -g postgres -m 0600 /tls-secret/tls.key {key} && "
                f"install -o postgres -g postgres -m 0644 /tls-secret/tls.crt {cert}",
            ],
            "volumeMounts": [
                {"name": "tls-secret", "mountPath": "/tls-secret", "readOnly": True},
                {"name": "tls", "mountPath": DATABASE_TLS_MOUNT},
            ],
        }
        container = {
            "args": postgres_server_tls_args(cert, key),
            "volumeMounts": [{"name": "tls", "mountPath": DATABASE_TLS_MOUNT}],
        }
        pod = {"initContainers": [copy], "volumes": [secret, {"name": "tls", "emptyDir": {}}]}
        return container, pod
    mount = {"name": "tls-secret", "mountPath": DATABASE_TLS_MOUNT, "readOnly": True}
    if db == "dragonfly":
        env = [
            {"name": "DFLY_tls", "value": "true"},
            {"name": "DFLY_tls_cert_file", "value": cert},
            {"name": "DFLY_tls_key_file", "value": key},
        ]
        return {"env": env, "volumeMounts": [mount]}, {"volumes": [secret]}
    if db == "clickhouse":
        # the official image reads config.d/*.xml: HTTPS on 8443 with the stack certificate
        config = {"name": "tls-config", "configMap": {"name": f"{stack}-clickhouse-tls"}}
        mounts = [
            mount,
            {
                "name": "tls-config",
                "mountPath": "/etc/clickhouse-server/config.d/tls.xml",
                "subPath": "tls.xml",
                "readOnly": True,
            },
        ]
        return {"volumeMounts": mounts}, {"volumes": [secret, config]}
    # Weaviate and ArangoDB as configured here serve plaintext, which the services refuse
    # outside loopback in production: run them externally behind TLS (externalSecret).
    return {}, {}


def clickhouse_tls_config(stack: str, namespace: str) -> Manifest:
    cert, key = DATABASE_CERT, DATABASE_KEY
    xml = (
        "<clickhouse>\n"
        "  <https_port>8443</https_port>\n"
        "  <openSSL><server>\n"
        f"    <certificateFile>{cert}</certificateFile>\n"
        f"    <privateKeyFile>{key}</privateKeyFile>\n"
        "    <verificationMode>none</verificationMode>\n"
        "    <disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1,tlsv1_2</disableProtocols>\n"
        "  </server></openSSL>\n"
        "</clickhouse>\n"
    )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(stack, namespace, "clickhouse", f"{stack}-clickhouse-tls"),
        "data": {"tls.xml": xml},
    }


def database_readiness(db: str) -> dict[str, Any]:
    """A database pod is ready when it serves, not when its port accepts.

    PostgreSQL listens during crash recovery and refuses every connection until it is done;
    `pg_isready` (in the official image and Debian's package alike) answers "accepting" only
    once it would serve, and needs no credentials (a refused login still counts as up). The
    others keep the port check: Dragonfly answers LOADING while it loads a snapshot, but a
    probe through its image's redis-cli, whose TLS support is unverified here, could keep it
    unready for ever; the services' readiness follows their stores' health meanwhile.
    """
    port = DATABASE_PORTS[db]
    if db == "postgres":
        command = ["pg_isready", "--quiet", "--host=127.0.0.1", f"--port={port}"]
        return {"exec": {"command": command}, "periodSeconds": 5, "timeoutSeconds": 5}
    return {"tcpSocket": {"port": port}, "periodSeconds": 5}


def stateful_set(stack: str, namespace: str, spec: TradingStackSpec, db: str) -> Manifest:
    conf = _databases(spec)[db]
    tls_container, tls_pod = _database_tls(stack, spec, db)
    container: dict[str, Any] = {
        "name": db,
        "image": database_image(spec, db),
        "ports": [{"name": "main", "containerPort": DATABASE_PORTS[db]}],
        "envFrom": [{"secretRef": {"name": f"{stack}-{db}-credentials"}}],
        "readinessProbe": database_readiness(db),
        **tls_container,
    }
    container["volumeMounts"] = [
        {"name": "data", "mountPath": DATABASE_DATA[db]},
        *tls_container.get("volumeMounts", []),
    ]
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
                "spec": {"enableServiceLinks": False, "containers": [container], **tls_pod},
            },
            "volumeClaimTemplates": [_claim(stack, db, conf.storage_size, conf.storage_class)],
        },
    }


def retention_args(spec: TradingStackSpec) -> list[str]:
    days = spec.logging.retention_days.model_dump()
    return [a for level, n in days.items() for a in ("--retention", f"{level.upper()}={n}")]


def logs_claim(stack: str, namespace: str, spec: TradingStackSpec) -> Manifest:
    """The cold log tier's volume (zstd files per day, level and service), kept by the
    retention CronJob's runs; deleted with the stack only under deletionPolicy Delete."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(stack, namespace, "logs-enforce", f"{stack}-logs"),
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": spec.logging.cold_storage_size}},
        },
    }


RETENTION_JOB = "logs-enforce"


def retention_cron_job(stack: str, namespace: str, spec: TradingStackSpec) -> Manifest:
    job_container = {
        "name": RETENTION_JOB,
        "image": app_image(spec),
        # the spec's retention days, over the policies stored in PostgreSQL
        "args": ["logs", "enforce", *retention_args(spec)],
        "envFrom": [{"configMapRef": {"name": f"{stack}-config"}}],
        "env": _database_env(stack, spec),
        "securityContext": _RESTRICTED,
        "volumeMounts": [
            {"name": "data", "mountPath": DATA_DIR},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - the pod's own emptyDir
            # its certificate and the stack CA: the databases take TLS 1.3 only (a run found
            # it could not connect without them)
            {"name": "tls", "mountPath": TLS_MOUNT, "readOnly": True},
        ],
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
                            # the cold tier's files outlive the job's pod
                            "volumes": [
                                {
                                    "name": "data",
                                    "persistentVolumeClaim": {"claimName": f"{stack}-logs"},
                                },
                                {"name": "tmp", "emptyDir": {}},
                                {
                                    "name": "tls",
                                    "secret": {
                                        "secretName": tls_secret_for(stack, spec, RETENTION_JOB)
                                    },
                                },
                            ],
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
    for db in in_cluster_databases(spec):
        users = sorted(s for s, dbs in SERVICE_DATABASES.items() if db in dbs)
        policies.append(allow(db, DATABASE_PORTS[db], [*users, "logs-enforce"]))
    if spec.monitoring.scraper_namespace is not None:
        policies.append(_scraper_policy(stack, namespace, spec.monitoring.scraper_namespace))
    return policies


def _scraper_policy(stack: str, namespace: str, scraper_namespace: str) -> Manifest:
    """Prometheus (any pod of `scraper_namespace`) may reach every service's port."""
    scraper = {"kubernetes.io/metadata.name": scraper_namespace}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(stack, namespace, "allow-metrics-scrape"),
        "spec": {
            "podSelector": {
                "matchExpressions": [
                    {"key": "app.kubernetes.io/instance", "operator": "In", "values": [stack]},
                    {
                        "key": "app.kubernetes.io/component",
                        "operator": "In",
                        "values": list(SERVICE_PORTS),
                    },
                ]
            },
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"namespaceSelector": {"matchLabels": scraper}}],
                    "ports": [{"protocol": "TCP", "port": p} for p in SERVICE_PORTS.values()],
                }
            ],
        },
    }


def phases(stack: str, namespace: str, spec: TradingStackSpec) -> list[list[Manifest]]:
    """Rollout order: each phase must be ready before the next is applied."""
    databases: list[Manifest] = [
        config_map(stack, namespace, spec),
        *network_policies(stack, namespace, spec),
    ]
    if "clickhouse" in in_cluster_databases(spec):
        databases.append(clickhouse_tls_config(stack, namespace))
    for db in in_cluster_databases(spec):
        databases += [
            stateful_set(stack, namespace, spec, db),
            service(stack, namespace, db, DATABASE_PORTS[db], headless=True),
        ]
    owner = [
        deployment(stack, namespace, spec, "database-service"),
        service(stack, namespace, "database-service", 8008),
        disruption_budget(stack, namespace, "database-service"),
    ]
    rest: list[Manifest] = []
    for svc in ("data-bridge", "trading-engine", "api-gateway"):
        rest += [
            deployment(stack, namespace, spec, svc),
            service(stack, namespace, svc, SERVICE_PORTS[svc]),
            disruption_budget(stack, namespace, svc),
        ]
    retention = [logs_claim(stack, namespace, spec), retention_cron_job(stack, namespace, spec)]
    return [databases, owner, rest, retention]


def render(stack: str, namespace: str, spec: TradingStackSpec) -> list[Manifest]:
    return [m for phase in phases(stack, namespace, spec) for m in phase]


TLS_DATABASES = ("postgres", "dragonfly", "clickhouse")


def certificate_holders(spec: TradingStackSpec) -> list[str]:
    """Every component with its own certificate: the services, the retention CronJob (a
    client of PostgreSQL and the Redis-protocol store, both TLS only) and the in-cluster
    databases that serve TLS."""
    return [
        *SERVICE_PORTS,
        RETENTION_JOB,
        *(db for db in in_cluster_databases(spec) if db in TLS_DATABASES),
    ]


def cert_manager_objects(stack: str, namespace: str, spec: TradingStackSpec) -> list[Manifest]:
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
    for service in certificate_holders(spec):
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
