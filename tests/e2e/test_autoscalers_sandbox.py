"""`spec.autoscalerRef` against the sandbox API (or a real cluster with KEDA installed): the primary's
HPA or ScaledObject is cloned, kept through a release, updated on promotion and collected with the
release, while the sandbox's simulated autoscalers keep the Deployments within their bounds."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from kubernetes import client

from rollout.api.kinds import KEDA_GROUP, KEDA_PLURAL, KEDA_VERSION
from rollout.api.parse import parse_canary
from rollout.api.spec import Canary
from rollout.settings import Settings
from rollout.workloads import WorkloadError, Workloads
from rollout.workloads.autoscalers import PAUSED_REPLICAS_ANNOTATION
from tests.e2e.conftest import (
    GROUP,
    VERSION,
    OperatorProcess,
    create_release,
    deployment,
    release_status,
    set_image,
    wait_for,
    wait_phase,
)
from tests.e2e.test_operator import canary
from tests.e2e.test_workloads_sandbox import create_deployment
from tests.unit.test_autoscalers import FLAGGER_HPA, FLAGGER_SCALED_OBJECT

MERGE = "application/merge-patch+json"
HPA = ("autoscaling", "v2", "horizontalpodautoscalers")
SO = (KEDA_GROUP, KEDA_VERSION, KEDA_PLURAL)


@pytest.fixture
def workloads(api: client.ApiClient) -> Workloads:
    return Workloads(api, Settings(api_timeout=5))


def create_canary(api: client.ApiClient, namespace: str, ref: dict[str, Any]) -> Canary:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": namespace},
        "spec": {
            "suspend": True,  # driven by the test itself: the shared operator must leave it alone
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "autoscalerRef": ref,
            "service": {"port": 80, "targetPort": 9898},
            "analysis": {"interval": "10s", "threshold": 2, "iterations": 2},
        },
    }
    created: dict[str, Any] = client.CustomObjectsApi(api).create_namespaced_custom_object(  # type: ignore[assignment]
        GROUP, VERSION, namespace, "canaries", body)
    return parse_canary(created)


def get(api: client.ApiClient, where: tuple[str, str, str], namespace: str, name: str) -> dict[str, Any] | None:
    try:
        obj: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(  # type: ignore[assignment]
            where[0], where[1], namespace, where[2], name)
    except client.ApiException as e:
        if e.status == 404:
            return None
        raise
    return obj


def create(api: client.ApiClient, where: tuple[str, str, str], namespace: str, body: dict[str, Any]) -> None:
    body = copy.deepcopy(body)
    body["metadata"]["namespace"] = namespace
    client.CustomObjectsApi(api).create_namespaced_custom_object(where[0], where[1], namespace, where[2], body)


def patch(api: client.ApiClient, where: tuple[str, str, str], namespace: str, name: str, body: dict[str, Any]) -> None:
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        where[0], where[1], namespace, where[2], name, body, _content_type=MERGE)


def replicas(api: client.ApiClient, namespace: str, name: str) -> int:
    return int(client.AppsV1Api(api).read_namespaced_deployment(name, namespace).spec.replicas)


def image(api: client.ApiClient, namespace: str, name: str) -> str:
    d = client.AppsV1Api(api).read_namespaced_deployment(name, namespace)
    return str(d.spec.template.spec.containers[0].image)


def stays(what: str, check: Any, seconds: float = 2.0) -> None:
    """`check()` holds now and for `seconds` (the simulated autoscalers act within a second)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert check(), what
        time.sleep(0.2)


def release_deleted(api: client.ApiClient, namespace: str) -> None:
    client.CustomObjectsApi(api).delete_namespaced_custom_object(GROUP, VERSION, namespace, "canaries", "podinfo")


