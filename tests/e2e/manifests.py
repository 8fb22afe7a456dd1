"""Small builders for the objects the e2e tests apply (dicts, sent to kubectl as JSON)."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.conftest import IMAGE


def container(
    *,
    args: list[str] | None = None,
    command: list[str] | None = None,
    env: dict[str, str] | None = None,
    port: int | None = None,
    mounts: dict[str, str] | None = None,
    scheme: str = "HTTP",
) -> dict[str, Any]:
    """The project's image with the production security settings (non-root, read-only root)."""
    spec: dict[str, Any] = {
        "name": "main",
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "securityContext": {
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]
        + [{"name": name, "mountPath": path} for name, path in (mounts or {}).items()],
    }
    if args is not None:
        spec["args"] = args
    if command is not None:
        spec["command"] = command
    if env:
        spec["env"] = [{"name": k, "value": v} for k, v in env.items()]
    if port:
        spec["ports"] = [{"containerPort": port}]
        spec["readinessProbe"] = {
            "httpGet": {"path": "/health/live", "port": port, "scheme": scheme},
            "periodSeconds": 2,
        }
    return spec


def pod_spec(
    main: dict[str, Any], volumes: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [main],
        "volumes": [{"name": "tmp", "emptyDir": {}}]
        + [{"name": name, **source} for name, source in (volumes or {}).items()],
        **extra,
    }


def obj(
    api_version: str, kind: str, name: str, spec: dict[str, Any] | None = None, **fields: Any
) -> dict[str, Any]:
    found: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}}
    if spec is not None:
        found["spec"] = spec
    found.update(fields)
    return found


def as_list(*objects: dict[str, Any]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})
