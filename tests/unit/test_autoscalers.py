"""`spec.autoscalerRef`: parsing, the primary's clone of an HPA or a KEDA ScaledObject compared with
the objects Flagger's documentation shows, the pause of a ScaledObject, and the sandbox's simulated
autoscalers' decisions (no cluster)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from rollout.api.errors import ValidationError
from rollout.api.parse import parse_canary
from rollout.api.spec import AutoscalerRef, Canary
from rollout.workloads import builders as b
from rollout.workloads.autoscalers import (
    PAUSED_REPLICAS_ANNOTATION,
    build_primary_scaler,
    min_replicas,
    paused_patch,
    primary_query,
    updated_primary_scaler,
)
from sandbox.autoscalers import hpa_desired, scaled_object_desired
from tests.unit.test_deploy import NEEDED

UID = "0b6c1c7e-1111-2222-3333-444455556666"

# https://github.com/fluxcd/flagger/blob/main/kustomize/podinfo/hpa.yaml
FLAGGER_HPA = yaml.safe_load("""
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: podinfo
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  minReplicas: 2
  maxReplicas: 4
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 99
""")

# https://github.com/fluxcd/flagger/blob/main/docs/gitbook/tutorials/keda-scaledobject.md
FLAGGER_SCALED_OBJECT = yaml.safe_load("""
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: podinfo-so
  namespace: test
spec:
  scaleTargetRef:
    name: podinfo
  pollingInterval: 10
  cooldownPeriod: 20
  minReplicaCount: 1
  maxReplicaCount: 3
  triggers:
  - type: prometheus
    metadata:
      name: prom-trigger
      serverAddress: http://flagger-prometheus.flagger:9090
      metricName: http_requests_total
      query: sum(rate(http_requests_total{ app="podinfo" }[30s]))
      threshold: '5'
