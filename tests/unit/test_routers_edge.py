"""The traefik, apisix and skipper routers' pure parts: the objects each writes for a weight and for
the end of a run, compared with what Flagger's routers write (fluxcd/flagger pkg/router/traefik.go,
apisix.go and skipper.go and their tests) for the objects of Flagger's tutorials
(docs/gitbook/tutorials/{traefik,apisix,skipper}-progressive-delivery.md), and the weights read back."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from rollout.api.parse import parse_canary
from rollout.api.spec import Canary
from rollout.routers import RouterError, apisix, skipper, traefik
from rollout.routers.base import Extras
from rollout.routers.objects import merged

UID = "5f0c8a2e-0000-4000-8000-000000000002"
OWNER = [{"apiVersion": "rollout.gitops.dev/v1alpha1", "kind": "Canary", "name": "podinfo", "uid": UID,
          "controller": True, "blockOwnerDeletion": True}]
MANAGED = {"app.kubernetes.io/managed-by": "rollout"}
WEIGHTS = [(100, 0), (90, 10), (50, 50), (15, 85), (0, 100)]


def canary(provider: str, **spec: Any) -> Canary:
    body: dict[str, Any] = {
        "provider": provider,
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": {"port": 80, "targetPort": 9898},
        "analysis": {"interval": "10s", "threshold": 10, "maxWeight": 50, "stepWeight": 5},
        **spec,
    }
    if provider == "skipper":
        body.setdefault("ingressRef", {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "podinfo"})
    if provider == "apisix":
        body.setdefault("routeRef", {"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute", "name": "podinfo"})
    return parse_canary({"apiVersion": "rollout.gitops.dev/v1alpha1", "kind": "Canary",
                         "metadata": {"name": "podinfo", "namespace": "test", "uid": UID}, "spec": body})


# --- traefik ----------------------------------------------------------------------------------------


def traefik_entry(name: str, weight: int) -> dict[str, Any]:
    return {"name": name, "namespace": "test", "port": 80, "weight": weight}


@pytest.mark.parametrize("primary, canary_weight, services", [
    # Flagger's Reconcile and SetRoutes(100, 0): the primary alone
    (100, 0, [traefik_entry("podinfo-primary", 100)]),
    # SetRoutes(80, 20): both, the primary first (traefik_test.go "20%")
    (80, 20, [traefik_entry("podinfo-primary", 80), traefik_entry("podinfo-canary", 20)]),
    # SetRoutes(0, 100): Flagger's omitempty drops the 0 (Traefik would read 1); we write it
    (0, 100, [traefik_entry("podinfo-primary", 0), traefik_entry("podinfo-canary", 100)]),
])
def test_traefikservice_as_flagger_writes_it(primary: int, canary_weight: int,
                                             services: list[dict[str, Any]]) -> None:
    obj = traefik.desired_traefikservice(canary("traefik"), primary, canary_weight)
    assert obj == {
        "apiVersion": "traefik.io/v1alpha1", "kind": "TraefikService",
        "metadata": {"name": "podinfo", "namespace": "test", "labels": MANAGED, "ownerReferences": OWNER},
        "spec": {"weighted": {"services": services}},
    }
    assert traefik.weights_of(obj) == (primary, canary_weight)


def test_traefikservice_carries_the_apex_metadata() -> None:
    release = canary("traefik", service={"port": 80, "apex": {"labels": {"test": "label"},
                                                               "annotations": {"test": "annotation"}}})
    meta = traefik.desired_traefikservice(release, 100, 0)["metadata"]
    assert meta["labels"] == {"test": "label", **MANAGED} and meta["annotations"] == {"test": "annotation"}


def test_traefikservice_weights_read_as_traefik_shares_them() -> None:
    obj = traefik.desired_traefikservice(canary("traefik"), 60, 40)
    entries = obj["spec"]["weighted"]["services"]
    del entries[0]["weight"]  # Traefik: a missing weight is 1
    assert traefik.weights_of(obj) == (1, 40)
    entries.append(traefik_entry("legacy", 10))
    assert traefik.weights_of(obj) is None  # a third Service shares the traffic
    assert traefik.weights_of({"metadata": {"name": "podinfo"}, "spec": {}}) is None


def test_traefik_refuses_what_it_cannot_route() -> None:
    release = canary("traefik")
    with pytest.raises(RouterError, match="A/B testing"):
        traefik.desired_traefikservice(release, 90, 10, True)
    with pytest.raises(RouterError, match="mirror"):
        traefik.desired_traefikservice(release, 90, 10, False, Extras(mirror=True))


# --- apisix -----------------------------------------------------------------------------------------

# Flagger's apisix tutorial's ApisixRoute, the user's (left alone).
USER_ROUTE: dict[str, Any] = {
    "apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute",
    "metadata": {"name": "podinfo", "namespace": "test", "labels": {"team": "web"},
                 "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "note": "x"}},
    "spec": {"http": [
        {"name": "static", "match": {"paths": ["/static/*"]}, "backends": [{"serviceName": "cdn", "servicePort": 80}]},
        {"backends": [{"serviceName": "podinfo", "servicePort": 80}],
         "match": {"hosts": ["app.example.com"], "methods": ["GET"], "paths": ["/*"]},
         "name": "method",
         "plugins": [{"name": "prometheus", "enable": True, "config": {"disable": False, "prefer_name": True}}]},
    ]},
}


@pytest.mark.parametrize("primary, canary_weight", WEIGHTS)
def test_canary_apisixroute_as_flagger_writes_it(primary: int, canary_weight: int) -> None:
    obj = apisix.desired_apisixroute(canary("apisix"), USER_ROUTE, primary, canary_weight)
    # Flagger's Reconcile: only the rule with the apex backend, priority 10000, primary and canary backends
    assert obj == {
        "apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute",
        "metadata": {"name": "podinfo-podinfo-canary", "namespace": "test", "labels": {"team": "web", **MANAGED},
                     "ownerReferences": OWNER, "annotations": {"note": "x"}},
        "spec": {"http": [{
            "backends": [{"serviceName": "podinfo-primary", "servicePort": 80, "weight": primary},
                         {"serviceName": "podinfo-canary", "servicePort": 80, "weight": canary_weight}],
            "match": {"hosts": ["app.example.com"], "methods": ["GET"], "paths": ["/*"]},
            "name": "method",
            "plugins": [{"name": "prometheus", "enable": True, "config": {"disable": False, "prefer_name": True}}],
            "priority": 10000,
        }]},
    }
    assert apisix.weights_of(obj, "podinfo-primary", "podinfo-canary") == (primary, canary_weight)
    assert USER_ROUTE["spec"]["http"][1]["backends"] == [{"serviceName": "podinfo", "servicePort": 80}]


def test_canary_apisix_backend_copies_the_primarys_port_granularity_and_subset() -> None:
    user = copy.deepcopy(USER_ROUTE)
    user["spec"]["http"][1]["backends"][0].update(resolveGranularity="service", subset="v1", servicePort="http")
    backends = apisix.desired_apisixroute(canary("apisix"), user, 90, 10)["spec"]["http"][0]["backends"]
    assert backends[1] == {"serviceName": "podinfo-canary", "servicePort": "http", "resolveGranularity": "service",
                           "subset": "v1", "weight": 10}


def test_apisix_needs_a_route_ref_and_one_apex_backend() -> None:
    with pytest.raises(RouterError, match=r"needs spec\.routeRef"):
        apisix.route_names(canary("traefik"))
    user = copy.deepcopy(USER_ROUTE)
    user["spec"]["http"][1]["backends"].append({"serviceName": "other", "servicePort": 80})
    with pytest.raises(RouterError, match="several backends"):
        apisix.desired_apisixroute(canary("apisix"), user, 100, 0)
    user["spec"]["http"] = user["spec"]["http"][:1]
    with pytest.raises(RouterError, match="no http backend for the Service podinfo"):
        apisix.desired_apisixroute(canary("apisix"), user, 100, 0)
    user["spec"]["http"] = []
    with pytest.raises(RouterError, match=r"spec\.http is empty"):
        apisix.desired_apisixroute(canary("apisix"), user, 100, 0)


def test_apisix_weights_read_back() -> None:
    obj = apisix.desired_apisixroute(canary("apisix"), USER_ROUTE, 70, 30)
    del obj["spec"]["http"][0]["backends"][1]["weight"]  # APISIX's default weight is 100
    # the pair the proxy shares by (not one the planner sets: verify_weight then differs)
    assert apisix.weights_of(obj, "podinfo-primary", "podinfo-canary") == (70, 100)
    assert apisix.weights_of(USER_ROUTE, "podinfo-primary", "podinfo-canary") is None


# --- skipper ----------------------------------------------------------------------------------------

# Flagger's skipper tutorial's Ingress, the user's (left alone).
USER_INGRESS: dict[str, Any] = {
    "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
    "metadata": {"name": "podinfo", "namespace": "test", "labels": {"app": "podinfo"},
                 "annotations": {"kubernetes.io/ingress.class": "skipper",
                                 "zalando.org/skipper-predicate": 'Method("GET")'}},
    "spec": {"rules": [{"host": "app.example.com", "http": {"paths": [
        {"pathType": "Prefix", "path": "/", "backend": {"service": {"name": "podinfo", "port": {"number": 80}}}},
    ]}}]},
}


def skipper_path(service: str) -> dict[str, Any]:
    return {"pathType": "Prefix", "path": "/", "backend": {"service": {"name": service, "port": {"number": 80}}}}


@pytest.mark.parametrize("primary, canary_weight, enabled, predicate", [
    (100, 0, True, 'Weight(100) && Method("GET")'),  # Flagger's Reconcile
    (90, 10, True, 'Weight(100) && Method("GET")'),  # SetRoutes(90, 10)
    (0, 100, True, 'Weight(100) && Method("GET")'),
    (100, 0, False, 'False() && Method("GET")'),  # SetRoutes(100, 0): the canary Ingress matches nothing
])
def test_canary_ingress_as_flagger_writes_it(primary: int, canary_weight: int, enabled: bool, predicate: str) -> None:
    obj = skipper.desired_ingress(canary("skipper"), USER_INGRESS, primary, canary_weight, enabled=enabled)
    assert obj == {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "podinfo-canary", "namespace": "test", "labels": {"app": "podinfo", **MANAGED},
                     "ownerReferences": OWNER,
                     "annotations": {"kubernetes.io/ingress.class": "skipper",
                                     "zalando.org/skipper-predicate": predicate,
                                     "zalando.org/backend-weights":
                                         f'{{"podinfo-canary":{canary_weight},"podinfo-primary":{primary}}}'}},
        "spec": {"rules": [{"host": "app.example.com", "http": {"paths": [
            skipper_path("podinfo-primary"), skipper_path("podinfo-canary")]}}]},
    }
    weights = json.loads(obj["metadata"]["annotations"]["zalando.org/backend-weights"])
    assert weights == {"podinfo-primary": primary, "podinfo-canary": canary_weight}
    expected = (primary, canary_weight) if enabled else (100, 0)
    assert skipper.weights_of(obj, "podinfo-primary", "podinfo-canary") == expected
    assert USER_INGRESS["spec"]["rules"][0]["http"]["paths"] == [skipper_path("podinfo")]


@pytest.mark.parametrize("raw, first, want", [  # Flagger's Test_insertPredicate
    ('Host(/^my-host-header\\.example\\.org$/) && Method("GET") && Path("/hello")', "Weight(100)",
     'Weight(100) && Host(/^my-host-header\\.example\\.org$/) && Method("GET") && Path("/hello")'),
    ("", "Weight(100)", "Weight(100)"),
    ('Weight(100) && Method("GET")', "Weight(100)", 'Weight(100) && Method("GET")'),
    ('Weight(100) && Method("GET")', "False()", 'False() && Method("GET")'),
    ('False() && Method("GET")', "Weight(100)", 'Weight(100) && Method("GET")'),
])
def test_insert_predicate(raw: str, first: str, want: str) -> None:
    assert skipper.insert_predicate(raw, first) == want


def test_skipper_weights_read_back_and_merge_keeps_them() -> None:
    release = canary("skipper")
    live = skipper.desired_ingress(release, USER_INGRESS, 60, 40)
    notes = live["metadata"]["annotations"]
    assert merged(live, skipper.desired_ingress(release, USER_INGRESS, 60, 40)) is None
    for bad in ("{", '{"podinfo-primary": 60}', '{"podinfo-primary": "60", "podinfo-canary": 40}'):
        notes["zalando.org/backend-weights"] = bad
        assert skipper.weights_of(live, "podinfo-primary", "podinfo-canary") is None
    del notes["zalando.org/backend-weights"]
    assert skipper.weights_of(live, "podinfo-primary", "podinfo-canary") is None


def test_skipper_needs_an_ingress_ref_and_the_apex_backend() -> None:
    with pytest.raises(RouterError, match="ingressRef"):
        skipper.ingress_names(canary("traefik"))
    other = copy.deepcopy(USER_INGRESS)
    other["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = "web"
    with pytest.raises(RouterError, match="no path with a backend for the Service podinfo"):
        skipper.desired_ingress(canary("skipper"), other, 100, 0)
