"""StatefulSet pods that will never heal by themselves after their spec was fixed.

With the default `OrderedReady` policy, the StatefulSet controller waits for a pod to become
Ready before it replaces it with the new revision; a pod that cannot start at all (a bad
image, a missing Secret) therefore blocks every later spec fix, forever
(kubernetes/kubernetes#67250). The operator deletes exactly those pods: out of date (their
revision is not the StatefulSet's update revision), not ready, and waiting for a reason that
no amount of waiting cures. The controller then recreates them from the fixed spec.
"""

from __future__ import annotations

from typing import Any

REVISION_LABEL = "controller-revision-hash"
HOPELESS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)


def _waiting_reasons(pod: dict[str, Any]) -> set[str]:
    status = pod.get("status") or {}
    reasons = set()
    for kind in ("initContainerStatuses", "containerStatuses"):
        for container in status.get(kind) or []:
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason"):
                reasons.add(waiting["reason"])
    return reasons


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def stuck_pods(stateful_set: dict[str, Any], pods: list[dict[str, Any]]) -> list[str]:
    """Names of the pods to delete so that the fixed spec can roll out."""
    wanted = (stateful_set.get("status") or {}).get("updateRevision")
    if not wanted:
        return []
    return sorted(
        pod["metadata"]["name"]
        for pod in pods
        if (pod["metadata"].get("labels") or {}).get(REVISION_LABEL) != wanted
        and not _ready(pod)
        and _waiting_reasons(pod) & HOPELESS
        and not pod["metadata"].get("deletionTimestamp")
    )


def replace_stuck_pods(dynamic: Any, live: dict[str, Any]) -> list[str]:
    """Delete the stuck pods of one live StatefulSet; returns their names. Pods are listed
    only while a rollout is under way (two revisions): the drift timer reconciles every 30 s
    and a settled StatefulSet has no out-of-date pod to find."""
    status = live.get("status") or {}
    if status.get("updateRevision") in (None, status.get("currentRevision")):
        return []
    namespace = live["metadata"]["namespace"]
    selector = ",".join(f"{k}={v}" for k, v in live["spec"]["selector"]["matchLabels"].items())
    api = dynamic.resources.get(api_version="v1", kind="Pod")
    pods = api.get(namespace=namespace, label_selector=selector).to_dict()["items"]
    names = stuck_pods(live, pods)
    for name in names:
        api.delete(name=name, namespace=namespace)
    return names