""")


def canary(ref: dict[str, Any] | None) -> Canary:
    spec: dict[str, Any] = {
        "provider": "kubernetes",
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": {"port": 80, "targetPort": 9898},
        "analysis": {"interval": "15s", "threshold": 5, "iterations": 5},
    }
    if ref is not None:
        spec["autoscalerRef"] = ref
    return parse_canary({"apiVersion": "rollout.gitops.dev/v1alpha1", "kind": "Canary",
                         "metadata": {"name": "podinfo", "namespace": "test", "uid": UID}, "spec": spec})


def ref_of(release: Canary) -> AutoscalerRef:
    assert release.spec.autoscaler_ref is not None
    return release.spec.autoscaler_ref


OWNER = {"apiVersion": "rollout.gitops.dev/v1alpha1", "kind": "Canary", "name": "podinfo", "uid": UID,
         "controller": True, "blockOwnerDeletion": True}


# -- parsing ----------------------------------------------------------------------------------


def test_the_flagger_keda_tutorial_ref_parses() -> None:
    query = 'sum(rate(http_requests_total{ app="podinfo-primary" }[30s]))'
    release = canary({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "podinfo-so",
                      "primaryScalerQueries": {"prom-trigger": query},
                      "primaryScalerReplicas": {"minReplicas": 2, "maxReplicas": 5}})
    assert ref_of(release) == AutoscalerRef(
        api_version="keda.sh/v1alpha1", kind="ScaledObject", name="podinfo-so", primary_min_replicas=2,
        primary_max_replicas=5,
        primary_queries=(("prom-trigger", 'sum(rate(http_requests_total{ app="podinfo-primary" }[30s]))'),))


@pytest.mark.parametrize("version", ["autoscaling/v2", "autoscaling/v2beta2", None])
def test_an_hpa_ref_parses(version: str | None) -> None:
    ref: dict[str, Any] = {"kind": "HorizontalPodAutoscaler", "name": "podinfo"}
    if version:
        ref["apiVersion"] = version
    assert ref_of(canary(ref)) == AutoscalerRef(version or "autoscaling/v2", "HorizontalPodAutoscaler", "podinfo")
    assert canary(None).spec.autoscaler_ref is None


def test_an_autoscaler_needs_a_deployment_target() -> None:
    obj = {"apiVersion": "rollout.gitops.dev/v1alpha1", "kind": "Canary", "metadata": {"name": "p", "namespace": "t"},
           "spec": {"provider": "kubernetes", "targetRef": {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "p"},
                    "autoscalerRef": {"kind": "HorizontalPodAutoscaler", "name": "p"}, "service": {"port": 80},
                    "analysis": {"interval": "15s", "threshold": 5, "iterations": 5}}}
    with pytest.raises(ValidationError) as caught:
        parse_canary(obj)
    assert any(e.path == "spec.autoscalerRef" and "a DaemonSet target" in e.message for e in caught.value.errors)


@pytest.mark.parametrize(("ref", "path", "says"), [
    ({"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"}, "spec.autoscalerRef.kind",
     "unknown autoscaler kind 'Deployment'; known: HorizontalPodAutoscaler, ScaledObject"),
    ({"apiVersion": "keda.sh/v1alpha1", "kind": "HorizontalPodAutoscaler", "name": "x"},
     "spec.autoscalerRef.apiVersion", "a HorizontalPodAutoscaler is served as autoscaling/v2"),
    ({"apiVersion": "autoscaling/v2", "kind": "ScaledObject", "name": "x"},
     "spec.autoscalerRef.apiVersion", "a ScaledObject is served as keda.sh/v1alpha1"),
    ({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler"}, "spec.autoscalerRef.name", "is required"),
    ({"kind": "HorizontalPodAutoscaler", "name": "x", "primaryScalerQueries": {"a": "up"}},
     "spec.autoscalerRef.primaryScalerQueries", "applies to kind ScaledObject only"),
    ({"kind": "ScaledObject", "name": "x", "primaryScalerQueries": {"a": ["up"]}},
     "spec.autoscalerRef.primaryScalerQueries.a", "must be a string"),
    ({"kind": "HorizontalPodAutoscaler", "name": "x", "primaryScalerReplicas": {"minReplicas": 5, "maxReplicas": 2}},
     "spec.autoscalerRef.primaryScalerReplicas.minReplicas", "must be at most maxReplicas (2)"),
    ({"kind": "HorizontalPodAutoscaler", "name": "x", "primaryScalerReplicas": {"maxReplicas": 0}},
     "spec.autoscalerRef.primaryScalerReplicas.maxReplicas", "must be at least 1"),
])
def test_a_wrong_ref_is_refused_naming_the_field(ref: dict[str, Any], path: str, says: str) -> None:
    with pytest.raises(ValidationError) as caught:
        canary(ref)
    assert [(e.path, e.message) for e in caught.value.errors if e.path == path and says in e.message], \
        caught.value.errors


# -- the primary's clone ----------------------------------------------------------------------


@pytest.mark.parametrize(("bounds", "low", "high"), [
    ({}, 2, 4),  # the canary's own bounds
    ({"primaryScalerReplicas": {"minReplicas": 2, "maxReplicas": 5}}, 2, 5),  # how-it-works.md's override
    ({"primaryScalerReplicas": {"maxReplicas": 10}}, 2, 10),
])
def test_the_primary_hpa_is_the_canarys_targeting_the_primary(bounds: dict[str, Any], low: int, high: int) -> None:
    release = canary({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "podinfo",
                      **bounds})
    hpa = copy.deepcopy(FLAGGER_HPA)
    hpa["metadata"].update(namespace="test", labels={"app": "podinfo", "kustomize.toolkit.fluxcd.io/name": "apps"},
                           resourceVersion="7", uid="u")
    assert build_primary_scaler(hpa, release, ref_of(release)) == {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "podinfo-primary", "namespace": "test", "labels": {"app": "podinfo"},
                     "ownerReferences": [OWNER]},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo-primary"},
            "minReplicas": low,
            "maxReplicas": high,
            "metrics": FLAGGER_HPA["spec"]["metrics"],
        },
    }


# The ScaledObject Flagger's KEDA tutorial says it generates (scaledobject.keda.sh/podinfo-so-primary),
# with the query of primaryScalerQueries and the bounds of primaryScalerReplicas.
PRIMARY_SCALED_OBJECT = {
    "apiVersion": "keda.sh/v1alpha1",
    "kind": "ScaledObject",
    "metadata": {"name": "podinfo-so-primary", "namespace": "test", "labels": {}, "annotations": {},
                 "ownerReferences": [OWNER]},
    "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo-primary"},
        "pollingInterval": 10,
        "cooldownPeriod": 20,
        "minReplicaCount": 2,
        "maxReplicaCount": 5,
        "triggers": [{"type": "prometheus", "metadata": {
            "name": "prom-trigger", "serverAddress": "http://flagger-prometheus.flagger:9090",
            "metricName": "http_requests_total",
            "query": 'sum(rate(http_requests_total{ app="podinfo-primary" }[30s]))', "threshold": "5"}}],
    },
}


def test_the_primary_scaled_object_of_the_keda_tutorial() -> None:
    release = canary({
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "podinfo-so",
        "primaryScalerQueries": {"prom-trigger": 'sum(rate(http_requests_total{ app="podinfo-primary" }[30s]))'},
        "primaryScalerReplicas": {"minReplicas": 2, "maxReplicas": 5}})
    so = copy.deepcopy(FLAGGER_SCALED_OBJECT)
    # In Flagger's tutorial the trigger's name sits in its metadata; KEDA names a trigger by `name`.
    so["spec"]["triggers"][0]["name"] = "prom-trigger"
    expected = copy.deepcopy(PRIMARY_SCALED_OBJECT)
    expected["spec"]["triggers"][0]["name"] = "prom-trigger"
    so["metadata"]["annotations"] = {PAUSED_REPLICAS_ANNOTATION: "0"}  # the canary's pause is not cloned
    assert build_primary_scaler(so, release, ref_of(release)) == expected
    assert so["spec"]["triggers"][0]["metadata"]["query"] == FLAGGER_SCALED_OBJECT["spec"]["triggers"][0][
        "metadata"]["query"], "the canary's ScaledObject is left as it was"


def test_without_primary_scaler_queries_the_query_is_guessed_as_flagger_documents() -> None:
    release = canary({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "podinfo-so",
                      "primaryScalerReplicas": {"minReplicas": 2, "maxReplicas": 5}})
    built = build_primary_scaler(FLAGGER_SCALED_OBJECT, release, ref_of(release))
    assert built["spec"] == PRIMARY_SCALED_OBJECT["spec"]


def test_primary_scaler_queries_change_only_the_named_triggers_and_the_hpa_name_gets_a_suffix() -> None:
    release = canary({"kind": "ScaledObject", "name": "podinfo-so", "primaryScalerQueries": {"b": "sum(b_primary)"}})
    so = {"metadata": {"name": "podinfo-so"}, "spec": {
        "scaleTargetRef": {"name": "podinfo", "envSourceContainerName": "app"},
        "advanced": {"horizontalPodAutoscalerConfig": {"name": "podinfo-hpa", "behavior": {}}},
        "triggers": [{"name": "a", "type": "prometheus", "metadata": {"query": "sum(podinfo)"}},
                     {"name": "b", "type": "prometheus", "metadata": {"query": "sum(podinfo)"}}]}}
    spec = build_primary_scaler(so, release, ref_of(release))["spec"]
    assert [t["metadata"]["query"] for t in spec["triggers"]] == ["sum(podinfo)", "sum(b_primary)"]
    assert spec["advanced"]["horizontalPodAutoscalerConfig"] == {"name": "podinfo-hpa-primary", "behavior": {}}
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo-primary",
                                      "envSourceContainerName": "app"}


@pytest.mark.parametrize(("query", "expected"), [
    ('sum(rate(http_requests_total{ app="podinfo" }[30s]))',
     'sum(rate(http_requests_total{ app="podinfo-primary" }[30s]))'),
    ('sum(rate(http_requests_total{ app="podinfo-primary" }[30s]))',
     'sum(rate(http_requests_total{ app="podinfo-primary" }[30s]))'),
    ('sum(rate(x{ app="podinfo-canary" }[30s]))', 'sum(rate(x{ app="podinfo-primary" }[30s]))'),
    ('sum(x{a="podinfo"}) / sum(y{a="podinfo-canary"})', 'sum(x{a="podinfo-primary"}) / sum(y{a="podinfo-primary"})'),
    ("sum(up)", "sum(up)"),
])
def test_primary_query(query: str, expected: str) -> None:
    assert primary_query(query, "podinfo") == expected


def test_promotion_updates_the_spec_only_when_it_differs() -> None:
    release = canary({"kind": "HorizontalPodAutoscaler", "name": "podinfo"})
    desired = build_primary_scaler(FLAGGER_HPA, release, ref_of(release))
    existing = {**copy.deepcopy(desired), "status": {"currentReplicas": 2}}
    existing["metadata"]["resourceVersion"] = "9"
    assert updated_primary_scaler(existing, desired) is None
    changed = copy.deepcopy(FLAGGER_HPA)
    changed["spec"]["maxReplicas"] = 8
    new = updated_primary_scaler(existing, build_primary_scaler(changed, release, ref_of(release)))
    assert new is not None and new["spec"]["maxReplicas"] == 8
    assert new["spec"]["scaleTargetRef"]["name"] == "podinfo-primary"
    assert new["metadata"]["resourceVersion"] == "9" and "status" not in new


# -- pause, replicas ----------------------------------------------------------------------------


def test_a_scaled_object_is_paused_at_zero_and_resumed() -> None:
    so = copy.deepcopy(FLAGGER_SCALED_OBJECT)
    assert paused_patch(so, True) == {"metadata": {"annotations": {PAUSED_REPLICAS_ANNOTATION: "0"}}}
    assert paused_patch(so, False) is None
    so["metadata"]["annotations"] = {PAUSED_REPLICAS_ANNOTATION: "0"}
    assert paused_patch(so, True) is None
    assert paused_patch(so, False) == {"metadata": {"annotations": {PAUSED_REPLICAS_ANNOTATION: None}}}


@pytest.mark.parametrize(("kind", "spec", "expected"), [
    ("HorizontalPodAutoscaler", {"minReplicas": 3}, 3),
    ("HorizontalPodAutoscaler", {}, 1),
    ("ScaledObject", {"minReplicaCount": 0}, 1),
    ("ScaledObject", {"minReplicaCount": 4}, 4),
])
def test_a_run_starts_the_target_at_its_autoscalers_minimum(kind: str, spec: dict[str, Any], expected: int) -> None:
    assert min_replicas({"spec": spec}, kind) == expected
    target = {"metadata": {"annotations": {b.REPLICAS_ANNOTATION: "7"}}, "spec": {"replicas": 0}}
    assert b.scale_patch(target, None, True, expected)["spec"]["replicas"] == expected  # type: ignore[index]


def test_with_an_autoscaler_promotion_leaves_the_primarys_replicas_alone() -> None:
    target = {"spec": {"replicas": 5, "selector": {"matchLabels": {"app": "podinfo"}},
                       "template": {"metadata": {"labels": {"app": "podinfo"}}}}}
    primary = {"spec": {"replicas": 2, "template": {}}, "metadata": {}}
    assert b.promoted_primary(primary, target, replicas=False)["spec"]["replicas"] == 2  # type: ignore[index]
    assert b.promoted_primary(primary, target)["spec"]["replicas"] == 5  # type: ignore[index]


def test_the_operator_may_touch_both_kinds() -> None:
    assert {("autoscaling", "horizontalpodautoscalers", v) for v in ("get", "create", "update")} <= NEEDED
    assert {("keda.sh", "scaledobjects", v) for v in ("get", "create", "update", "patch")} <= NEEDED


# -- the sandbox's simulated autoscalers -------------------------------------------------------


@pytest.mark.parametrize(("spec", "current", "expected"), [
    ({"minReplicas": 2, "maxReplicas": 4}, 1, (2, "TooFewReplicas")),
    ({"minReplicas": 2, "maxReplicas": 4}, 3, (3, "DesiredWithinRange")),
    ({"minReplicas": 2, "maxReplicas": 4}, 9, (4, "TooManyReplicas")),
    ({"minReplicas": 2, "maxReplicas": 4}, 0, (0, "ScalingDisabled")),  # a canary at zero stays there
    ({"maxReplicas": 4}, 1, (1, "DesiredWithinRange")),
])
def test_the_simulated_hpa(spec: dict[str, Any], current: int, expected: tuple[int, str]) -> None:
    assert hpa_desired({"spec": spec}, current) == expected


@pytest.mark.parametrize(("annotations", "spec", "current", "expected"), [
    ({}, {"minReplicaCount": 1, "maxReplicaCount": 3}, 0, 1),
    ({}, {"minReplicaCount": 1, "maxReplicaCount": 3}, 5, 3),
    ({}, {}, 0, 0),
    ({PAUSED_REPLICAS_ANNOTATION: "0"}, {"minReplicaCount": 1, "maxReplicaCount": 3}, 2, 0),
    ({PAUSED_REPLICAS_ANNOTATION: "0"}, {"minReplicaCount": 1}, 0, 0),
    ({"autoscaling.keda.sh/paused": "true"}, {"minReplicaCount": 1}, 0, 0),
])
def test_the_simulated_scaled_object(annotations: dict[str, str], spec: dict[str, Any], current: int,
                                     expected: int) -> None:
    assert scaled_object_desired({"metadata": {"annotations": annotations}, "spec": spec}, current)[0] == expected
