"""Conformance of the cluster the e2e tests use with documented Kubernetes API behaviour.

Each test states a behaviour from the Kubernetes API documentation (API concepts,
object metadata, custom resources, garbage collection, finalizers, Deployments) and
checks it with the official client or raw HTTP. They run against the embedded sandbox by
default and against a real cluster with `ROLLOUT_E2E_KUBECONFIG`, so the sandbox cannot
drift from the real thing unnoticed. The last test runs the real kopf runtime.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import kopf
import kubernetes
import pytest
from kubernetes import watch

from rollout.api.kinds import CANARY, GROUP, PLURALS, VERSION
from sandbox import UNREADY_ANNOTATION

from .conftest import Cluster

T = TypeVar("T")

CANARIES = PLURALS[CANARY]
_Watch: Any = watch.Watch  # untyped in the client package
PAUSE_IMAGE = "registry.k8s.io/pause:3.9"  # becomes ready on a real cluster without probes


def eventually(check: Callable[[], T], timeout: float = 15.0, interval: float = 0.1) -> T:
    """Poll `check` until it returns a truthy value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s; last result: {result!r}")
        time.sleep(interval)


def core(cluster: Cluster) -> Any:  # Any: the tests read optional fields freely
    return kubernetes.client.CoreV1Api(cluster.client)


def apps(cluster: Cluster) -> Any:  # Any: the tests read optional fields freely
    return kubernetes.client.AppsV1Api(cluster.client)


def custom(cluster: Cluster) -> Any:  # Any: the tests read optional fields freely
    return kubernetes.client.CustomObjectsApi(cluster.client)


def canary(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Canary",
        "metadata": {"name": name},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"},
            "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10},
            **spec,
        },
    }


def deployment(name: str, replicas: int = 2, **annotations: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": PAUSE_IMAGE}]},
            },
        },
    }


def status_code(call: Callable[[], Any]) -> int:
    with pytest.raises(kubernetes.client.ApiException) as info:
        call()
    return int(info.value.status)


def absent(read: Callable[[], Any]) -> bool:
    """Whether reading the object answers 404 (for polling; other errors propagate)."""
    try:
        read()
    except kubernetes.client.ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


# -- object metadata and writes ------------------------------------------------------------------


def test_create_answers_201_with_server_set_metadata_and_namespace_from_url(
    cluster: Cluster, namespace: str
) -> None:
    code, body = cluster.raw(
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps",
        {"metadata": {"name": "one"}, "data": {"k": "v"}},
    )
    assert code == 201
    meta = body["metadata"]
    assert meta["namespace"] == namespace
    assert meta["uid"] and meta["resourceVersion"] and meta["creationTimestamp"].endswith("Z")
    assert body["data"] == {"k": "v"}


def test_create_of_an_existing_name_is_409_already_exists(cluster: Cluster, namespace: str) -> None:
    core(cluster).create_namespaced_config_map(namespace, {"metadata": {"name": "dup"}})
    code, body = cluster.raw(
        "POST", f"/api/v1/namespaces/{namespace}/configmaps", {"metadata": {"name": "dup"}}
    )
    assert (code, body["reason"]) == (409, "AlreadyExists")


def test_namespace_in_body_must_match_the_url(cluster: Cluster, namespace: str) -> None:
    code, _ = cluster.raw(
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps",
        {"metadata": {"name": "x", "namespace": "default"}},
    )
    assert code == 400


def test_generate_name_appends_a_random_suffix(cluster: Cluster, namespace: str) -> None:
    made = [
        core(cluster).create_namespaced_config_map(namespace, {"metadata": {"generateName": "gen-"}})
        for _ in range(2)
    ]
    names = {m.metadata.name for m in made}
    assert len(names) == 2
    assert all(n.startswith("gen-") and len(n) > len("gen-") for n in names)


