"""The pod-template hash and the pure builders of `rollout.workloads` (no cluster)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from rollout.api.annotations import COMMITTED_AT_ANNOTATION
from rollout.api.parse import parse_bluegreen, parse_canary
from rollout.api.spec import BlueGreen, Canary
from rollout.api.status import parse_time
from rollout.workloads import WorkloadError, knative, pod_template_hash, revision_of, workload_of
from rollout.workloads import builders as b
from rollout.workloads.hashing import REVISION_ANNOTATION, newest_revision, normalized_template
from sandbox.defaults import apply_defaults

UID = "0b6c1c7e-1111-2222-3333-444455556666"


def deployment(name: str = "podinfo", image: str = "podinfo:6.0.0", replicas: int | None = 3,
               label: str = "app") -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name, "namespace": "test", "labels": {label: name, "team": "web"},
            "annotations": {REVISION_ANNOTATION: "abc123", "rollout.gitops.dev/source-path": "apps/podinfo.yaml",
                            "sandbox.rollout.gitops.dev/unready": "true", "team.example.com/owner": "web",
                            "kubectl.kubernetes.io/last-applied-configuration": "{}"},
        },
        "spec": {
            "selector": {"matchLabels": {label: name}},
            "minReadySeconds": 5,
            "template": {
                "metadata": {"labels": {label: name, "team": "web"}, "annotations": {"prometheus.io/scrape": "true"}},
                "spec": {"containers": [{"name": "app", "image": image, "env": [{"name": "A", "value": "1"}],
                                         "ports": [{"name": "http", "containerPort": 9898}]}]},
            },
        },
    }
    if replicas is not None:
        obj["spec"]["replicas"] = replicas
    return obj


def canary(service: dict[str, Any] | None = None, uid: str = UID) -> Canary:
    return parse_canary({
        "apiVersion": "rollout.gitops.dev/v1alpha1", "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test", "uid": uid},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": service or {"port": 9898},
            "analysis": {"interval": "1m", "threshold": 2, "maxWeight": 50, "stepWeight": 10},
        },
    })


def bluegreen(preview: str | None = "podinfo-preview") -> BlueGreen:
    spec: dict[str, Any] = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": {"port": 80, "targetPort": "http"},
        "analysis": {"interval": "1m", "threshold": 2, "iterations": 3},
    }
    if preview:
        spec["previewService"] = {"name": preview}
    return parse_bluegreen({"apiVersion": "rollout.gitops.dev/v1alpha1", "kind": "BlueGreen",
                            "metadata": {"name": "podinfo", "namespace": "test", "uid": UID}, "spec": spec})


def defaulted(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as an API server stores it (the sandbox's defaulting, as a real server's)."""
    out = copy.deepcopy(obj)
    apply_defaults("apps", "deployments", out, None)
    return out


# -- hashing ------------------------------------------------------------------------------------


def test_primary_clone_hashes_equal_to_target() -> None:
    target = deployment()
    primary = b.build_primary(target, canary())
    assert primary["spec"]["template"]["metadata"]["labels"]["app"] == "podinfo-primary"
    assert pod_template_hash(primary) == pod_template_hash(target)
    # ... also once an API server has defaulted both
    assert pod_template_hash(defaulted(primary)) == pod_template_hash(defaulted(target))


@pytest.mark.parametrize("label", ["app", "name", "app.kubernetes.io/name"])
def test_every_selector_label_is_renamed_and_hashes_equal(label: str) -> None:
    target = deployment(label=label)
    primary = b.build_primary(target, canary())
    assert primary["spec"]["selector"] == {"matchLabels": {label: "podinfo-primary"}}
    assert pod_template_hash(primary) == pod_template_hash(target)


def test_hash_of_deployment_and_of_its_template_agree() -> None:
    target = deployment()
    assert pod_template_hash(target) == pod_template_hash(target["spec"]["template"])


