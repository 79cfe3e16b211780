"""DaemonSet targets on the sandbox: the workloads' steps against its API and simulated DaemonSet
controller, then whole releases through the simulated data plane with a real Prometheus.

As in Flagger (pkg/canary/daemonset_controller.go): the target DaemonSet is kept without pods by
the `flagger.app/scale-to-zero: "true"` node selector, `<name>-primary` is its clone and serves,
and a release scales the target up, judges it, copies its pod template to the primary and scales
it down again. The sandbox schedules a DaemonSet's pods on its three simulated nodes by their
labels, so the selector really leaves the target with no pods and no endpoints."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from rollout.api.parse import parse_canary
from rollout.api.spec import Canary
from rollout.engine.kube import api_client
from rollout.settings import Settings
from rollout.workloads import NotReady, WorkloadError, Workloads
from sandbox.demo import app
from tests.e2e.conftest import GROUP, VERSION, OperatorProcess, create_release, release_status, wait_for, wait_phase
from tests.e2e.exporter import Exporter
from tests.gitrepo import GitRemote, deployment_yaml

pytestmark = pytest.mark.e2e

SCALE_TO_ZERO = "flagger.app/scale-to-zero"
NODES = 3  # the sandbox's simulated nodes
GOOD = app.Version(2, "ghcr.io/stefanprodan/podinfo:6.0.1", 0.0)
BAD = app.Version(3, "ghcr.io/stefanprodan/podinfo:6.0.2", 0.2)


def daemonset(version: app.Version, namespace: str, name: str = app.APP) -> dict[str, Any]:
    """The demo app's workload as a DaemonSet (pod template, annotations and labels unchanged)."""
    obj = app.deployment(version, namespace)
    obj["kind"] = "DaemonSet"
    obj["metadata"]["name"] = name
    del obj["spec"]["replicas"]
    return obj