def test_every_write_changes_resource_version_and_a_stale_one_is_409(
    cluster: Cluster, namespace: str
) -> None:
    api = core(cluster)
    first = api.create_namespaced_config_map(namespace, {"metadata": {"name": "cm"}, "data": {"a": "1"}})
    first.data = {"a": "2"}
    second = api.replace_namespaced_config_map("cm", namespace, first)
    assert second.metadata.resource_version != first.metadata.resource_version
    assert second.metadata.uid == first.metadata.uid
    first.data = {"a": "3"}  # still carries the old resourceVersion
    assert status_code(lambda: api.replace_namespaced_config_map("cm", namespace, first)) == 409
    stale_patch = {"metadata": {"resourceVersion": first.metadata.resource_version}, "data": {"a": "4"}}
    code, body = cluster.raw(
        "PATCH",
        f"/api/v1/namespaces/{namespace}/configmaps/cm",
        stale_patch,
        content_type="application/merge-patch+json",
    )
    assert (code, body["reason"]) == (409, "Conflict")
    assert api.read_namespaced_config_map("cm", namespace).data == {"a": "2"}


def test_a_lease_is_a_compare_and_swap_lock(cluster: Cluster, namespace: str) -> None:
    """Leader election (client-go's, and rollout's) rests on this: a Lease update carrying a stale
    resourceVersion is refused with 409, so of two candidates that read the same Lease only one wins;
    a second create of the same name is 409 AlreadyExists; MicroTime fields keep their microseconds."""
    api: Any = kubernetes.client.CoordinationV1Api(cluster.client)
    spec = {"holderIdentity": "a", "leaseDurationSeconds": 15, "acquireTime": "2026-12-04T10:00:00.123456Z",
            "renewTime": "2026-12-04T10:00:00.123456Z", "leaseTransitions": 0}
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "lock"}, "spec": spec}
    created = api.create_namespaced_lease(namespace, lease)
    assert status_code(lambda: api.create_namespaced_lease(namespace, lease)) == 409
    read = api.read_namespaced_lease("lock", namespace)
    assert read.spec.renew_time.microsecond == 123456 and read.spec.holder_identity == "a"
    seen = read.metadata.resource_version

    def take(holder: str) -> dict[str, Any]:
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": "lock", "resourceVersion": seen},
                "spec": {**spec, "holderIdentity": holder, "leaseTransitions": 1}}

    won = api.replace_namespaced_lease("lock", namespace, take("b"))
    assert won.metadata.resource_version not in (seen, created.metadata.resource_version)
    assert status_code(lambda: api.replace_namespaced_lease("lock", namespace, take("c"))) == 409
    code, body = cluster.raw("PUT", f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/lock", take("c"))
    assert (code, body["reason"]) == (409, "Conflict")
    after = api.read_namespaced_lease("lock", namespace)
    assert (after.spec.holder_identity, after.spec.lease_transitions) == ("b", 1)


def test_json_patch_with_a_failing_test_op_is_422(cluster: Cluster, namespace: str) -> None:
    api = core(cluster)
    cm = api.create_namespaced_config_map(namespace, {"metadata": {"name": "cm"}, "data": {"a": "1"}})
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "not-" + cm.metadata.resource_version},
        {"op": "replace", "path": "/data/a", "value": "2"},
    ]
    code, _ = cluster.raw(
        "PATCH",
        f"/api/v1/namespaces/{namespace}/configmaps/cm",
        ops,
        content_type="application/json-patch+json",
    )
    assert code == 422
    ops[0]["value"] = cm.metadata.resource_version
    code, body = cluster.raw(
        "PATCH",
        f"/api/v1/namespaces/{namespace}/configmaps/cm",
        ops,
        content_type="application/json-patch+json",
    )
    assert (code, body["data"]) == (200, {"a": "2"})