@pytest.mark.parametrize(("bounds", "low", "high"), [({}, 2, 4), ({"minReplicas": 3, "maxReplicas": 5}, 3, 5)])
def test_an_hpa_managed_target_is_promoted_with_the_primarys_hpa_in_place(
        api: client.ApiClient, namespace: str, workloads: Workloads, bounds: dict[str, int], low: int,
        high: int) -> None:
    create_deployment(api, deployment("podinfo", namespace, replicas=2))
    create(api, HPA, namespace, FLAGGER_HPA)
    ref: dict[str, Any] = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "podinfo"}
    if bounds:
        ref["primaryScalerReplicas"] = bounds
    release = create_canary(api, namespace, ref)

    # initialize: the primary's HPA targets the primary, with the canary's bounds or the override
    workloads.initialize(release)
    primary_hpa = get(api, HPA, namespace, "podinfo-primary")
    assert primary_hpa is not None
    spec = primary_hpa["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo-primary"}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (low, high)
    assert spec["metrics"] == FLAGGER_HPA["spec"]["metrics"]
    assert primary_hpa["metadata"]["ownerReferences"][0]["uid"] == release.metadata.uid
    # the sandbox's HPA keeps the primary within its bounds and reports on it
    wait_for("primary within its HPA's bounds", lambda: low <= replicas(api, namespace, "podinfo-primary") <= high,
             timeout=60)
    wait_for("primary HPA status", lambda: (get(api, HPA, namespace, "podinfo-primary") or {}).get(
        "status", {}).get("desiredReplicas") == replicas(api, namespace, "podinfo-primary"), timeout=60)
    wait_for("primary ready", lambda: workloads.observe(release)[1].ready, timeout=60)

    # idle: the target at zero, and its HPA leaves it there
    workloads.scale_target(release, up=False)
    stays("target kept at zero", lambda: replicas(api, namespace, "podinfo") == 0)
    canary_hpa = get(api, HPA, namespace, "podinfo")
    assert canary_hpa is not None
    assert {c["type"]: c["reason"] for c in canary_hpa["status"]["conditions"]}["ScalingActive"] == "ScalingDisabled"

    # a new version, and a change to the canary's HPA: the primary's takes it only with promotion
    set_image(api, "podinfo", namespace, "ghcr.io/stefanprodan/podinfo:6.0.1")
    patch(api, HPA, namespace, "podinfo", {"spec": {"maxReplicas": 6}})
    workloads.initialize(release)
    assert get(api, HPA, namespace, "podinfo-primary")["spec"]["maxReplicas"] == high  # type: ignore[index]

    # the run: the target starts at its HPA's minimum
    workloads.scale_target(release, up=True)
    assert replicas(api, namespace, "podinfo") == 2
    wait_for("target ready", lambda: workloads.observe(release)[0].ready, timeout=60)
    before = replicas(api, namespace, "podinfo-primary")

    # promotion: the primary runs the new version, its HPA follows the canary's, its replicas stay its HPA's
    workloads.promote(release)
    assert image(api, namespace, "podinfo-primary") == "ghcr.io/stefanprodan/podinfo:6.0.1"
    promoted = get(api, HPA, namespace, "podinfo-primary")
    assert promoted is not None
    assert promoted["spec"]["maxReplicas"] == (high if bounds else 6)
    assert promoted["spec"]["scaleTargetRef"]["name"] == "podinfo-primary"
    assert replicas(api, namespace, "podinfo-primary") == before
    workloads.scale_target(release, up=False)
    stays("target kept at zero after promotion", lambda: replicas(api, namespace, "podinfo") == 0)
    wait_for("primary rolled out", lambda: workloads.observe(release)[1].ready, timeout=60)

    # deletion: the target comes back, the primary's HPA goes with the release, the canary's stays
    wait_for_finalized(workloads, release)
    release_deleted(api, namespace)
    wait_for("primary HPA collected", lambda: get(api, HPA, namespace, "podinfo-primary") is None, timeout=60)
    assert get(api, HPA, namespace, "podinfo") is not None
    assert 2 <= replicas(api, namespace, "podinfo") <= 6


def wait_for_finalized(workloads: Workloads, release: Canary) -> None:
    def done() -> bool:
        try:
            workloads.finalize(release)
        except WorkloadError:
            return False
        return True
    wait_for("finalized", done, timeout=60)


