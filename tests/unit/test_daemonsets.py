"""DaemonSet targets without a cluster: the parser's rules, the objects built for the primary and
the scale-to-zero trick (compared with what Flagger's DaemonSetController builds), readiness from
the status fields Flagger reads, and the sandbox's simulated DaemonSet controller and data plane."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml

from analysis.templates import builtin_query
from rollout.api.errors import ValidationError
from rollout.api.parse import parse_bluegreen, parse_canary
from rollout.api.spec import Canary
from rollout.workloads import KINDS, WorkloadError, kind_of, workload_of
from rollout.workloads import daemonsets as ds
from sandbox.daemonsets import NODES, _Rollout, daemonset_status, scheduled_nodes
from sandbox.defaults import apply_defaults
from sandbox.pods import pod_names
from sandbox.routing import World, endpoints

UID = "0b6c1c7e-1111-2222-3333-444455556666"

# Flagger's own e2e DaemonSet, test/workloads/daemonset.yaml in github.com/fluxcd/flagger (trimmed
# to what the builders read: probes and resources left out).
FLAGGER_DAEMONSET = yaml.safe_load("""
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: podinfo-ds
  namespace: test
  labels:
    app.kubernetes.io/name: podinfo-ds
spec:
  minReadySeconds: 5
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      app.kubernetes.io/name: podinfo-ds
  template:
    metadata:
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: "9797"
      labels:
        app.kubernetes.io/name: podinfo-ds
    spec:
      containers:
      - name: podinfod
        image: ghcr.io/stefanprodan/podinfo:6.0.0
        ports:
          - name: http
            containerPort: 9898
            protocol: TCP
""")

# Flagger's e2e Canary for it, test/kubernetes/test-daemonset.sh (webhooks left out).
FLAGGER_CANARY = yaml.safe_load("""
apiVersion: rollout.gitops.dev/v1alpha1
kind: Canary
metadata:
  name: podinfo-ds
  namespace: test
spec:
  provider: kubernetes
  targetRef:
    apiVersion: apps/v1
    kind: DaemonSet
    name: podinfo-ds
  progressDeadlineSeconds: 60
  service:
    port: 80
    targetPort: 9898
    name: podinfo-ds
  analysis:
    interval: 15s
    threshold: 10
    iterations: 5
    metrics:
      - name: request-success-rate
        interval: 1m
        thresholdRange:
          min: 99
      - name: request-duration
        interval: 30s
        thresholdRange:
          max: 500