def test_merge_and_strategic_merge_patches(cluster: Cluster, namespace: str) -> None:
    cm = {"metadata": {"name": "cm", "labels": {"a": "1", "b": "2"}}, "data": {"k": "v"}}
    core(cluster).create_namespaced_config_map(namespace, cm)
    code, body = cluster.raw(
        "PATCH",
        f"/api/v1/namespaces/{namespace}/configmaps/cm",
        {"metadata": {"labels": {"a": None, "c": "3"}}},
        content_type="application/merge-patch+json",
    )
    assert code == 200 and body["metadata"]["labels"] == {"b": "2", "c": "3"}

    dep = deployment("web")
    dep["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": PAUSE_IMAGE})
    apps(cluster).create_namespaced_deployment(namespace, dep)
    # The client sends dict patches of built-in kinds as strategic merge: containers merge by name.
    patched = apps(cluster).patch_namespaced_deployment(
        "web",
        namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "busybox:1.36"}]}}}},
    )
    images = {c.name: c.image for c in patched.spec.template.spec.containers}
    assert images == {"main": PAUSE_IMAGE, "side": "busybox:1.36"}

    custom(cluster).create_namespaced_custom_object(GROUP, VERSION, namespace, CANARIES, canary("c"))
    code, body = cluster.raw(
        "PATCH",
        f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{CANARIES}/c",
        {"spec": {"suspend": True}},
        content_type="application/strategic-merge-patch+json",
    )
    assert code == 415  # custom resources do not support strategic merge patch


def test_server_side_apply_creates_then_merges_and_forgets_unapplied_fields(
    cluster: Cluster, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps/applied"
    manifest = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  labels: {team: a, tier: web}\n"
        "data:\n  one: '1'\n  two: '2'\n"
    )
    query = {"fieldManager": "conformance"}
    code, body = cluster.raw(
        "PATCH", path, manifest, content_type="application/apply-patch+yaml", query=query
    )
    assert code == 201 and body["data"] == {"one": "1", "two": "2"}
    core(cluster).patch_namespaced_config_map("applied", namespace, {"data": {"other": "x"}})
    manifest = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  labels: {team: a}\n"
        "data:\n  one: '1'\n"
    )
    code, body = cluster.raw(
        "PATCH", path, manifest, content_type="application/apply-patch+yaml", query=query
    )
    assert code == 200
    assert body["data"] == {"one": "1", "other": "x"}  # "two" was ours and is gone; "other" is not ours
    assert body["metadata"]["labels"] == {"team": "a"}
    code, _ = cluster.raw("PATCH", path, manifest, content_type="application/apply-patch+yaml")
    assert code == 400  # fieldManager is required for apply


def test_dry_run_validates_and_answers_like_a_write_but_stores_nothing(cluster: Cluster, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps/dry"
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dry\ndata:\n  one: '1'\n"
    query = {"fieldManager": "conformance", "dryRun": "All"}
    code, body = cluster.raw("PATCH", path, manifest, content_type="application/apply-patch+yaml", query=query)
    assert code == 201 and body["data"] == {"one": "1"}
    assert absent(lambda: core(cluster).read_namespaced_config_map("dry", namespace))
    bad = {"metadata": {"name": "Not_A_Name"}, "data": {}}
    assert status_code(lambda: core(cluster).create_namespaced_config_map(namespace, bad, dry_run="All")) == 422
    core(cluster).create_namespaced_config_map(namespace, {"metadata": {"name": "dry"}, "data": {"one": "1"}})
    before = core(cluster).read_namespaced_config_map("dry", namespace)
    changed = core(cluster).patch_namespaced_config_map("dry", namespace, {"data": {"one": "2"}}, dry_run="All")
    assert changed.data == {"one": "2"}
    after = core(cluster).read_namespaced_config_map("dry", namespace)
    assert after.data == {"one": "1"} and after.metadata.resource_version == before.metadata.resource_version


# -- generation and the status subresource -------------------------------------------------------


def test_generation_counts_spec_changes_only(cluster: Cluster, namespace: str) -> None:
    api = custom(cluster)
    created = api.create_namespaced_custom_object(GROUP, VERSION, namespace, CANARIES, canary("gen"))
    assert created["metadata"]["generation"] == 1
    changed = api.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, CANARIES, "gen", {"spec": {"suspend": True}}
    )
    assert changed["metadata"]["generation"] == 2
    relabelled = api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        CANARIES,
        "gen",
        {"metadata": {"labels": {"x": "y"}, "annotations": {"a": "b"}}},
    )
    assert relabelled["metadata"]["generation"] == 2
    assert relabelled["metadata"]["resourceVersion"] != changed["metadata"]["resourceVersion"]
    with_status = api.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, CANARIES, "gen", {"status": {"phase": "Waiting"}}
    )
    assert with_status["metadata"]["generation"] == 2