def test_hash_is_independent_of_key_order() -> None:
    target = deployment()
    reordered = json.loads(json.dumps(target, sort_keys=True))
    reversed_keys = {k: target[k] for k in reversed(list(target))}
    assert pod_template_hash(reordered) == pod_template_hash(target) == pod_template_hash(reversed_keys)


def _set(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    node = out
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    if isinstance(node, list):
        node[int(keys[-1])] = value
    else:
        node[keys[-1]] = value
    return out


@pytest.mark.parametrize("path,value", [
    ("spec.replicas", 7),
    ("spec.minReadySeconds", 30),
    ("metadata.annotations", {REVISION_ANNOTATION: "def456"}),
    ("metadata.labels", {"app": "podinfo", "version": "2"}),
    ("spec.template.metadata.labels", {"app": "podinfo", "team": "web", "pod-template-hash": "5d8f7c9b"}),
    ("spec.template.metadata.annotations", {"prometheus.io/scrape": "true", REVISION_ANNOTATION: "x"}),
    ("spec.template.metadata.annotations", {"prometheus.io/scrape": "true", "sandbox.rollout.gitops.dev/x": "1"}),
    ("spec.template.metadata.name", "ignored"),
    ("spec.template.spec.nodeName", None),
    ("status", {"replicas": 3, "readyReplicas": 1}),
], ids=lambda v: str(v)[:30])
def test_hash_ignores(path: str, value: Any) -> None:
    target = deployment()
    assert pod_template_hash(_set(target, path, value)) == pod_template_hash(target)


@pytest.mark.parametrize("path,value", [
    ("spec.template.spec.containers.0.image", "podinfo:6.0.1"),
    ("spec.template.spec.containers.0.env", [{"name": "A", "value": "2"}]),
    ("spec.template.spec.containers.0.env", [{"name": "A", "value": "1"}, {"name": "B", "value": "1"}]),
    ("spec.template.metadata.labels", {"app": "podinfo", "team": "api"}),
    ("spec.template.metadata.annotations", {"prometheus.io/scrape": "false"}),
    ("spec.template.metadata.annotations", {"prometheus.io/scrape": "true", "notrollout.gitops.dev/x": "1"}),
    ("spec.template.metadata.annotations",
     {"prometheus.io/scrape": "true", "kubectl.kubernetes.io/restartedAt": "2026-11-21T22:00:00Z"}),
    ("spec.template.spec.serviceAccountName", "other"),
    ("spec.template.spec.containers.0.resources", {}),
], ids=lambda v: str(v)[:40])
def test_hash_changes_with_what_pods_run(path: str, value: Any) -> None:
    target = deployment()
    assert pod_template_hash(_set(target, path, value)) != pod_template_hash(target)


def test_container_order_matters() -> None:
    target = deployment()
    containers = target["spec"]["template"]["spec"]["containers"]
    two = _set(target, "spec.template.spec.containers", [*containers, {"name": "side", "image": "envoy"}])
    swapped = _set(two, "spec.template.spec.containers", list(reversed(two["spec"]["template"]["spec"]["containers"])))
    assert pod_template_hash(two) != pod_template_hash(swapped)


def test_normalizing_does_not_touch_the_input() -> None:
    target = deployment()
    before = copy.deepcopy(target)
    normalized_template(_set(target, "spec.template.metadata.labels.app", "podinfo-primary"))
    pod_template_hash(target)
    assert target == before


def test_revision_comes_from_the_deployment_annotation() -> None:
    assert revision_of(deployment()) == "abc123"
    assert revision_of(_set(deployment(), "metadata.annotations", {})) is None


# -- the primary --------------------------------------------------------------------------------


def test_build_primary() -> None:
    release = canary()
    primary = b.build_primary(deployment(), release)
    meta = primary["metadata"]
    assert (meta["name"], meta["namespace"]) == ("podinfo-primary", "test")
    assert meta["labels"] == {"app": "podinfo-primary", "team": "web"}
    # the revision is copied; the source path, last-applied and other bookkeeping are not
    assert meta["annotations"] == {REVISION_ANNOTATION: "abc123", "team.example.com/owner": "web"}
    assert meta["ownerReferences"] == [{
        "apiVersion": "rollout.gitops.dev/v1alpha1", "kind": "Canary", "name": "podinfo", "uid": UID,
        "controller": True, "blockOwnerDeletion": True,
    }]
    assert primary["spec"]["replicas"] == 3
    assert primary["spec"]["minReadySeconds"] == 5
    assert b.owned_by(primary, release)


@pytest.mark.parametrize("replicas,annotation,expected", [
    (3, None, 3), (None, None, 1), (0, "4", 4), (0, None, 1), (0, "garbage", 1),
])
def test_primary_replicas(replicas: int | None, annotation: str | None, expected: int) -> None:
    target = deployment(replicas=replicas)
    if annotation is not None:
        target["metadata"]["annotations"][b.REPLICAS_ANNOTATION] = annotation
    assert b.build_primary(target, canary())["spec"]["replicas"] == expected


def test_no_owner_reference_without_a_uid() -> None:
    assert "ownerReferences" not in b.build_primary(deployment(), canary(uid=""))["metadata"]


def test_a_target_without_a_known_selector_label_is_a_permanent_error() -> None:
    target = deployment()
    target["spec"]["selector"] = {"matchLabels": {"tier": "web"}}
    with pytest.raises(WorkloadError, match="selects on none of the labels") as info:
        b.build_primary(target, canary())
    assert info.value.temporary is False


def test_promotion_copies_template_and_revision_and_then_is_done() -> None:
    release = canary()
    primary = defaulted(b.build_primary(deployment(), release))
    primary["metadata"]["resourceVersion"] = "42"
    primary["status"] = {"replicas": 3}
    new_target = defaulted(deployment(image="podinfo:6.0.1"))
    new_target["metadata"]["annotations"][REVISION_ANNOTATION] = "def456"
    assert pod_template_hash(primary) != pod_template_hash(new_target)
    promoted = b.promoted_primary(primary, new_target)
    assert promoted is not None
    assert pod_template_hash(promoted) == pod_template_hash(new_target)
    assert promoted["metadata"]["annotations"][REVISION_ANNOTATION] == "def456"
    assert promoted["metadata"]["resourceVersion"] == "42"  # a replace, guarded by what was read
    assert promoted["spec"]["selector"] == {"matchLabels": {"app": "podinfo-primary"}}
    assert promoted["spec"]["template"]["metadata"]["labels"]["app"] == "podinfo-primary"
    assert "status" not in promoted
    assert b.promoted_primary(promoted, new_target) is None


def test_promotion_takes_replicas_from_a_running_target_only() -> None:
    primary = b.build_primary(deployment(replicas=3), canary())
    assert b.promoted_primary(primary, deployment(image="v2", replicas=5))["spec"]["replicas"] == 5  # type: ignore[index]
    assert b.promoted_primary(primary, deployment(image="v2", replicas=0))["spec"]["replicas"] == 3  # type: ignore[index]


# -- scaling and readiness -------------------------------------------------------------------------


def test_scale_down_records_and_scale_up_restores() -> None:
    target = deployment(replicas=3)
    down = b.scale_patch(target, None, up=False)
    assert down == {"metadata": {"annotations": {b.REPLICAS_ANNOTATION: "3"}}, "spec": {"replicas": 0}}
    scaled = _set(target, "spec.replicas", 0)
    scaled["metadata"]["annotations"][b.REPLICAS_ANNOTATION] = "3"
    assert b.scale_patch(scaled, None, up=False) is None  # never records zero over the count
    assert b.scale_patch(scaled, None, up=True) == {
        "metadata": {"annotations": {b.REPLICAS_ANNOTATION: None}}, "spec": {"replicas": 3}}
    # the primary's count wins: the canary is sized like what serves now
    primary = b.build_primary(_set(target, "spec.replicas", 5), canary())
    assert b.scale_patch(scaled, primary, up=True)["spec"]["replicas"] == 5  # type: ignore[index]
    assert b.scale_patch(target, primary, up=True) is None
    assert b.scale_patch(_set(target, "spec.replicas", 0), None, up=True)["spec"]["replicas"] == 1  # type: ignore[index]


def _status(**kw: int) -> dict[str, Any]:
    return {k: v for k, v in kw.items()}


@pytest.mark.parametrize("replicas,generation,status,ready", [
    (2, 3, _status(observedGeneration=3, replicas=2, updatedReplicas=2, readyReplicas=2, availableReplicas=2), True),
    (2, 4, _status(observedGeneration=3, replicas=2, updatedReplicas=2, readyReplicas=2, availableReplicas=2), False),
    (2, 3, _status(observedGeneration=3, replicas=3, updatedReplicas=2, readyReplicas=3, availableReplicas=3), False),
    (2, 3, _status(observedGeneration=3, replicas=2, updatedReplicas=1, readyReplicas=2, availableReplicas=2), False),
    (2, 3, _status(observedGeneration=3, replicas=2, updatedReplicas=2, readyReplicas=1, availableReplicas=1), False),
    (0, 3, _status(observedGeneration=3), False),
    (1, 1, {}, False),
], ids=["rolled-out", "old-generation", "old-pods-left", "not-updated", "unavailable", "scaled-to-zero", "new"])
def test_readiness(replicas: int, generation: int, status: dict[str, Any], ready: bool) -> None:
    obj = _set(_set(deployment(replicas=replicas), "metadata.generation", generation), "status", status)
    assert b.is_ready(obj) is ready
    assert workload_of(obj).ready is ready


def test_workload_of() -> None:
    assert workload_of(None) == workload_of(None)
    missing = workload_of(None)
    assert (missing.exists, missing.spec_hash, missing.ready) == (False, None, False)
    seen = workload_of(deployment())
    assert (seen.exists, seen.spec_hash, seen.revision) == (True, pod_template_hash(deployment()), "abc123")


# -- services -----------------------------------------------------------------------------------


def test_three_services_with_flagger_ports_and_selectors() -> None:
    release = canary({"port": 80, "targetPort": 9898, "portName": "http-web", "appProtocol": "http",
                      "apex": {"annotations": {"a": "b"}}})
    services = dict(b.desired_services(release, deployment()))
    assert [s["metadata"]["name"] for s in services.values()] == ["podinfo", "podinfo-primary", "podinfo-canary"]
    assert services["apex"]["spec"]["selector"] == {"app": "podinfo-primary"}
    assert services["primary"]["spec"]["selector"] == {"app": "podinfo-primary"}
    assert services["canary"]["spec"]["selector"] == {"app": "podinfo"}
    assert services["apex"]["spec"]["ports"] == [
        {"name": "http-web", "port": 80, "targetPort": 9898, "protocol": "TCP", "appProtocol": "http"}]
    assert services["apex"]["metadata"]["annotations"] == {"a": "b"}
    assert "annotations" not in services["canary"]["metadata"]
    assert all(b.owned_by(s, release) for s in services.values())


def test_service_name_and_default_target_port() -> None:
    release = canary({"name": "web", "port": 9898})
    services = dict(b.desired_services(release, deployment()))
    assert [s["metadata"]["name"] for s in services.values()] == ["web", "web-primary", "web-canary"]
    assert services["canary"]["spec"]["ports"] == [{"name": "http", "port": 9898, "targetPort": 9898,
                                                    "protocol": "TCP"}]


def test_bluegreen_preview_service_selects_the_new_version() -> None:
    services = dict(b.desired_services(bluegreen(), deployment()))
    assert services["preview"]["metadata"]["name"] == "podinfo-preview"
    assert services["preview"]["spec"]["selector"] == {"app": "podinfo"}
    assert services["preview"]["spec"]["ports"][0]["targetPort"] == "http"
    assert "preview" not in dict(b.desired_services(bluegreen(preview=None), deployment()))


def _stored(service: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(service)
    apply_defaults("", "services", out, None)
    out["metadata"]["resourceVersion"] = "7"
    return out


def test_reconciling_what_was_created_changes_nothing() -> None:
    release, target = canary(), deployment()
    for role, desired in b.desired_services(release, target):
        assert b.reconciled_service(_stored(desired), desired, role, release, target) is None


def test_apex_routed_by_the_router_is_left_alone_but_ports_follow_the_spec() -> None:
    release, target = canary(), deployment()
    desired = dict(b.desired_services(release, target))["apex"]
    switched = _set(_stored(desired), "spec.selector", {"app": "podinfo"})
    assert b.reconciled_service(switched, desired, "apex", release, target) is None
    moved = canary({"port": 8080})
    new = b.reconciled_service(switched, dict(b.desired_services(moved, target))["apex"], "apex", moved, target)
    assert new is not None
    assert new["spec"]["selector"] == {"app": "podinfo"}
    assert [p["port"] for p in new["spec"]["ports"]] == [8080]


def test_a_foreign_apex_is_adopted_with_its_selector_recorded_and_given_back() -> None:
    release, target = canary(), deployment()
    desired = dict(b.desired_services(release, target))["apex"]
    theirs = {"apiVersion": "v1", "kind": "Service",
              "metadata": {"name": "podinfo", "namespace": "test", "resourceVersion": "3"},
              "spec": {"selector": {"app": "podinfo", "tier": "web"},
                       "ports": [{"name": "http", "port": 9898, "nodePort": 30080}]}}
    adopted = b.reconciled_service(theirs, desired, "apex", release, target)
    assert adopted is not None
    assert adopted["spec"]["selector"] == {"app": "podinfo-primary"}
    assert adopted["spec"]["ports"][0]["nodePort"] == 30080
    assert "ownerReferences" not in adopted["metadata"]
    back = b.released_apex(adopted, release, target)
    assert back is not None
    assert back["spec"]["selector"] == {"app": "podinfo", "tier": "web"}
    assert b.ORIGINAL_SELECTOR_ANNOTATION not in back["metadata"].get("annotations", {})


def test_an_owned_apex_is_released_to_the_target_or_kept_on_the_primary() -> None:
    release, target = canary(), deployment()
    apex = _stored(dict(b.desired_services(release, target))["apex"])
    back = b.released_apex(apex, release, target)
    assert back is not None
    assert back["spec"]["selector"] == {"app": "podinfo"}
    assert "ownerReferences" not in back["metadata"]
    assert b.released_apex(back, release, target) is None
    kept = b.released_apex(apex, release, target, keep_primary=True)
    assert kept is not None
    assert kept["spec"]["selector"] == {"app": "podinfo-primary"}
    assert not b.owned_by(kept, release)


# -- Flagger's portDiscovery and service metadata ------------------------------------------------


def _with_ports(*containers: dict[str, Any]) -> dict[str, Any]:
    target = deployment()
    target["spec"]["template"]["spec"]["containers"] = list(containers)
    return target


def test_port_discovery_adds_the_targets_other_container_ports_as_flagger_names_them() -> None:
    target = _with_ports(
        {"name": "app", "image": "i", "ports": [{"name": "http", "containerPort": 9898},
                                                 {"name": "http-metrics", "containerPort": 9797},
                                                 {"containerPort": 9999}]},
        {"name": "grpc", "image": "i", "ports": [{"name": "grpc", "containerPort": 9090}]},
        {"name": "istio-proxy", "image": "i", "ports": [{"name": "http-envoy-prom", "containerPort": 15090}]},
    )
    release = canary({"port": 80, "targetPort": 9898, "portDiscovery": True})
    for role, service in b.desired_services(release, target):
        assert service["spec"]["ports"] == [
            {"name": "http", "port": 80, "targetPort": 9898, "protocol": "TCP"},
            {"name": "grpc", "port": 9090, "targetPort": 9090, "protocol": "TCP"},
            {"name": "http-metrics", "port": 9797, "targetPort": 9797, "protocol": "TCP"},
            {"name": "tcp-app-2", "port": 9999, "targetPort": 9999, "protocol": "TCP"},
        ], role


def test_port_discovery_skips_the_service_port_by_target_port_name_or_port() -> None:
    target = _with_ports({"name": "app", "image": "i", "ports": [{"name": "http", "containerPort": 8080},
                                                                  {"name": "admin", "containerPort": 9000}]})
    by_name = canary({"port": 80, "targetPort": "http", "portDiscovery": True})
    assert [p["name"] for p in b.service_ports(by_name, target=target)] == ["http", "admin"]
    by_port = canary({"port": 8080, "portDiscovery": True})
    assert [(p["name"], p["port"]) for p in b.service_ports(by_port, target=target)] == [("http", 8080),
                                                                                        ("admin", 9000)]


def test_without_port_discovery_only_the_service_port() -> None:
    target = _with_ports({"name": "app", "image": "i", "ports": [{"name": "admin", "containerPort": 9000}]})
    assert [p["port"] for p in b.service_ports(canary({"port": 80}), target=target)] == [80]


def test_discovered_ports_are_reconciled_onto_an_existing_service() -> None:
    release = canary({"port": 9898, "portDiscovery": True})
    before = dict(b.desired_services(canary(), deployment()))["canary"]
    target = _with_ports({"name": "app", "image": "i", "ports": [{"name": "http", "containerPort": 9898},
                                                                  {"name": "admin", "containerPort": 9000}]})
    desired = dict(b.desired_services(release, target))["canary"]
    new = b.reconciled_service(_stored(before), desired, "canary", release, target)
    assert new is not None
    assert [(p["name"], p["port"]) for p in new["spec"]["ports"]] == [("http", 9898), ("admin", 9000)]


def test_apex_primary_and_canary_carry_their_own_labels_and_annotations() -> None:
    release = canary({"port": 9898,
                      "apex": {"labels": {"tier": "edge"}, "annotations": {"a": "apex"}},
                      "primary": {"labels": {"role": "stable"}},
                      "canary": {"annotations": {"a": "canary"}}})
    services = dict(b.desired_services(release, deployment()))
    meta = {role: s["metadata"] for role, s in services.items()}
    assert meta["apex"]["labels"] == {"tier": "edge", "app": "podinfo"}
    assert meta["apex"]["annotations"] == {"a": "apex"}
    assert meta["primary"]["labels"] == {"role": "stable", "app": "podinfo-primary"}
    assert "annotations" not in meta["primary"]
    assert meta["canary"]["labels"] == {"app": "podinfo-canary"}
    assert meta["canary"]["annotations"] == {"a": "canary"}


def _applied(revision: str | None, at: str | None) -> dict[str, Any]:
    annotations = {}
    if revision:
        annotations[REVISION_ANNOTATION] = revision
    if at:
        annotations[COMMITTED_AT_ANNOTATION] = at
    return {"metadata": {"annotations": annotations}}


def test_a_change_is_the_revision_of_the_newest_object_a_gitsource_applied() -> None:
    # Mid-apply: the ConfigMap carries the new commit, the Deployment still the old one.
    target = _applied("old", "2026-12-04T10:00:00Z")
    config = _applied("new", "2026-12-04T11:00:00Z")
    assert newest_revision([target, config]) == ("new", parse_time("2026-12-04T11:00:00Z"))
    # The target wins ties and older configs; objects not from Git are left out.
    assert newest_revision([target, _applied("older", "2026-12-04T09:00:00Z"), _applied(None, None)])[0] == "old"
    assert newest_revision([_applied(None, None)]) == (None, None)


# --- a Knative Service target (rollout.workloads.knative) ------------------------------------------


def knative_service(image: str = "podinfo:6.0.0", annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": "test", "resourceVersion": "3",
                     "annotations": {REVISION_ANNOTATION: "abc123", **(annotations or {})}},
        "spec": {"template": {"metadata": {"annotations": {"autoscaling.knative.dev/min-scale": "1"}},
                              "spec": {"containers": [{"name": "user-container", "image": image}]}}},
        "status": {"latestCreatedRevisionName": "podinfo-00002"},
    }


def revision(service: dict[str, Any], name: str, ready: bool = True) -> dict[str, Any]:
    """The Revision Knative makes of the Service's template: its labels, annotations and spec, plus
    Knative's own bookkeeping."""
    template = service["spec"]["template"]
    return {
        "apiVersion": "serving.knative.dev/v1", "kind": "Revision",
        "metadata": {"name": name, "namespace": "test", "generation": 1,
                     "labels": {**template["metadata"].get("labels", {}), "serving.knative.dev/service": "podinfo",
                                "serving.knative.dev/configurationGeneration": name[-1]},
                     "annotations": {**template["metadata"].get("annotations", {}),
                                     "serving.knative.dev/creator": "admin"}},
        "spec": copy.deepcopy(template["spec"]),
        "status": {"observedGeneration": 1,
                   "conditions": [{"type": "Ready", "status": "True" if ready else "Unknown"}]},
    }


def test_a_knative_revision_hashes_as_the_template_it_was_made_of() -> None:
    service = knative_service()
    assert knative.revision_hash(revision(service, "podinfo-00001")) == knative.service_hash(service)
    assert knative.revision_hash(revision(knative_service("podinfo:6.0.1"), "podinfo-00002")) != \
        knative.service_hash(service)


def test_the_knative_target_is_ready_once_the_revision_of_its_template_is() -> None:
    old, new = knative_service(), knative_service("podinfo:6.0.1")
    assert knative.target_of(new, revision(new, "podinfo-00002")).ready
    assert not knative.target_of(new, revision(new, "podinfo-00002", ready=False)).ready
    assert not knative.target_of(new, revision(old, "podinfo-00001")).ready  # Knative has not made it yet
    target = knative.target_of(new, None)
    assert target.exists and not target.ready and target.revision == "abc123"
    assert not knative.target_of(None, None).exists


def test_knative_promotion_records_the_revision_and_its_git_revision() -> None:
    service = knative_service()
    promoted = knative.promoted_service(service, "podinfo-00002")
    assert promoted is not None and "status" not in promoted
    assert promoted["metadata"]["annotations"] == {REVISION_ANNOTATION: "abc123",
                                                   "flagger.app/primary-revision": "podinfo-00002",
                                                   "rollout.gitops.dev/promoted-revision": "abc123"}
    assert promoted["spec"] == service["spec"] and promoted["metadata"]["resourceVersion"] == "3"
    assert knative.promoted_service({**promoted, "status": service["status"]}, "podinfo-00002") is None
    primary = knative.primary_of(promoted, revision(service, "podinfo-00002"))
    assert (primary.exists, primary.ready, primary.revision) == (True, True, "abc123")
    assert not knative.primary_of(promoted, None).exists


@pytest.mark.parametrize(("in_flight", "traffic"), [
    (False, [{"latestRevision": True, "percent": 100}]),  # Knative's default: the Service is the user's again
    (True, [{"latestRevision": True, "percent": 0}, {"revisionName": "podinfo-00001", "percent": 100}]),
])
def test_a_deleted_knative_release_gives_the_service_back(in_flight: bool, traffic: list[dict[str, Any]]) -> None:
    pinned = [{"latestRevision": True, "percent": 0}, {"revisionName": "podinfo-00001", "percent": 100}]
    service = knative_service(annotations={"flagger.app/primary-revision": "podinfo-00001",
                                           "rollout.gitops.dev/promoted-revision": "abc123"})
    service["spec"]["traffic"] = pinned
    released = knative.released_service(service, in_flight=in_flight)
    assert released is not None and released["spec"]["traffic"] == traffic
    assert released["metadata"]["annotations"] == {REVISION_ANNOTATION: "abc123"}
    assert knative.released_service(released, in_flight=in_flight) is None