""")


def target() -> dict[str, Any]:
    obj = copy.deepcopy(FLAGGER_DAEMONSET)
    apply_defaults("apps", "daemonsets", obj, None)
    return obj


def release(**spec: Any) -> Canary:
    obj = copy.deepcopy(FLAGGER_CANARY)
    obj["metadata"]["uid"] = UID
    obj["spec"].update(spec)
    return parse_canary(obj)


# -- the parser ---------------------------------------------------------------------------------


def test_flaggers_daemonset_canary_parses_as_a_daemonset_release() -> None:
    canary = release()
    assert (canary.spec.target_ref.kind, canary.spec.target_ref.api_version) == ("DaemonSet", "apps/v1")
    assert kind_of(canary) is KINDS["DaemonSet"]


def test_a_mesh_provider_is_allowed_as_in_flagger() -> None:
    # Flagger applies no provider rule of its own to DaemonSets: a mesh shifts weights between the
    # -primary and -canary Services, whichever kind runs their pods.
    canary = release(provider="istio", analysis={"interval": "15s", "threshold": 2, "maxWeight": 50,
                                                 "stepWeight": 10})
    assert canary.spec.analysis.step_weight == 10


@pytest.mark.parametrize(("kind", "message"), [
    ("Service", "a Service target is not supported; name the DaemonSet or Deployment behind it"),
    ("StatefulSet", "must be DaemonSet or Deployment, got 'StatefulSet'"),
])
def test_other_target_kinds_are_refused_naming_the_field(kind: str, message: str) -> None:
    for parse, obj_kind in ((parse_canary, "Canary"), (parse_bluegreen, "BlueGreen")):
        obj = copy.deepcopy(FLAGGER_CANARY)
        obj["kind"] = obj_kind
        obj["spec"]["targetRef"]["kind"] = kind
        if obj_kind == "BlueGreen":
            obj["spec"].pop("progressDeadlineSeconds")
        with pytest.raises(ValidationError) as info:
            parse(obj)
        errors = {e.path: e.message for e in info.value.errors}
        assert errors["spec.targetRef.kind"].startswith(message), errors


# -- the primary, as Flagger's createPrimaryDaemonSet builds it ---------------------------------


def test_the_primary_is_flaggers_clone() -> None:
    canary = release()
    primary = ds.build_primary(target(), canary)
    assert (primary["apiVersion"], primary["kind"]) == ("apps/v1", "DaemonSet")
    assert primary["metadata"]["name"] == "podinfo-ds-primary"
    assert primary["metadata"]["labels"] == {"app.kubernetes.io/name": "podinfo-ds-primary"}
    assert primary["metadata"]["ownerReferences"][0]["uid"] == UID
    spec = primary["spec"]
    assert "replicas" not in spec and "strategy" not in spec and "progressDeadlineSeconds" not in spec
    assert spec["minReadySeconds"] == 5 and spec["revisionHistoryLimit"] == 5
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert spec["selector"] == {"matchLabels": {"app.kubernetes.io/name": "podinfo-ds-primary"}}
    assert spec["template"]["metadata"]["labels"] == {"app.kubernetes.io/name": "podinfo-ds-primary"}
    assert spec["template"]["metadata"]["annotations"] == FLAGGER_DAEMONSET["spec"]["template"]["metadata"][
        "annotations"]
    assert spec["template"]["spec"] == target()["spec"]["template"]["spec"]
    assert workload_of(primary, KINDS["DaemonSet"]).spec_hash == workload_of(target(), KINDS["DaemonSet"]).spec_hash


def test_scale_to_zero_is_flaggers_node_selector_and_changes_no_hash() -> None:
    t = target()
    t["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/os": "linux"}
    before = ds.spec_hash(t)
    down = ds.scale_patch(t, None, False)
    assert down == {"spec": {"template": {"spec": {"nodeSelector": {"flagger.app/scale-to-zero": "true"}}}}}
    t["spec"]["template"]["spec"]["nodeSelector"]["flagger.app/scale-to-zero"] = "true"
    assert ds.is_scaled_down(t) and ds.spec_hash(t) == before
    assert ds.scale_patch(t, None, False) is None  # already down
    # the primary built or promoted from a scaled-down target never carries the selector
    primary = ds.build_primary(t, release())
    assert primary["spec"]["template"]["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    up = ds.scale_patch(t, primary, True)
    assert up == {"spec": {"template": {"spec": {"nodeSelector": {"flagger.app/scale-to-zero": None}}}}}
    del t["spec"]["template"]["spec"]["nodeSelector"]["flagger.app/scale-to-zero"]
    assert ds.scale_patch(t, primary, True) is None
    # nothing but the selector: scaled up, the selector is gone or empty, the hash is the same
    bare = target()
    bare["spec"]["template"]["spec"]["nodeSelector"] = {}
    assert ds.spec_hash(bare) == ds.spec_hash(target())


def test_promotion_copies_the_template_and_the_daemonset_fields() -> None:
    canary = release()
    primary = ds.build_primary(target(), canary)
    new = target()
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/stefanprodan/podinfo:6.0.1"
    new["spec"]["template"]["spec"]["nodeSelector"] = {"flagger.app/scale-to-zero": "true"}
    new["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "50%"}}
    new["metadata"]["annotations"] = {"rollout.gitops.dev/revision": "def456"}
    promoted = ds.promoted_primary(primary, new)
    assert promoted is not None
    assert promoted["kind"] == "DaemonSet" and "replicas" not in promoted["spec"]
    pod = promoted["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "ghcr.io/stefanprodan/podinfo:6.0.1"
    assert "nodeSelector" not in pod
    assert promoted["spec"]["updateStrategy"]["rollingUpdate"] == {"maxUnavailable": "50%"}
    assert promoted["metadata"]["annotations"]["rollout.gitops.dev/revision"] == "def456"
    assert promoted["spec"]["selector"] == primary["spec"]["selector"]
    assert ds.spec_hash(promoted) == ds.spec_hash(new)
    assert ds.promoted_primary(promoted, new) is None  # promoting again changes nothing


def test_a_daemonset_that_does_not_roll_its_pods_is_refused_as_flagger_does() -> None:
    t = target()
    t["spec"]["updateStrategy"] = {"type": "OnDelete"}
    with pytest.raises(WorkloadError, match="must have updateStrategy RollingUpdate but has OnDelete") as info:
        ds.check_target(t)
    assert info.value.temporary is False
    ds.check_target(target())


def _status(generation: int = 2, observed: int = 2, desired: int = 3, updated: int = 3, available: int = 3,
            scaled_down: bool = False) -> dict[str, Any]:
    obj = target()
    obj["metadata"]["generation"] = generation
    if scaled_down:
        obj["spec"]["template"]["spec"]["nodeSelector"] = dict(ds.SCALE_TO_ZERO)
    obj["status"] = {"observedGeneration": observed, "desiredNumberScheduled": desired,
                     "updatedNumberScheduled": updated, "numberAvailable": available}
    return obj


@pytest.mark.parametrize(("status", "ready"), [
    (_status(), True),
    (_status(observed=1), False),  # the controller has not seen this generation
    (_status(updated=2), False),  # a node still runs the old template
    (_status(available=2), False),  # an updated pod is not available yet
    (_status(desired=0, updated=0, available=0), True),  # Flagger: no node to run on is rolled out
    (_status(desired=0, updated=0, available=0, scaled_down=True), False),  # held without pods: serves nothing
])
def test_readiness_reads_the_fields_flagger_reads(status: dict[str, Any], ready: bool) -> None:
    assert ds.is_ready(status) is ready


# -- the sandbox: nodes, status, routing, pod names ---------------------------------------------


def test_the_simulated_controller_honours_the_node_selector() -> None:
    t = target()
    assert scheduled_nodes(t) == len(NODES) == 3
    t["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/hostname": "node-1"}
    assert scheduled_nodes(t) == 1
    t["spec"]["template"]["spec"]["nodeSelector"] = dict(ds.SCALE_TO_ZERO)
    assert scheduled_nodes(t) == 0


def test_the_simulated_status_rolls_out_after_the_ready_delay() -> None:
    t = target()
    t["metadata"]["generation"] = 1
    rollout = _Rollout("h1", 3, changed_at=0.0)
    status, wake = daemonset_status(t, rollout, now=0.1, unready=False, ready_delay=0.5)
    assert not ds.is_ready({**t, "status": status}) and wake == 0.5
    status, wake = daemonset_status(t, rollout, now=0.6, unready=False, ready_delay=0.5)
    assert status == {"observedGeneration": 1, "currentNumberScheduled": 3, "desiredNumberScheduled": 3,
                      "numberMisscheduled": 0, "numberReady": 3, "numberAvailable": 3, "updatedNumberScheduled": 3}
    assert ds.is_ready({**t, "status": status}) and wake is None
    # a new template: the old pods keep serving until the new ones are ready
    rollout.template_hash, rollout.changed_at = "h2", 1.0
    status, _ = daemonset_status(t, rollout, now=1.1, unready=False, ready_delay=0.5)
    assert status["numberReady"] == 3 and "updatedNumberScheduled" not in status
    # scaled to zero: no pods at all
    status, _ = daemonset_status(t, _Rollout("h3", 0, changed_at=0.0), now=9.0, unready=False, ready_delay=0.5)
    assert (status["desiredNumberScheduled"], status["numberReady"]) == (0, 0)


def _ds(name: str, app: str, ready: int) -> dict[str, Any]:
    return {"kind": "DaemonSet", "metadata": {"name": name, "namespace": "test"},
            "spec": {"template": {"metadata": {"labels": {"app": app}}}}, "status": {"numberReady": ready}}


def test_services_route_to_daemonset_pods_as_to_deployments() -> None:
    svc = {"metadata": {"name": "web", "namespace": "test"}, "spec": {"selector": {"app": "web"}}}
    world = World(daemonsets=[_ds("web", "web", 3), _ds("web-primary", "web-primary", 3)], services=[svc])
    assert endpoints(world, "test", "web") == [("web", 1.0)]
    assert endpoints(World(daemonsets=[_ds("web", "web", 0)], services=[svc]), "test", "web") == []


def test_daemonset_pods_are_named_as_kubernetes_names_them_and_the_builtin_query_finds_them() -> None:
    canary_pods, primary_pods = pod_names(_ds("web", "web", 3)), pod_names(_ds("web-primary", "web-primary", 3))
    assert len(canary_pods) == 3 and all(re.fullmatch(r"web-[0-9a-f]{5}", p) for p in canary_pods)
    for arm, mine, other in (("canary", canary_pods, primary_pods), ("primary", primary_pods, canary_pods)):
        query = builtin_query("request-success-rate", "kubernetes", "test", "web", "1m", arm,  # type: ignore[arg-type]
                              target_kind="DaemonSet")
        found = re.search(r'kubernetes_pod_name=~"([^"]+)"', query)
        assert found is not None
        pattern = found.group(1).replace("\\\\", "\\")
        assert all(re.fullmatch(pattern, p) for p in mine), (pattern, mine)
        assert not any(re.fullmatch(pattern, p) for p in other), (pattern, other)
