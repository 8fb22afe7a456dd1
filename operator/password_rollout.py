"""After a password rotation, every pod that holds a database credential restarts.

Credentials reach pods as environment variables from Secrets, read once at start. A rotation
(`aitrading.io/rotate-passwords`) writes new Secrets; stamping the rotation's value on each
pod template makes the Deployments and StatefulSets roll, so services and databases come
back with the new passwords. database-service's init container runs first in its new pod and
moves PostgreSQL to the new owner and runtime passwords (`aitrading db adopt-password`).
PostgreSQL itself is not restarted: it keeps its data and takes the new passwords by ALTER
ROLE, and its image reads POSTGRES_PASSWORD only when it initialises an empty volume.
"""

from __future__ import annotations

from aitrading.operator.render import Manifest

PASSWORD_ROTATION_STAMP = "aitrading.io/password-rotation"  # noqa: S105 - a name, no secret
_NOT_RESTARTED = {"postgres"}


def stamp_password_rotation(manifest: Manifest, rotation: str | None) -> None:
    """Put `rotation` on the pod template of a workload that reads database credentials."""
    if not rotation or manifest.get("kind") not in ("Deployment", "StatefulSet"):
        return
    component = manifest["metadata"]["labels"].get("app.kubernetes.io/component")
    if component in _NOT_RESTARTED:
        return
    template = manifest["spec"]["template"].setdefault("metadata", {})
    template.setdefault("annotations", {})[PASSWORD_ROTATION_STAMP] = rotation