def test_a_keda_managed_target_is_promoted_with_the_primarys_scaled_object_in_place(
        api: client.ApiClient, namespace: str, workloads: Workloads) -> None:
    create_deployment(api, deployment("podinfo", namespace, replicas=1))
    create(api, SO, namespace, FLAGGER_SCALED_OBJECT)
    release = create_canary(api, namespace, {
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "podinfo-so",
        "primaryScalerReplicas": {"minReplicas": 2, "maxReplicas": 5}})

    # initialize (the primary's clone) then idle: the canary's ScaledObject is paused at zero
    workloads.initialize(release)
    primary_so = get(api, SO, namespace, "podinfo-so-primary")
    assert primary_so is not None
    spec = primary_so["spec"]
    assert spec["scaleTargetRef"]["name"] == "podinfo-primary"
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 5)
    assert spec["triggers"][0]["metadata"]["query"] == 'sum(rate(http_requests_total{ app="podinfo-primary" }[30s]))'
    wait_for("primary at its ScaledObject's minimum", lambda: replicas(api, namespace, "podinfo-primary") == 2,
             timeout=60)
    workloads.scale_target(release, up=False)
    canary_so = get(api, SO, namespace, "podinfo-so")
    assert canary_so is not None
    assert canary_so["metadata"]["annotations"][PAUSED_REPLICAS_ANNOTATION] == "0"
    assert PAUSED_REPLICAS_ANNOTATION not in (get(api, SO, namespace, "podinfo-so-primary") or {}).get(
        "metadata", {}).get("annotations", {})
    # minReplicaCount 1 would bring the target back; paused, it stays at zero
    stays("target paused at zero", lambda: replicas(api, namespace, "podinfo") == 0)
    wait_for("paused status", lambda: {c["type"]: c["status"] for c in (get(api, SO, namespace, "podinfo-so") or {})
                                       .get("status", {}).get("conditions", [])}.get("Paused") == "True", timeout=60)

    # a run: resumed, the target starts at its minimum and the ScaledObject keeps it within bounds
    set_image(api, "podinfo", namespace, "ghcr.io/stefanprodan/podinfo:6.0.1")
    patch(api, SO, namespace, "podinfo-so", {"spec": {"cooldownPeriod": 60}})
    workloads.scale_target(release, up=True)
    assert PAUSED_REPLICAS_ANNOTATION not in (get(api, SO, namespace, "podinfo-so") or {})["metadata"].get(
        "annotations", {})
    assert replicas(api, namespace, "podinfo") == 1
    client.AppsV1Api(api).patch_namespaced_deployment("podinfo", namespace, {"spec": {"replicas": 9}},
                                                      _content_type=MERGE)
    wait_for("target back within bounds", lambda: replicas(api, namespace, "podinfo") == 3, timeout=60)
    wait_for("target ready", lambda: workloads.observe(release)[0].ready, timeout=60)
    assert get(api, SO, namespace, "podinfo-so-primary")["spec"]["cooldownPeriod"] == 20  # type: ignore[index]

    # promotion: the primary's ScaledObject follows the canary's (target and bounds its own), then the
    # canary is paused at zero again
    workloads.promote(release)
    assert image(api, namespace, "podinfo-primary") == "ghcr.io/stefanprodan/podinfo:6.0.1"
    promoted = get(api, SO, namespace, "podinfo-so-primary")
    assert promoted is not None
    assert promoted["spec"]["cooldownPeriod"] == 60
    assert promoted["spec"]["scaleTargetRef"]["name"] == "podinfo-primary"
    assert (promoted["spec"]["minReplicaCount"], promoted["spec"]["maxReplicaCount"]) == (2, 5)
    assert replicas(api, namespace, "podinfo-primary") == 2
    workloads.scale_target(release, up=False)
    stays("target paused at zero after promotion", lambda: replicas(api, namespace, "podinfo") == 0)

    # deletion resumes the canary's ScaledObject; the primary's goes with the release
    wait_for("primary rolled out", lambda: workloads.observe(release)[1].ready, timeout=60)
    wait_for_finalized(workloads, release)
    assert PAUSED_REPLICAS_ANNOTATION not in (get(api, SO, namespace, "podinfo-so") or {})["metadata"].get(
        "annotations", {})
    release_deleted(api, namespace)
    wait_for("primary ScaledObject collected", lambda: get(api, SO, namespace, "podinfo-so-primary") is None,
             timeout=60)
    assert 1 <= replicas(api, namespace, "podinfo") <= 3


def test_deleted_mid_release_the_primary_keeps_its_autoscaler(
        api: client.ApiClient, namespace: str, workloads: Workloads) -> None:
    create_deployment(api, deployment("podinfo", namespace, replicas=2))
    create(api, HPA, namespace, FLAGGER_HPA)
    release = create_canary(api, namespace, {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                                             "name": "podinfo"})
    workloads.initialize(release)
    wait_for("primary ready", lambda: workloads.observe(release)[1].ready, timeout=60)
    set_image(api, "podinfo", namespace, "ghcr.io/stefanprodan/podinfo:6.0.1")  # a release in flight
    workloads.finalize(release)
    kept = get(api, HPA, namespace, "podinfo-primary")
    assert kept is not None and not kept["metadata"].get("ownerReferences")
    release_deleted(api, namespace)
    stays("the primary and its HPA outlive the release", lambda: get(api, HPA, namespace, "podinfo-primary")
          is not None and replicas(api, namespace, "podinfo-primary") == 2)