def test_status_subresource_isolates_status_from_the_main_resource(cluster: Cluster, namespace: str) -> None:
    api = custom(cluster)
    body = canary("iso")
    body["status"] = {"phase": "Succeeded"}
    created = api.create_namespaced_custom_object(GROUP, VERSION, namespace, CANARIES, body)
    assert "status" not in created or created["status"].get("phase") is None  # status is ignored on create
    main = api.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, CANARIES, "iso", {"spec": {"suspend": True}, "status": {"phase": "Failed"}}
    )
    assert main["spec"]["suspend"] is True and (main.get("status") or {}).get("phase") is None
    sub = api.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        CANARIES,
        "iso",
        {"spec": {"suspend": False}, "status": {"phase": "Waiting"}},
    )
    assert sub["status"]["phase"] == "Waiting" and sub["spec"]["suspend"] is True
    sub["spec"]["suspend"] = False
    sub["status"]["phase"] = "Progressing"
    replaced = api.replace_namespaced_custom_object(GROUP, VERSION, namespace, CANARIES, "iso", sub)
    assert replaced["spec"]["suspend"] is False and replaced["status"]["phase"] == "Waiting"


# -- list and watch ------------------------------------------------------------------------------


def test_label_selectors_filter_lists(cluster: Cluster, namespace: str) -> None:
    api = core(cluster)
    for name, labels in {
        "a": {"app": "x", "tier": "web"},
        "b": {"app": "x", "tier": "db"},
        "c": {"app": "y"},
    }.items():
        api.create_namespaced_config_map(namespace, {"metadata": {"name": name, "labels": labels}})

    def names(selector: str) -> set[str]:
        return {
            i.metadata.name for i in api.list_namespaced_config_map(namespace, label_selector=selector).items
        }

    assert names("app=x") == {"a", "b"}
    assert names("app=x,tier!=db") == {"a"}
    assert names("app==y") == {"c"}
    assert names("tier!=db") == {"a", "c"}  # != also matches objects without the label
    assert names("tier in (web,db)") == {"a", "b"}
    assert names("!tier") == {"c"}


def test_watch_from_a_resource_version_sees_only_later_events_and_honours_selectors(
    cluster: Cluster, namespace: str
) -> None:
    api = core(cluster)
    api.create_namespaced_config_map(namespace, {"metadata": {"name": "before", "labels": {"w": "1"}}})
    since = api.list_namespaced_config_map(namespace).metadata.resource_version
    api.create_namespaced_config_map(namespace, {"metadata": {"name": "after", "labels": {"w": "1"}}})
    api.create_namespaced_config_map(namespace, {"metadata": {"name": "other", "labels": {"w": "2"}}})
    api.patch_namespaced_config_map("after", namespace, {"data": {"k": "v"}})
    api.delete_namespaced_config_map("after", namespace)
    started = time.monotonic()
    events = [
        (e["type"], e["object"].metadata.name)
        for e in _Watch().stream(
            api.list_namespaced_config_map,
            namespace,
            resource_version=since,
            label_selector="w=1",
            timeout_seconds=2,
        )
    ]
    elapsed = time.monotonic() - started
    assert events == [("ADDED", "after"), ("MODIFIED", "after"), ("DELETED", "after")]
    assert 1.5 <= elapsed < 10  # timeoutSeconds ends the stream


