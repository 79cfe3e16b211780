"""`rollout.workloads` against the sandbox API (or a real cluster): clone, scale, promote, hand back.

The sandbox's Deployment controller reports readiness as kube-controller-manager would, and its
garbage collector deletes what a deleted Canary owned, so these assert the resulting state of
the world, not calls."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from rollout.api.parse import parse_canary
from rollout.api.spec import Canary
from rollout.settings import Settings
from rollout.workloads import REVISION_ANNOTATION, NotReady, TargetMissing, Workloads, pod_template_hash
from tests.e2e.conftest import GROUP, VERSION, deployment, wait_for

MERGE = "application/merge-patch+json"


def _canary_object(namespace: str, target: str, service: str | None = None) -> dict[str, Any]:
    svc: dict[str, Any] = {"port": 80, "targetPort": 9898}
    if service:
        svc["name"] = service
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Canary",
        "metadata": {"name": target, "namespace": namespace},
        "spec": {
            # These tests drive the workloads themselves: the shared operator, when a test of the same
            # worker has started it, must not act on the release (it reacts to every change at once).
            "suspend": True,
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "service": svc,
            "analysis": {"interval": "10s", "threshold": 2, "iterations": 2},
        },
    }


def create_canary(api: client.ApiClient, namespace: str, target: str, service: str | None = None) -> Canary:
    created: dict[str, Any] = client.CustomObjectsApi(api).create_namespaced_custom_object(  # type: ignore[assignment]
        GROUP, VERSION, namespace, "canaries", _canary_object(namespace, target, service))
    return parse_canary(created)


def create_deployment(api: client.ApiClient, body: dict[str, Any]) -> None:
    apps: Any = client.AppsV1Api(api)  # the client takes the API's JSON as well as its models
    apps.create_namespaced_deployment(body["metadata"]["namespace"], body, _request_timeout=10)


def raw(api: client.ApiClient, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """The object as the API serves it (JSON, every field), or None."""
    workloads = Workloads(api, Settings(api_timeout=5))
    return workloads.deployment(namespace, name) if kind == "deployment" else workloads.service(namespace, name)


def ready_pair(workloads: Workloads, release: Canary) -> bool:
    target, primary = workloads.observe(release)
    return target.ready and primary.ready


@pytest.fixture
def workloads(api: client.ApiClient) -> Workloads:
    return Workloads(api, Settings(api_timeout=5))


def test_clone_scale_promote_and_hand_back(api: client.ApiClient, namespace: str, workloads: Workloads) -> None:
    apps = client.AppsV1Api(api)
    target = deployment("podinfo", namespace, replicas=2)
    target["metadata"]["annotations"] = {REVISION_ANNOTATION: "rev-1", "rollout.gitops.dev/source-path": "podinfo.yaml"}
    create_deployment(api, target)
    release = create_canary(api, namespace, "podinfo", service="web")

    seen_target, seen_primary = workloads.observe(release)
    assert seen_target.exists and not seen_primary.exists
    assert seen_target.revision == "rev-1"

    # initialize: the primary and three Services, with the right selectors
    workloads.initialize(release)
    primary = raw(api, "deployment", namespace, "podinfo-primary")
    assert primary is not None
    assert primary["spec"]["selector"]["matchLabels"] == {"app": "podinfo-primary"}
    assert primary["spec"]["replicas"] == 2
    assert primary["metadata"]["ownerReferences"][0]["uid"] == release.metadata.uid
    selectors = {}
    for name in ("web", "web-primary", "web-canary"):
        svc = raw(api, "service", namespace, name)
        assert svc is not None, name
        selectors[name] = svc["spec"]["selector"]
        assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [(80, 9898)]
    assert selectors == {"web": {"app": "podinfo-primary"}, "web-primary": {"app": "podinfo-primary"},
                         "web-canary": {"app": "podinfo"}}

    # idempotent: a second initialize writes nothing
    versions = {n: raw(api, "service", namespace, n)["metadata"]["resourceVersion"]  # type: ignore[index]
                for n in selectors}
    primary_generation = primary["metadata"]["generation"]
    workloads.initialize(release)
    assert {n: raw(api, "service", namespace, n)["metadata"]["resourceVersion"]  # type: ignore[index]
            for n in selectors} == versions
    assert raw(api, "deployment", namespace, "podinfo-primary")["metadata"]["generation"] == primary_generation  # type: ignore[index]

    # the primary becomes ready and hashes equal to the target, with its revision
    wait_for("target and primary ready", lambda: ready_pair(workloads, release), timeout=20)
    seen_target, seen_primary = workloads.observe(release)
    assert seen_primary.spec_hash == seen_target.spec_hash
    assert seen_primary.revision == "rev-1"

    # scale the target down: zero replicas, the count remembered, not ready
    workloads.scale_target(release, up=False)
    scaled = raw(api, "deployment", namespace, "podinfo")
    assert scaled is not None
    assert scaled["spec"]["replicas"] == 0
    assert scaled["metadata"]["annotations"]["rollout.gitops.dev/replicas"] == "2"
    assert not workloads.observe(release)[0].ready

    # a new version arrives on the target (as Git would apply it): the hashes differ
    apps.patch_namespaced_deployment(
        "podinfo", namespace,
        {"metadata": {"annotations": {REVISION_ANNOTATION: "rev-2"}},
         "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "podinfo:6.0.1"}]}}}},
        _content_type="application/strategic-merge-patch+json", _request_timeout=10)
    seen_target, seen_primary = workloads.observe(release)
    assert seen_target.spec_hash != seen_primary.spec_hash
    assert seen_target.revision == "rev-2"

    # scale up for the run: the primary's count comes back
    workloads.scale_target(release, up=True)
    up = raw(api, "deployment", namespace, "podinfo")
    assert up is not None and up["spec"]["replicas"] == 2
    assert "rollout.gitops.dev/replicas" not in (up["metadata"].get("annotations") or {})
    wait_for("target ready after scale-up", lambda: workloads.observe(release)[0].ready, timeout=20)

    # promote: the primary runs the new template and revision, and hashes equal again
    workloads.promote(release)
    promoted = raw(api, "deployment", namespace, "podinfo-primary")
    assert promoted is not None
    assert promoted["spec"]["template"]["spec"]["containers"][0]["image"] == "podinfo:6.0.1"
    assert promoted["spec"]["template"]["metadata"]["labels"]["app"] == "podinfo-primary"
    wait_for("primary rolled out", lambda: workloads.observe(release)[1].ready, timeout=20)
    seen_target, seen_primary = workloads.observe(release)
    assert seen_primary.spec_hash == seen_target.spec_hash == pod_template_hash(up)
    assert seen_primary.revision == "rev-2"
    # promoting again changes nothing (status updates move resourceVersion; a spec write moves generation)
    generation = promoted["metadata"]["generation"]
    workloads.promote(release)
    assert raw(api, "deployment", namespace, "podinfo-primary")["metadata"]["generation"] == generation  # type: ignore[index]

    # deletion: the target is scaled up and ready, the apex selects it and outlives the release
    workloads.scale_target(release, up=False)
    with pytest.raises(NotReady):  # the primary keeps serving until the target is ready
        workloads.finalize(release)
    back = raw(api, "deployment", namespace, "podinfo")
    assert back is not None and back["spec"]["replicas"] == 2
    apex = raw(api, "service", namespace, "web")
    assert apex is not None
    assert apex["spec"]["selector"] == {"app": "podinfo-primary"}, "handed back before the target was ready"
    wait_for("target ready", lambda: workloads.observe(release)[0].ready, timeout=20)
    workloads.finalize(release)
    apex = raw(api, "service", namespace, "web")
    assert apex is not None
    assert apex["spec"]["selector"] == {"app": "podinfo"}
    assert not apex["metadata"].get("ownerReferences")
    client.CustomObjectsApi(api).delete_namespaced_custom_object(GROUP, VERSION, namespace, "canaries", "podinfo")
    wait_for("primary collected", lambda: raw(api, "deployment", namespace, "podinfo-primary") is None, timeout=20)
    wait_for("generated services collected",
             lambda: all(raw(api, "service", namespace, n) is None for n in ("web-primary", "web-canary")),
             timeout=20)
    assert raw(api, "service", namespace, "web") is not None
    assert raw(api, "deployment", namespace, "podinfo") is not None


def test_finalize_waits_for_the_target(api: client.ApiClient, namespace: str, workloads: Workloads) -> None:
    create_deployment(api, deployment("slow", namespace, replicas=1))
    release = create_canary(api, namespace, "slow")
    workloads.initialize(release)
    wait_for("primary ready", lambda: workloads.observe(release)[1].ready, timeout=20)
    workloads.scale_target(release, up=False)
    with pytest.raises(NotReady):
        workloads.finalize(release)
    assert raw(api, "service", namespace, "slow")["spec"]["selector"] == {"app": "slow-primary"}  # type: ignore[index]


def test_a_missing_target(api: client.ApiClient, namespace: str, workloads: Workloads) -> None:
    release = create_canary(api, namespace, "absent")
    target, primary = workloads.observe(release)
    assert (target.exists, primary.exists) == (False, False)
    with pytest.raises(TargetMissing, match=f"{namespace}/absent") as info:
        workloads.initialize(release)
    assert info.value.temporary is False
    with pytest.raises(TargetMissing):
        workloads.scale_target(release, up=True)
    with pytest.raises(TargetMissing):
        workloads.promote(release)
    workloads.finalize(release)  # nothing to give back: deletion is not blocked
    assert raw(api, "service", namespace, "absent") is None
