"""Which StatefulSet pods the operator replaces after a spec fix (and which it leaves alone)."""

from __future__ import annotations

from typing import Any

from aitrading.operator.stuck_pods import stuck_pods

SET = {"status": {"updateRevision": "db-new", "currentRevision": "db-old"}}


def pod(name: str, revision: str, reason: str | None, ready: bool = False) -> dict[str, Any]:
    state = {"waiting": {"reason": reason}} if reason else {"running": {}}
    return {
        "metadata": {"name": name, "labels": {"controller-revision-hash": revision}},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"name": "db", "state": state}],
        },
    }


def test_an_old_pod_that_cannot_pull_its_image_is_replaced() -> None:
    assert stuck_pods(SET, [pod("db-0", "db-old", "ImagePullBackOff")]) == ["db-0"]
    assert stuck_pods(SET, [pod("db-0", "db-old", "CrashLoopBackOff")]) == ["db-0"]


def test_pods_that_may_still_heal_or_are_current_are_left_alone() -> None:
    assert stuck_pods(SET, [pod("db-0", "db-new", "ImagePullBackOff")]) == []  # the new spec's
    assert stuck_pods(SET, [pod("db-0", "db-old", "ContainerCreating")]) == []  # still starting
    assert stuck_pods(SET, [pod("db-0", "db-old", None, ready=True)]) == []  # serving
    assert stuck_pods({"status": {}}, [pod("db-0", "db-old", "ErrImagePull")]) == []


def test_an_init_container_that_cannot_start_counts_too() -> None:
    stuck = pod("db-0", "db-old", None)
    stuck["status"]["initContainerStatuses"] = [
        {"name": "tls", "state": {"waiting": {"reason": "CreateContainerConfigError"}}}
    ]
    assert stuck_pods(SET, [stuck]) == ["db-0"]


class RecordingPods:
    """The Pod API as the unit sees it (the real one is exercised by the e2e tier)."""

    def __init__(self, pods: list[dict[str, Any]]) -> None:
        self.pods, self.listed, self.deleted = pods, 0, []  # type: ignore[var-annotated]

    def get(self, **_: Any) -> Any:
        self.listed += 1
        pods = self.pods

        class Listing:
            def to_dict(self) -> dict[str, Any]:
                return {"items": pods}

        return Listing()

    def delete(self, name: str, namespace: str) -> None:
        self.deleted.append(name)


class Dynamic:
    def __init__(self, pods: RecordingPods) -> None:
        self.pods = pods

        class Resources:
            def get(self, **_: Any) -> RecordingPods:
                return pods

        self.resources = Resources()


def live(current: str, update: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "db", "namespace": "ns"},
        "spec": {"selector": {"matchLabels": {"app": "db"}}},
        "status": {"currentRevision": current, "updateRevision": update},
    }


def test_pods_are_listed_only_while_a_rollout_is_under_way() -> None:
    from aitrading.operator.stuck_pods import replace_stuck_pods

    pods = RecordingPods([pod("db-0", "db-old", "ImagePullBackOff")])
    assert replace_stuck_pods(Dynamic(pods), live("db-new", "db-new")) == []
    assert pods.listed == 0  # settled: nothing to look at on every drift check
    assert replace_stuck_pods(Dynamic(pods), live("db-old", "db-new")) == ["db-0"]
    assert (pods.listed, pods.deleted) == (1, ["db-0"])