def test_watch_without_resource_version_starts_with_the_current_objects(
    cluster: Cluster, namespace: str
) -> None:
    api = core(cluster)
    api.create_namespaced_config_map(namespace, {"metadata": {"name": "existing"}})
    events = [
        (e["type"], e["object"].metadata.name)
        for e in _Watch().stream(api.list_namespaced_config_map, namespace, timeout_seconds=1)
    ]
    assert events == [("ADDED", "existing")]


# -- discovery -----------------------------------------------------------------------------------


def test_discovery_serves_version_groups_and_our_crds(cluster: Cluster) -> None:
    code, version = cluster.raw("GET", "/version")
    assert code == 200 and version["major"] and version["gitVersion"]
    code, core_api = cluster.raw("GET", "/api")
    assert code == 200 and "v1" in core_api["versions"]
    code, groups = cluster.raw("GET", "/apis")
    by_name = {g["name"]: g for g in groups["groups"]}
    for group in (GROUP, "apps", "coordination.k8s.io", "apiextensions.k8s.io"):
        assert group in by_name
    assert by_name[GROUP]["preferredVersion"]["version"] == VERSION
    code, resources = cluster.raw("GET", f"/apis/{GROUP}/{VERSION}")
    names = {r["name"]: r for r in resources["resources"]}
    for plural in ("canaries", "bluegreens", "gitsources", "metrictemplates"):
        assert names[plural]["namespaced"] is True
        assert f"{plural}/status" in names
        assert {"get", "list", "watch", "patch"} <= set(names[plural]["verbs"])
    assert names["canaries"]["kind"] == "Canary"
    code, apps_v1 = cluster.raw("GET", "/apis/apps/v1")
    assert {"deployments", "deployments/status", "deployments/scale"} <= {
        r["name"] for r in apps_v1["resources"]
    }
    code, core_v1 = cluster.raw("GET", "/api/v1")
    assert {"services", "events", "secrets", "configmaps", "namespaces"} <= {
        r["name"] for r in core_v1["resources"]
    }


def test_sandbox_serves_the_traffic_providers_kinds(cluster: Cluster, namespace: str) -> None:
    if cluster.sandbox is None:
        pytest.skip("on a real cluster the providers' CRDs are installed by their projects")
    for group, version, plural, kind in [
        ("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute"),
        ("networking.istio.io", "v1beta1", "virtualservices", "VirtualService"),
        ("networking.istio.io", "v1beta1", "destinationrules", "DestinationRule"),
        ("split.smi-spec.io", "v1alpha2", "trafficsplits", "TrafficSplit"),
        ("networking.k8s.io", "v1", "ingresses", "Ingress"),
        ("serving.knative.dev", "v1", "services", "Service"),
        ("serving.knative.dev", "v1", "revisions", "Revision"),
    ]:
        made = custom(cluster).create_namespaced_custom_object(
            group,
            version,
            namespace,
            plural,
            {"apiVersion": f"{group}/{version}", "kind": kind, "metadata": {"name": "r"}, "spec": {}},
        )
        assert made["kind"] == kind and made["metadata"]["uid"]


# -- deletion ------------------------------------------------------------------------------------


def test_finalizers_keep_a_deleted_object_until_they_are_removed(cluster: Cluster, namespace: str) -> None:
    api = core(cluster)
    api.create_namespaced_config_map(
        namespace, {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}
    )
    api.delete_namespaced_config_map("held", namespace)
    held = api.read_namespaced_config_map("held", namespace)
    assert held.metadata.deletion_timestamp is not None
    assert held.metadata.finalizers == ["example.com/hold"]
    api.patch_namespaced_config_map("held", namespace, {"metadata": {"finalizers": None}})
    eventually(lambda: absent(lambda: api.read_namespaced_config_map("held", namespace)))