def canary_object(namespace: str, provider: str = "kubernetes", name: str = app.APP) -> dict[str, Any]:
    obj = app.canary(provider, "threshold", 3.0, namespace, git=False)
    obj["metadata"]["name"] = name
    obj["spec"]["targetRef"] = {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": name}
    analysis = obj["spec"]["analysis"]
    # Checks 3s apart over a 6s window: a check sees only the version under test.
    analysis.update(threshold=2, metrics=[{"name": "request-success-rate", "interval": "6s",
                                           "thresholdRange": {"min": 95}}])
    if provider == "kubernetes":
        analysis["iterations"] = 3
    else:
        analysis.update(stepWeight=25, maxWeight=50)
    return obj


def raw_daemonset(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    return Workloads(api, Settings(api_timeout=5)).daemonset(namespace, name)


def node_selector(obj: dict[str, Any] | None) -> dict[str, str]:
    return dict(((obj or {}).get("spec") or {}).get("template", {}).get("spec", {}).get("nodeSelector") or {})


def no_pods(api: client.ApiClient, namespace: str, name: str) -> bool:
    obj = raw_daemonset(api, namespace, name) or {}
    status = obj.get("status") or {}
    return status.get("observedGeneration") == obj["metadata"]["generation"] and status.get(
        "desiredNumberScheduled") == 0 and not status.get("numberReady")


# -- the workloads' steps against the sandbox API -------------------------------------------------


def test_clone_scale_to_zero_promote_and_hand_back(api: client.ApiClient, namespace: str) -> None:
    workloads = Workloads(api, Settings(api_timeout=5))
    apps = client.AppsV1Api(api)
    apps.create_namespaced_daemon_set(namespace, daemonset(app.VERSIONS[1], namespace))
    body = canary_object(namespace)
    body["spec"]["suspend"] = True  # driven by the test itself: the shared operator must leave it alone
    created: dict[str, Any] = client.CustomObjectsApi(api).create_namespaced_custom_object(  # type: ignore[assignment]
        GROUP, VERSION, namespace, "canaries", body)
    release: Canary = parse_canary(created)

    workloads.initialize(release)
    primary = raw_daemonset(api, namespace, "podinfo-primary")
    assert primary is not None and primary["spec"]["selector"] == {"matchLabels": {"app": "podinfo-primary"}}
    assert "replicas" not in primary["spec"]
    wait_for("target and primary ready", lambda: all(w.ready for w in workloads.observe(release)), timeout=60)
    assert raw_daemonset(api, namespace, "podinfo-primary")["status"]["numberReady"] == NODES  # type: ignore[index]

    # scaled "to zero": the node selector no node matches, no pods, the same version
    before = workloads.observe(release)[0].spec_hash
    workloads.scale_target(release, up=False)
    assert node_selector(raw_daemonset(api, namespace, "podinfo")) == {SCALE_TO_ZERO: "true"}
    wait_for("no pods on the target", lambda: no_pods(api, namespace, "podinfo"), timeout=60)
    target = raw_daemonset(api, namespace, "podinfo")
    assert target is not None and target["status"]["numberReady"] == 0
    seen_target, seen_primary = workloads.observe(release)
    assert not seen_target.ready and seen_target.spec_hash == before == seen_primary.spec_hash

    # a new version (`kubectl set image` on the target): the hashes differ; scale up, promote
    apps.patch_namespaced_daemon_set("podinfo", namespace, {"spec": {"template": {"spec": {"containers": [
        {"name": "podinfod", "image": GOOD.image}]}}}})
    seen_target, seen_primary = workloads.observe(release)
    assert seen_target.spec_hash != seen_primary.spec_hash
    workloads.scale_target(release, up=True)
    assert node_selector(raw_daemonset(api, namespace, "podinfo")) == {}
    wait_for("target rolled out on every node", lambda: workloads.observe(release)[0].ready, timeout=60)
    assert raw_daemonset(api, namespace, "podinfo")["status"]["updatedNumberScheduled"] == NODES  # type: ignore[index]
    workloads.promote(release)
    promoted = raw_daemonset(api, namespace, "podinfo-primary")
    assert promoted is not None and promoted["spec"]["template"]["spec"]["containers"][0]["image"] == GOOD.image
    assert node_selector(promoted) == {}
    wait_for("primary rolled out", lambda: workloads.observe(release)[1].ready, timeout=60)
    seen_target, seen_primary = workloads.observe(release)
    assert seen_target.spec_hash == seen_primary.spec_hash

    # deletion: the target comes back on every node, then the apex selects it
    workloads.scale_target(release, up=False)
    wait_for("no pods on the target", lambda: no_pods(api, namespace, "podinfo"), timeout=60)
    with pytest.raises(NotReady):
        workloads.finalize(release)
    assert node_selector(raw_daemonset(api, namespace, "podinfo")) == {}
    wait_for("target ready", lambda: workloads.observe(release)[0].ready, timeout=60)
    workloads.finalize(release)
    apex = Workloads(api, Settings(api_timeout=5)).service(namespace, "podinfo")
    assert apex is not None and apex["spec"]["selector"] == {"app": "podinfo"}


def test_a_daemonset_without_rolling_updates_is_refused(api: client.ApiClient, namespace: str) -> None:
    body = daemonset(app.VERSIONS[1], namespace, "ondelete")
    body["spec"]["updateStrategy"] = {"type": "OnDelete"}
    client.AppsV1Api(api).create_namespaced_daemon_set(namespace, body)
    created: dict[str, Any] = client.CustomObjectsApi(api).create_namespaced_custom_object(  # type: ignore[assignment]
        GROUP, VERSION, namespace, "canaries", canary_object(namespace, name="ondelete"))
    with pytest.raises(WorkloadError, match="must have updateStrategy RollingUpdate but has OnDelete") as info:
        Workloads(api, Settings(api_timeout=5)).initialize(parse_canary(created))
    assert info.value.temporary is False
    assert raw_daemonset(api, namespace, "ondelete-primary") is None


# -- whole releases through the data plane ------------------------------------------------------

# A release per case: a Canary per provider (kubernetes is Flagger's blue/green) and a BlueGreen.
PROVIDERS = ("kubernetes", "istio", "bluegreen")
KIND = {"kubernetes": "Canary", "istio": "Canary", "bluegreen": "BlueGreen"}


def release_object(case: str, namespace: str) -> dict[str, Any]:
    if case != "bluegreen":
        return canary_object(namespace, case)
    obj = canary_object(namespace, "kubernetes")
    obj["kind"] = "BlueGreen"
    obj["spec"]["scaleDownDelaySeconds"] = 0
    return obj


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[client.ApiClient, OperatorProcess]]:
    root = tmp_path_factory.mktemp("daemonsets")
    kubeconfig, log = root / "kubeconfig", root / "sandbox.log"
    with log.open("wb") as out:
        sandbox = subprocess.Popen([str(Path(sys.executable).parent / "rollout"), "sandbox", "up", "--dataplane",
                                    "--rps", "60", "--kubeconfig", str(kubeconfig)], stdout=out,
                                   stderr=subprocess.STDOUT)
    operator: OperatorProcess | None = None
    try:
        text = wait_for("the sandbox with its data plane", lambda: "kubeconfig:" in log.read_text() and log.read_text(),
                        timeout=60)
        prometheus = re.search(r"prometheus: (\S+)", text)
        assert prometheus, text
        operator = OperatorProcess(kubeconfig, prometheus.group(1), root / "reports", root / "operator.log")
        operator.start()
        yield api_client(kubeconfig), operator
    finally:
        if operator is not None:
            operator.stop()
        sandbox.terminate()
        try:
            sandbox.wait(timeout=60)
        except subprocess.TimeoutExpired:
            sandbox.kill()


@pytest.fixture(scope="module")
def outcomes(world: tuple[client.ApiClient, OperatorProcess]) -> dict[str, dict[str, Any]]:
    """Per provider: v1 initialized, v2 (healthy) released, then v3 (20% errors), all DaemonSets."""
    api, operator = world
    apps = client.AppsV1Api(api)
    names = {p: f"ds-{p[:8]}-{uuid.uuid4().hex[:4]}" for p in PROVIDERS}
    for ns in names.values():
        client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
        apps.create_namespaced_daemon_set(ns, daemonset(app.VERSIONS[1], ns))
    for provider, ns in names.items():
        create_release(api, release_object(provider, ns))

    def phases(*wanted: str) -> bool:
        return all(release_status(api, ns, app.APP, KIND[p]).get("phase") in wanted for p, ns in names.items())

    wait_for("every Canary initialized", lambda: phases("Initialized"), timeout=60)
    results: dict[str, dict[str, Any]] = {p: {} for p in PROVIDERS}
    for provider, ns in names.items():
        # The phase is recorded before the scale-down it decided is carried out (intent before effect).
        wait_for("the target scaled to zero", lambda n=ns: SCALE_TO_ZERO in node_selector(  # type: ignore[misc]
            raw_daemonset(api, n, app.APP)), timeout=60)
        results[provider]["v1"] = {"target": raw_daemonset(api, ns, app.APP),
                                   "primary": raw_daemonset(api, ns, f"{app.APP}-primary")}
    for version, done in ((GOOD, ("Succeeded", "Failed")), (BAD, ("Failed", "Succeeded"))):
        for ns in names.values():
            apps.patch_namespaced_daemon_set(app.APP, ns, {"spec": {"template": daemonset(version, ns)["spec"][
                "template"]}})
        wait_for("every release started", lambda: not phases("Initialized", "Succeeded"), timeout=30)
        wait_for(f"every v{version.number} release finished", lambda d=done: phases(*d), timeout=120)  # type: ignore[misc]
        for provider, ns in names.items():
            status = release_status(api, ns, app.APP, KIND[provider])
            wait_for("the target scaled to zero", lambda n=ns: SCALE_TO_ZERO in node_selector(  # type: ignore[misc]
                raw_daemonset(api, n, app.APP)), timeout=60)
            events = client.CoreV1Api(api).list_namespaced_event(ns).items
            results[provider][f"v{version.number}"] = {
                "phase": status["phase"], "weight": status.get("canaryWeight"), "analysis": status.get("analysis"),
                "primary": raw_daemonset(api, ns, f"{app.APP}-primary"), "target": raw_daemonset(api, ns, app.APP),
                "events": [(e.reason, e.message) for e in events if e.involved_object.kind == KIND[provider]],
            }
    assert operator.process is not None and operator.process.poll() is None, operator.output()
    return results


def _image(obj: dict[str, Any] | None) -> str:
    return str((obj or {})["spec"]["template"]["spec"]["containers"][0]["image"])


@pytest.mark.parametrize("provider", PROVIDERS)
def test_initialized_the_target_has_no_pods_and_the_primary_runs_on_every_node(
        outcomes: dict[str, dict[str, Any]], provider: str) -> None:
    v1 = outcomes[provider]["v1"]
    assert node_selector(v1["target"]) == {SCALE_TO_ZERO: "true"}
    assert v1["primary"]["status"]["numberReady"] == NODES
    assert _image(v1["primary"]) == app.VERSIONS[1].image


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_good_daemonset_is_promoted_and_a_bad_one_rolled_back(outcomes: dict[str, dict[str, Any]],
                                                                provider: str) -> None:
    good, bad = outcomes[provider]["v2"], outcomes[provider]["v3"]
    assert good["phase"] == "Succeeded" and _image(good["primary"]) == GOOD.image, good["events"]
    assert node_selector(good["primary"]) == {}
    reasons = [reason for reason, _ in good["events"]]
    assert {"Progressing", "Promoting", "Succeeded"} <= set(reasons), reasons
    assert ("Progressing", "New revision detected! Scaling up podinfo") in good["events"]

    assert bad["phase"] == "Failed" and bad["weight"] == 0 and _image(bad["primary"]) == GOOD.image, bad["events"]
    assert _image(bad["target"]) == BAD.image and node_selector(bad["target"]) == {SCALE_TO_ZERO: "true"}
    metric = next(m for m in bad["analysis"]["metrics"] if m["name"] == "request-success-rate")
    assert metric["verdict"] == "fail" and metric["value"] < 95  # the canary's own pods' requests failed
    assert metric["primary"] is None or metric["primary"] > 99  # while the primary's did not
    assert any(reason == "Failed" and "Canary failed! Rolling back podinfo" in message
               for reason, message in bad["events"])


def _ready_false(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    conditions = release_status(api, namespace, name).get("conditions") or []
    return next((c for c in conditions if c["type"] == "Ready" and c["status"] == "False"), None)


def test_the_operator_refuses_a_service_target_and_a_daemonset_without_rolling_updates(
        world: tuple[client.ApiClient, OperatorProcess]) -> None:
    api, operator = world
    ns = f"ds-refused-{uuid.uuid4().hex[:4]}"
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    service = canary_object(ns, name="svc")
    service["spec"]["targetRef"] = {"apiVersion": "v1", "kind": "Service", "name": "svc"}
    create_release(api, service)
    body = daemonset(app.VERSIONS[1], ns, "ondelete")
    body["spec"]["updateStrategy"] = {"type": "OnDelete"}
    client.AppsV1Api(api).create_namespaced_daemon_set(ns, body)
    create_release(api, canary_object(ns, name="ondelete"))

    refused = wait_for("the Service target refused", lambda: _ready_false(api, ns, "svc"), timeout=30)
    assert refused["reason"] == "InvalidSpec"
    assert "spec.targetRef.kind: a Service target is not supported" in refused["message"]
    stuck = wait_for("the OnDelete DaemonSet refused", lambda: _ready_false(api, ns, "ondelete"), timeout=30)
    assert stuck["reason"] == "WorkloadError" and "must have updateStrategy RollingUpdate" in stuck["message"]

    def warned() -> bool:
        # The Event follows the condition it explains.
        items = client.CoreV1Api(api).list_namespaced_event(ns).items
        events = [(e.reason, e.type, e.involved_object.name) for e in items]
        return ("InvalidSpec", "Warning", "svc") in events and ("WorkloadError", "Warning", "ondelete") in events

    wait_for("a Warning Event for each", warned, timeout=15)
    assert raw_daemonset(api, ns, "ondelete-primary") is None
    assert "Traceback" not in operator.output()


# -- GitOps: a DaemonSet synced from Git, its failed release reverted there ------------------------


def test_a_failed_daemonset_is_reverted_in_git_and_the_sync_keeps_it_without_pods(
        api: client.ApiClient, operator: OperatorProcess, exporter: Exporter, namespace: str,
        tmp_path: Path) -> None:
    old, bad = app.VERSIONS[1].image, GOOD.image

    def manifest(image: str) -> str:
        obj = yaml.safe_load(deployment_yaml("agent", image, namespace=namespace))
        obj["kind"] = "DaemonSet"
        del obj["spec"]["replicas"]
        return yaml.safe_dump(obj)

    release = canary_object(namespace, "istio", name="agent")
    release["spec"]["analysis"].update(interval="1s", metrics=[{"name": "request-success-rate", "interval": "10s",
                                                                "thresholdRange": {"min": 99}}])
    release["spec"]["git"] = {"source": "apps", "author": {"name": "rollout-bot", "email": "rollout-bot@example.com"}}
    remote = GitRemote(tmp_path / "git")
    remote.commit({"apps/agent/daemonset.yaml": manifest(old), "apps/agent/canary.yaml": yaml.safe_dump(release)},
                  "feat(agent): podinfo 6.0.0")
    exporter.set(namespace, "agent", rps=50, error_ratio=0.0)
    exporter.set(namespace, "agent-primary", rps=50, error_ratio=0.0)
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "gitsources", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "GitSource", "metadata": {"name": "apps", "namespace": namespace},
        "spec": {"url": remote.url, "branch": "main", "path": "./apps", "interval": "2s"}})
    wait_phase(api, namespace, "agent", "Initialized", timeout=60)
    # The phase is recorded before the scale-down it decided is carried out (intent before effect).
    assert wait_for("the target kept without pods", lambda: node_selector(raw_daemonset(api, namespace, "agent")),
                    timeout=30) == {SCALE_TO_ZERO: "true"}

    bad_commit = remote.commit({"apps/agent/daemonset.yaml": manifest(bad)}, "feat(agent): podinfo 6.0.1")
    exporter.set(namespace, "agent", rps=50, error_ratio=0.3)
    status = wait_phase(api, namespace, "agent", "Reverted", timeout=120)
    head = remote.head()
    assert remote.log(f"{bad_commit}..{head}") == [f"revert(agent): roll back {bad} after failed canary"]
    assert status["revert"]["reverts"] == [bad_commit]
    target, primary = raw_daemonset(api, namespace, "agent"), raw_daemonset(api, namespace, "agent-primary")
    assert _image(target) == _image(primary) == old
    assert target is not None and target["metadata"]["annotations"]["rollout.gitops.dev/revision"] == head
    # the revert was applied from Git, and the target is still kept without pods
    assert node_selector(target) == {SCALE_TO_ZERO: "true"}
    time.sleep(3)  # a few syncs later: no drift correction gave it pods, no second run started
    assert node_selector(raw_daemonset(api, namespace, "agent")) == {SCALE_TO_ZERO: "true"}
    assert release_status(api, namespace, "agent")["phase"] == "Reverted"