def test_a_missing_autoscaler_is_a_permanent_error_naming_the_field(
        api: client.ApiClient, namespace: str, workloads: Workloads) -> None:
    create_deployment(api, deployment("podinfo", namespace, replicas=1))
    release = create_canary(api, namespace, {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                                             "name": "absent"})
    with pytest.raises(WorkloadError, match=f"ScaledObject {namespace}/absent named by spec.autoscalerRef") as info:
        workloads.initialize(release)
    assert info.value.temporary is False
    with pytest.raises(WorkloadError, match=r"spec\.autoscalerRef"):
        workloads.scale_target(release, up=True)
    workloads.scale_target(release, up=False)  # a rollback still scales the target down
    assert replicas(api, namespace, "podinfo") == 0
    wait_for_finalized(workloads, release)  # deletion is not blocked by it


# -- through the operator (`rollout run`) --------------------------------------------------------


@pytest.mark.e2e
def test_the_operator_releases_a_keda_managed_target(api: client.ApiClient, operator: OperatorProcess,
                                                     namespace: str) -> None:
    create_deployment(api, deployment("podinfo", namespace, replicas=1))
    create(api, SO, namespace, FLAGGER_SCALED_OBJECT)
    obj = canary("podinfo", namespace, "istio", metrics=[], stepWeight=50, interval="1s")
    obj["spec"]["autoscalerRef"] = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "podinfo-so",
                                    "primaryScalerReplicas": {"minReplicas": 2, "maxReplicas": 5}}
    create_release(api, obj)
    wait_phase(api, namespace, "podinfo", "Initialized", timeout=60)
    assert get(api, SO, namespace, "podinfo-so-primary")["spec"]["minReplicaCount"] == 2  # type: ignore[index]
    # The phase is recorded before the scale-down it decided is carried out (intent before effect).
    wait_for("target paused at zero", lambda: replicas(api, namespace, "podinfo") == 0, timeout=60)
    assert get(api, SO, namespace, "podinfo-so")["metadata"]["annotations"][  # type: ignore[index]
        PAUSED_REPLICAS_ANNOTATION] == "0"
    stays("target paused at zero", lambda: replicas(api, namespace, "podinfo") == 0)

    patch(api, SO, namespace, "podinfo-so", {"spec": {"cooldownPeriod": 60}})
    set_image(api, "podinfo", namespace, "ghcr.io/stefanprodan/podinfo:6.0.1")
    status = wait_phase(api, namespace, "podinfo", "Succeeded", "Failed", timeout=120)
    assert status["phase"] == "Succeeded", operator.output()
    assert image(api, namespace, "podinfo-primary") == "ghcr.io/stefanprodan/podinfo:6.0.1"
    promoted = get(api, SO, namespace, "podinfo-so-primary")
    assert promoted is not None and promoted["spec"]["cooldownPeriod"] == 60
    assert promoted["spec"]["scaleTargetRef"]["name"] == "podinfo-primary"
    assert get(api, SO, namespace, "podinfo-so")["metadata"]["annotations"][  # type: ignore[index]
        PAUSED_REPLICAS_ANNOTATION] == "0"
    stays("target paused at zero after promotion", lambda: replicas(api, namespace, "podinfo") == 0)
    assert replicas(api, namespace, "podinfo-primary") == 2


@pytest.mark.e2e
def test_the_operator_says_when_the_autoscaler_is_missing(api: client.ApiClient, operator: OperatorProcess,
                                                          namespace: str) -> None:
    create_deployment(api, deployment("podinfo", namespace, replicas=1))
    obj = canary("podinfo", namespace, "istio", metrics=[], interval="1s")
    obj["spec"]["autoscalerRef"] = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                                    "name": "absent"}
    create_release(api, obj)

    def condition() -> dict[str, Any] | None:
        ready = next((c for c in release_status(api, namespace, "podinfo").get("conditions", [])
                      if c.get("type") == "Ready"), None)
        return ready if ready and ready.get("reason") == "WorkloadError" else None

    ready = wait_for("the WorkloadError condition", condition, timeout=60)
    assert "spec.autoscalerRef" in ready["message"] and f"{namespace}/absent" in ready["message"]