def test_deleting_an_owner_garbage_collects_its_dependents(cluster: Cluster, namespace: str) -> None:
    api = core(cluster)
    owner = api.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    api.create_namespaced_config_map(namespace, {"metadata": {"name": "dependent", "ownerReferences": [ref]}})
    api.create_namespaced_config_map(namespace, {"metadata": {"name": "bystander"}})
    api.delete_namespaced_config_map("owner", namespace)
    eventually(lambda: absent(lambda: api.read_namespaced_config_map("dependent", namespace)), timeout=30)
    assert api.read_namespaced_config_map("bystander", namespace).metadata.name == "bystander"


def _owned_by(api: Any, namespace: str, owner: Any, name: str) -> Any:
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name, "uid": owner.metadata.uid}
    return api.create_namespaced_config_map(namespace, {"metadata": {"name": name, "ownerReferences": [ref]}})


def test_foreground_deletion_keeps_the_owner_until_its_dependents_are_gone(cluster: Cluster, namespace: str) -> None:
    api = core(cluster)
    owner = api.create_namespaced_config_map(namespace, {"metadata": {"name": "fg-owner"}})
    _owned_by(api, namespace, owner, "fg-held")
    api.create_namespaced_config_map(namespace, {"metadata": {
        "name": "fg-dependent", "finalizers": ["example.com/hold"],
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "fg-owner", "uid": owner.metadata.uid}]}})
    api.delete_namespaced_config_map("fg-owner", namespace, propagation_policy="Foreground")
    waiting = api.read_namespaced_config_map("fg-owner", namespace)
    assert waiting.metadata.deletion_timestamp is not None
    assert "foregroundDeletion" in waiting.metadata.finalizers
    eventually(lambda: absent(lambda: api.read_namespaced_config_map("fg-held", namespace)), timeout=30)
    # The dependent held by its own finalizer holds the owner too.
    assert api.read_namespaced_config_map("fg-owner", namespace).metadata.deletion_timestamp is not None
    api.patch_namespaced_config_map("fg-dependent", namespace, {"metadata": {"finalizers": None}})
    eventually(lambda: absent(lambda: api.read_namespaced_config_map("fg-owner", namespace)), timeout=30)


def test_orphan_deletion_leaves_the_dependents_without_the_reference(cluster: Cluster, namespace: str) -> None:
    api = core(cluster)
    owner = api.create_namespaced_config_map(namespace, {"metadata": {"name": "or-owner"}})
    _owned_by(api, namespace, owner, "or-dependent")
    api.delete_namespaced_config_map("or-owner", namespace, propagation_policy="Orphan")
    eventually(lambda: absent(lambda: api.read_namespaced_config_map("or-owner", namespace)), timeout=30)
    eventually(lambda: not api.read_namespaced_config_map("or-dependent", namespace).metadata.owner_references,
               timeout=30)
    time.sleep(1.5)  # longer than the sandbox collector's idle pass: still there
    assert api.read_namespaced_config_map("or-dependent", namespace).metadata.name == "or-dependent"


def test_a_dependent_whose_owner_never_existed_is_collected(cluster: Cluster, namespace: str) -> None:
    api = core(cluster)
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": "00000000-0000-4000-8000-000000000000"}
    api.create_namespaced_config_map(namespace, {"metadata": {"name": "orphaned", "ownerReferences": [ghost]}})
    eventually(lambda: absent(lambda: api.read_namespaced_config_map("orphaned", namespace)), timeout=60)


def test_deleting_a_namespace_deletes_its_content_then_the_namespace(cluster: Cluster) -> None:
    api = core(cluster)
    name = f"gc-ns-{int(time.time() * 1000) % 10**9}"
    api.create_namespace({"metadata": {"name": name}})
    api.create_namespaced_config_map(name, {"metadata": {"name": "inside"}})
    api.delete_namespace(name)
    eventually(lambda: absent(lambda: api.read_namespaced_config_map("inside", name)), timeout=60)
    eventually(lambda: absent(lambda: api.read_namespace(name)), timeout=120)


# -- Deployments ---------------------------------------------------------------------------------


def _rolled_out(cluster: Cluster, namespace: str, name: str) -> Any:
    dep = apps(cluster).read_namespaced_deployment(name, namespace)
    status, want = dep.status, dep.spec.replicas
    done = (
        status.observed_generation == dep.metadata.generation
        and (status.updated_replicas or 0) == want
        and (status.ready_replicas or 0) == want
        and (status.available_replicas or 0) == want
        and (status.replicas or 0) == want
    )
    return dep if done else None


def test_deployment_reports_rollout_status_and_scaling_to_zero(cluster: Cluster, namespace: str) -> None:
    created = apps(cluster).create_namespaced_deployment(namespace, deployment("web", replicas=2))
    assert created.metadata.generation == 1
    dep = eventually(lambda: _rolled_out(cluster, namespace, "web"), timeout=60)
    conditions = {c.type: (c.status, c.reason) for c in dep.status.conditions}
    assert conditions["Available"] == ("True", "MinimumReplicasAvailable")
    assert conditions["Progressing"] == ("True", "NewReplicaSetAvailable")

    relabelled = apps(cluster).patch_namespaced_deployment(
        "web", namespace, {"metadata": {"labels": {"x": "y"}}}
    )
    assert relabelled.metadata.generation == 1  # labels are not spec
    apps(cluster).patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 0}})
    scaled = eventually(lambda: _rolled_out(cluster, namespace, "web"), timeout=60)
    assert scaled.metadata.generation == 2
    assert not scaled.status.replicas and not scaled.status.ready_replicas  # zero counts are omitted


def test_sandbox_deployment_can_be_kept_unready(cluster: Cluster, namespace: str) -> None:
    if cluster.sandbox is None:
        pytest.skip("the unready switch belongs to the sandbox's simulated controller")
    apps(cluster).create_namespaced_deployment(
        namespace, deployment("stuck", 3, **{UNREADY_ANNOTATION: "true"})
    )

    def observed() -> Any:
        dep = apps(cluster).read_namespaced_deployment("stuck", namespace)
        return dep if dep.status.observed_generation == dep.metadata.generation else None

    dep = eventually(observed)
    time.sleep(1.0)  # several times the sandbox's ready delay
    dep = apps(cluster).read_namespaced_deployment("stuck", namespace)
    assert (dep.status.updated_replicas, dep.status.ready_replicas, dep.status.unavailable_replicas) == (
        3,
        None,
        3,
    )
    assert {c.type: c.status for c in dep.status.conditions}["Available"] == "False"
    cluster.sandbox.set_deployment_unready(namespace, "stuck", unready=False)
    apps(cluster).patch_namespaced_deployment(
        "stuck", namespace, {"metadata": {"annotations": {UNREADY_ANNOTATION: None}}}
    )
    eventually(lambda: _rolled_out(cluster, namespace, "stuck"))


# -- DaemonSets ----------------------------------------------------------------------------------


def _daemonset_rolled_out(cluster: Cluster, namespace: str, name: str) -> Any:
    """Rolled out as `kubectl rollout status` (and Flagger) reads it: every node that should run a
    pod runs the current template and it is available."""
    ds = apps(cluster).read_namespaced_daemon_set(name, namespace)
    status = ds.status
    if status is None or status.observed_generation != ds.metadata.generation:
        return None
    desired = status.desired_number_scheduled
    done = (status.updated_number_scheduled or 0) == desired and (status.number_available or 0) == desired
    return ds if done else None


def test_daemonset_runs_on_matching_nodes_and_a_selector_no_node_has_leaves_it_without_pods(
        cluster: Cluster, namespace: str) -> None:
    body = deployment("agent")
    del body["spec"]["replicas"]
    created = apps(cluster).create_namespaced_daemon_set(namespace, body)
    assert created.metadata.generation == 1
    assert created.spec.update_strategy.type == "RollingUpdate"  # the API's default
    ds = eventually(lambda: _daemonset_rolled_out(cluster, namespace, "agent"), timeout=60)
    assert ds.status.desired_number_scheduled >= 1 and ds.status.number_ready == ds.status.desired_number_scheduled
    # Flagger's way of scaling a DaemonSet to zero: a node selector no node matches
    apps(cluster).patch_namespaced_daemon_set("agent", namespace, {"spec": {"template": {"spec": {
        "nodeSelector": {"flagger.app/scale-to-zero": "true"}}}}})
    ds = eventually(lambda: _daemonset_rolled_out(cluster, namespace, "agent"), timeout=60)
    assert ds.metadata.generation == 2
    assert (ds.status.desired_number_scheduled, ds.status.current_number_scheduled, ds.status.number_ready) == (0, 0, 0)
    apps(cluster).patch_namespaced_daemon_set("agent", namespace, {"spec": {"template": {"spec": {
        "nodeSelector": {"flagger.app/scale-to-zero": None}}}}}, _content_type="application/merge-patch+json")
    ds = eventually(lambda: _daemonset_rolled_out(cluster, namespace, "agent"), timeout=60)
    assert ds.metadata.generation == 3
    assert ds.status.desired_number_scheduled >= 1 and not ds.spec.template.spec.node_selector


# -- the real kopf runtime -------------------------------------------------------------------------


def test_kopf_operator_runs_against_the_cluster(
    cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    registry = kopf.OperatorRegistry()
    deleted: list[str] = []

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.watching.server_timeout = 10
        settings.posting.level = 100  # no Events: keep the namespace quiet

    @kopf.on.create(GROUP, VERSION, CANARIES, registry=registry)
    @kopf.on.update(GROUP, VERSION, CANARIES, registry=registry)
    def reconcile(meta: kopf.Meta, spec: kopf.Spec, patch: kopf.Patch, **_: Any) -> None:
        patch.status["phase"] = "Waiting" if spec.get("suspend") else "Initialized"
        patch.status["observedGeneration"] = meta["generation"]

    @kopf.on.delete(GROUP, VERSION, CANARIES, registry=registry)
    def cleanup(name: str, **_: Any) -> None:
        deleted.append(name)

    stop, ready = threading.Event(), threading.Event()
    operator = threading.Thread(
        target=lambda: asyncio.run(
            kopf.operator(
                registry=registry, namespaces=[namespace], standalone=True, stop_flag=stop, ready_flag=ready
            )
        )
    )
    operator.start()
    try:
        assert ready.wait(20), "kopf did not start"
        api = custom(cluster)

        def read() -> Any:
            return api.get_namespaced_custom_object(GROUP, VERSION, namespace, CANARIES, "op")

        api.create_namespaced_custom_object(GROUP, VERSION, namespace, CANARIES, canary("op"))
        first = eventually(lambda: (o := read()).get("status", {}).get("phase") == "Initialized" and o)
        assert first["status"]["observedGeneration"] == 1
        assert first["metadata"]["finalizers"]  # kopf holds the object for its deletion handler

        api.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, CANARIES, "op", {"spec": {"suspend": True}}
        )
        second = eventually(lambda: (o := read()).get("status", {}).get("observedGeneration") == 2 and o)
        assert second["status"]["phase"] == "Waiting"

        answer = api.delete_namespaced_custom_object(GROUP, VERSION, namespace, CANARIES, "op")
        assert answer["metadata"].get("deletionTimestamp")  # held by the finalizer, not gone yet
        eventually(lambda: absent(read))
        assert deleted == ["op"]
    finally:
        stop.set()
        operator.join(20)
    assert not operator.is_alive()
