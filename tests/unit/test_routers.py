"""The routers' pure parts: the objects each provider builds for given weights and A/B matches, the
weights read back from them, ownership, and the registry."""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from typing import Any

import pytest
from kubernetes import client

from rollout.api.parse import parse_bluegreen, parse_canary
from rollout.api.spec import PROVIDER_ALIASES, Canary, Provider
from rollout.routers import (
    ROUTERS,
    RouterError,
    contour,
    gatewayapi,
    gloo,
    istio,
    kubernetes,
    linkerd,
    nginx,
    router_for,
    smi,
)
from rollout.routers.apisix import ApisixRouter
from rollout.routers.appmesh import AppMeshRouter
from rollout.routers.base import Extras
from rollout.routers.contour import ContourRouter
from rollout.routers.gatewayapi import GatewayAPIRouter
from rollout.routers.gloo import GlooRouter
from rollout.routers.istio import IstioRouter
from rollout.routers.knative import KnativeRouter, desired_service, is_matched, weights_of
from rollout.routers.kubernetes import KubernetesRouter
from rollout.routers.kuma import KumaRouter
from rollout.routers.linkerd import LinkerdRouter
from rollout.routers.nginx import NginxRouter
from rollout.routers.objects import merged
from rollout.routers.route import kept
from rollout.routers.skipper import SkipperRouter
from rollout.routers.smi import SMIRouter
from rollout.routers.traefik import TraefikRouter
from rollout.settings import Settings

UID = "5f0c8a2e-0000-4000-8000-000000000001"
HEADER_MATCH = {"headers": {"x-canary": {"exact": "insider"}}}
COOKIE_REGEX = "^(.*?;)?(canary=always)(;.*)?$"
COOKIE_MATCH = {"headers": {"cookie": {"regex": COOKIE_REGEX}}}
SIDES = kubernetes.Sides(primary={"app": "podinfo-primary"}, canary={"app": "podinfo"})


def canary(provider: str = "gatewayapi", match: list[dict[str, Any]] | None = None,
           service_match: list[dict[str, Any]] | None = None, **service: Any) -> Canary:
    analysis: dict[str, Any] = {"interval": "1m", "threshold": 2}
    if match:
        analysis.update(iterations=5, match=match)
    elif provider == "kubernetes":
        analysis.update(iterations=5)  # blue/green: a Service selector switches all traffic at once
    else:
        analysis.update(maxWeight=50, stepWeight=10)
    spec: dict[str, Any] = {
        "provider": provider,
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": {"port": 9898, **service, **({"match": service_match} if service_match else {})},
        "analysis": analysis,
    }
    if provider == "nginx":
        spec["ingressRef"] = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "web"}
    if provider == "gatewayapi" and "gatewayRefs" not in service:
        spec["service"]["gatewayRefs"] = [{"name": "public", "namespace": "gateways"}]
    return parse_canary({"apiVersion": "rollout.gitops.dev/v1alpha1", "kind": "Canary",
                         "metadata": {"name": "podinfo", "namespace": "test", "uid": UID}, "spec": spec})


def user_ingress(service: str = "podinfo") -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "test", "labels": {"team": "web"},
                     "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "8m",
                                     "nginx.ingress.kubernetes.io/canary-weight": "70",
                                     "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {"ingressClassName": "nginx", "rules": [{"host": "app.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix",
             "backend": {"service": {"name": service, "port": {"number": 80}}}},
            {"path": "/static", "pathType": "Prefix",
             "backend": {"service": {"name": "cdn", "port": {"number": 80}}}},
        ]}}]},
    }


def owned(obj: dict[str, Any], kind: str = "Canary") -> None:
    meta = obj["metadata"]
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "rollout"
    assert meta["ownerReferences"] == [{"apiVersion": "rollout.gitops.dev/v1alpha1", "kind": kind,
                                        "name": "podinfo", "uid": UID, "controller": True,
                                        "blockOwnerDeletion": True}]


# --- weights: what is built is what is read back -------------------------------------------------

WEIGHTS = [(100, 0), (90, 10), (55, 45), (1, 99), (0, 100)]


@pytest.mark.parametrize("primary, canary_weight", WEIGHTS)
@pytest.mark.parametrize("build, read, provider", [
    (gatewayapi.desired_httproute, gatewayapi.weights_of, "gatewayapi"),
    (istio.desired_virtualservice, istio.weights_of, "istio"),
    (smi.desired_trafficsplit, smi.weights_of, "smi"),
    (linkerd.desired_httproute, gatewayapi.weights_of, "linkerd"),
    (contour.desired_httpproxy, contour.weights_of, "contour"),
    (gloo.desired_routetable, gloo.weights_of, "gloo"),
])
def test_weights_round_trip(build: Any, read: Any, provider: str, primary: int, canary_weight: int) -> None:
    obj = build(canary(provider), primary, canary_weight, False)
    assert read(obj) == (primary, canary_weight)
    owned(obj)


@pytest.mark.parametrize("primary, canary_weight", WEIGHTS)
def test_nginx_weights_round_trip(primary: int, canary_weight: int) -> None:
    obj = nginx.desired_ingress(canary("nginx"), user_ingress(), primary, canary_weight)
    assert nginx.weights_of(obj) == (primary, canary_weight)
    assert obj["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] == str(canary_weight)


@pytest.mark.parametrize("build", [gatewayapi.desired_httproute, istio.desired_virtualservice,
                                   smi.desired_trafficsplit,
                                   lambda _, p, c, m: kubernetes.desired_selector(SIDES, p, c, m)])
@pytest.mark.parametrize("primary, canary_weight", [(90, 20), (-10, 110), (101, -1)])
def test_invalid_weights_are_refused(build: Any, primary: int, canary_weight: int) -> None:
    with pytest.raises(RouterError) as e:
        build(canary("istio"), primary, canary_weight, False)
    assert not e.value.temporary


def test_readers_give_none_for_objects_without_a_split() -> None:
    route = gatewayapi.desired_httproute(canary(), 90, 10)
    route["spec"]["rules"][0]["backendRefs"].pop()
    assert gatewayapi.weights_of(route) is None
    vs = istio.desired_virtualservice(canary("istio"), 90, 10)
    vs["spec"]["http"][0]["route"][0]["weight"] = "ninety"
    assert istio.weights_of(vs) is None
    assert smi.weights_of({"metadata": {"name": "podinfo"}, "spec": {"service": "podinfo", "backends": []}}) is None
    ing = nginx.desired_ingress(canary("nginx"), user_ingress(), 90, 10)
    ing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] = "x"
    assert nginx.weights_of(ing) is None


def test_kept_weights_fall_back_to_the_primary() -> None:
    assert kept((70, 30)) == (70, 30)
    assert kept(None) == (100, 0)
    assert kept((50, 60)) == (100, 0)


# --- Gateway API -----------------------------------------------------------------------------


def test_httproute_shape() -> None:
    release = canary(hosts=["app.example.com"], gatewayRefs=[{"name": "public", "namespace": "gw"}])
    route = gatewayapi.desired_httproute(release, 90, 10)
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["metadata"]["name"] == "podinfo"
    assert route["spec"]["parentRefs"] == [{"name": "public", "namespace": "gw"}]
    assert route["spec"]["hostnames"] == ["app.example.com"]
    [rule] = route["spec"]["rules"]
    assert rule["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "podinfo-primary", "port": 9898, "weight": 90},
        {"group": "", "kind": "Service", "name": "podinfo-canary", "port": 9898, "weight": 10},
    ]
    assert not gatewayapi.is_matched(route)


def test_service_name_names_the_route_and_backends() -> None:
    route = gatewayapi.desired_httproute(canary(name="frontend"), 80, 20)
    assert route["metadata"]["name"] == "frontend"
    assert [b["name"] for b in route["spec"]["rules"][0]["backendRefs"]] == ["frontend-primary", "frontend-canary"]
    assert gatewayapi.weights_of(route) == (80, 20)


def test_httproute_needs_gateway_refs() -> None:
    # Validation refuses such a Canary; the router still refuses to build a route without a Gateway.
    release = canary()
    release = replace(release, spec=replace(release.spec, service=replace(release.spec.service, gateway_refs=())))
    with pytest.raises(RouterError, match="gatewayRefs") as e:
        gatewayapi.desired_httproute(release, 100, 0)
    assert not e.value.temporary


def test_httproute_ab_rule_goes_first_and_only_to_the_canary() -> None:
    release = canary(match=[HEADER_MATCH, COOKIE_MATCH, {"headers": {"cookie": {"exact": "beta"}}}])
    route = gatewayapi.desired_httproute(release, 100, 0, True)
    ab, default = route["spec"]["rules"]
    assert ab["backendRefs"] == [{"group": "", "kind": "Service", "name": "podinfo-canary", "port": 9898,
                                  "weight": 100}]
    prefix = {"type": "PathPrefix", "value": "/"}
    assert ab["matches"][0] == {"path": prefix, "headers": [{"name": "x-canary", "type": "Exact", "value": "insider"}]}
    assert ab["matches"][1] == {"path": prefix, "headers": [{"name": "Cookie", "type": "RegularExpression",
                                                             "value": COOKIE_REGEX}]}
    cookie = ab["matches"][2]["headers"][0]
    assert cookie["name"] == "Cookie" and cookie["type"] == "RegularExpression"
    assert re.search(cookie["value"], "session=1; beta=always; theme=dark")
    assert re.search(cookie["value"], "beta=always")
    assert not re.search(cookie["value"], "notbeta=always")
    assert not re.search(cookie["value"], "beta=never")
    assert [b["name"] for b in default["backendRefs"]] == ["podinfo-primary", "podinfo-canary"]
    assert gatewayapi.weights_of(route) == (100, 0)
    assert gatewayapi.is_matched(route)
    # without `match` the same release gets the plain weighted rule only
    assert len(gatewayapi.desired_httproute(release, 100, 0, False)["spec"]["rules"]) == 1


def test_httproute_prefix_suffix_and_query_matches() -> None:
    release = canary(match=[{"headers": {"user-agent": {"prefix": "Mozilla/5.0 ("}, "x-env": {"suffix": ".test"}},
                             "queryParams": {"canary": {"exact": "1"}}}])
    [match] = gatewayapi.desired_httproute(release, 100, 0, True)["spec"]["rules"][0]["matches"]
    agent = next(h for h in match["headers"] if h["name"] == "user-agent")
    env = next(h for h in match["headers"] if h["name"] == "x-env")
    assert re.fullmatch(agent["value"], "Mozilla/5.0 (X11)") and not re.fullmatch(agent["value"], "Mozilla/5X0 X")
    assert re.fullmatch(env["value"], "eu.test") and not re.fullmatch(env["value"], "eu-test")
    assert match["queryParams"] == [{"name": "canary", "type": "Exact", "value": "1"}]


def test_httproute_refuses_source_labels() -> None:
    release = canary(match=[{"sourceLabels": {"app": "frontend"}}])
    with pytest.raises(RouterError, match="sourceLabels") as e:
        gatewayapi.desired_httproute(release, 100, 0, True)
    assert not e.value.temporary


# --- Istio ---------------------------------------------------------------------------------


def test_virtualservice_shape() -> None:
    release = canary("istio", hosts=["app.example.com"], gateways=["istio-system/public", "mesh"],
                     retries={"attempts": 3}, timeout="5s")
    vs = istio.desired_virtualservice(release, 60, 40)
    assert vs["apiVersion"] == "networking.istio.io/v1beta1"
    assert vs["spec"]["hosts"] == ["app.example.com", "podinfo"]
    assert vs["spec"]["gateways"] == ["istio-system/public", "mesh"]
    [route] = vs["spec"]["http"]
    assert route["route"] == [
        {"destination": {"host": "podinfo-primary", "port": {"number": 9898}}, "weight": 60},
        {"destination": {"host": "podinfo-canary", "port": {"number": 9898}}, "weight": 40},
    ]
    assert route["retries"] == {"attempts": 3} and route["timeout"] == "5s"
    owned(vs)


def test_virtualservice_ab_route_first() -> None:
    release = canary("istio", match=[HEADER_MATCH, COOKIE_MATCH])
    vs = istio.desired_virtualservice(release, 100, 0, True)
    ab, default = vs["spec"]["http"]
    assert ab["match"] == [HEADER_MATCH, COOKIE_MATCH]  # Istio's own match format, verbatim
    assert ab["route"] == [{"destination": {"host": "podinfo-canary", "port": {"number": 9898}}, "weight": 100}]
    assert istio.weights_of(vs) == (100, 0)
    assert istio.is_matched(vs) and not istio.is_matched(istio.desired_virtualservice(release, 100, 0))
    assert default["route"][0]["destination"]["host"] == "podinfo-primary"


def test_virtualservice_ab_merges_service_match() -> None:
    release = canary("istio", match=[HEADER_MATCH], service_match=[{"uri": {"prefix": "/api"}}])
    ab, default = istio.desired_virtualservice(release, 100, 0, True)["spec"]["http"]
    assert ab["match"] == [{"uri": {"prefix": "/api"}, **HEADER_MATCH}]
    assert default["match"] == [{"uri": {"prefix": "/api"}}]


def test_destination_rules() -> None:
    policy = {"tls": {"mode": "ISTIO_MUTUAL"}}
    release = canary("istio", trafficPolicy=policy)
    rule = istio.desired_destinationrule(release, "podinfo-canary")
    assert rule["metadata"]["name"] == "podinfo-canary"
    assert rule["spec"] == {"host": "podinfo-canary", "trafficPolicy": policy}
    owned(rule)
    assert istio.desired_destinationrule(canary("istio"), "podinfo-primary")["spec"] == {"host": "podinfo-primary"}


# --- nginx ---------------------------------------------------------------------------------


def test_canary_ingress_clones_the_users_ingress() -> None:
    source = user_ingress()
    before = copy.deepcopy(source)
    ing = nginx.desired_ingress(canary("nginx"), source, 80, 20)
    assert source == before  # the user's Ingress is not changed
    assert ing["metadata"]["name"] == "web-canary"
    assert ing["metadata"]["labels"] == {"team": "web", "app.kubernetes.io/managed-by": "rollout"}
    assert ing["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/proxy-body-size": "8m",
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "20",
    }
    paths = ing["spec"]["rules"][0]["http"]["paths"]
    assert [p["backend"]["service"]["name"] for p in paths] == ["podinfo-canary", "cdn"]
    assert ing["spec"]["ingressClassName"] == "nginx"
    owned(ing)


def test_canary_ingress_needs_the_apex_backend_and_an_ingress_ref() -> None:
    with pytest.raises(RouterError, match="no backend for the Service podinfo") as e:
        nginx.desired_ingress(canary("nginx"), user_ingress(service="other"), 100, 0)
    assert not e.value.temporary
    release = canary("istio")
    with pytest.raises(RouterError, match="ingressRef"):
        nginx.desired_ingress(release, user_ingress(), 100, 0)


@pytest.mark.parametrize("match, expected", [
    ([HEADER_MATCH], {"canary-by-header": "x-canary", "canary-by-header-value": "insider"}),
    ([{"headers": {"x-canary": {"regex": "^in.*"}}}],
     {"canary-by-header": "x-canary", "canary-by-header-pattern": "^in.*"}),
    ([{"headers": {"cookie": {"exact": "canary"}}}], {"canary-by-cookie": "canary"}),
    ([HEADER_MATCH, {"headers": {"cookie": {"exact": "canary"}}}],
     {"canary-by-header": "x-canary", "canary-by-header-value": "insider", "canary-by-cookie": "canary"}),
])
def test_canary_ingress_ab_annotations(match: list[dict[str, Any]], expected: dict[str, str]) -> None:
    ing = nginx.desired_ingress(canary("nginx", match=match), user_ingress(), 100, 0, True)
    annotations = ing["metadata"]["annotations"]
    by = {k.removeprefix(nginx.PREFIX): v for k, v in annotations.items() if "canary-by" in k}
    assert by == expected
    assert annotations[nginx.CANARY] == "true" and annotations[nginx.WEIGHT] == "0"
    assert nginx.weights_of(ing) == (100, 0) and nginx.is_matched(ing)


@pytest.mark.parametrize("match", [
    [HEADER_MATCH, {"headers": {"x-other": {"exact": "1"}}}],  # two headers
    [COOKIE_MATCH],  # a cookie by regex
    [{"sourceLabels": {"app": "x"}}],
])
def test_canary_ingress_refuses_what_nginx_cannot_match(match: list[dict[str, Any]]) -> None:
    with pytest.raises(RouterError) as e:
        nginx.desired_ingress(canary("nginx", match=match), user_ingress(), 100, 0, True)
    assert not e.value.temporary


def test_disabled_canary_ingress_takes_nothing() -> None:
    ing = nginx.desired_ingress(canary("nginx"), user_ingress(), 50, 50)
    ing["metadata"]["annotations"][nginx.CANARY] = "false"
    assert nginx.weights_of(ing) == (100, 0)


# --- SMI and Linkerd ---------------------------------------------------------------------------


def test_trafficsplit_shape_and_no_matching() -> None:
    ts = smi.desired_trafficsplit(canary("smi"), 70, 30)
    assert ts["apiVersion"] == "split.smi-spec.io/v1alpha2"
    assert ts["spec"] == {"service": "podinfo", "backends": [{"service": "podinfo-primary", "weight": 70},
                                                             {"service": "podinfo-canary", "weight": 30}]}
    with pytest.raises(RouterError, match="A/B") as e:
        smi.desired_trafficsplit(canary("smi"), 100, 0, True)
    assert not e.value.temporary


def test_linkerd_uses_a_trafficsplit_and_an_httproute_for_ab() -> None:
    assert not linkerd.uses_httproute(canary("linkerd"))
    assert linkerd.TRAFFICSPLIT is smi.ROUTE
    release = canary("linkerd", match=[HEADER_MATCH])
    assert linkerd.uses_httproute(release)
    route = linkerd.desired_httproute(release, 100, 0, True)
    assert route["apiVersion"] == "policy.linkerd.io/v1beta2"
    assert route["spec"]["parentRefs"] == [{"group": "core", "kind": "Service", "name": "podinfo", "port": 9898}]
    assert route["spec"]["rules"] == gatewayapi.route_rules(release, 100, 0, True)
    assert gatewayapi.weights_of(route) == (100, 0) and gatewayapi.is_matched(route)


# --- kubernetes (Service selector) -------------------------------------------------------------


def test_selector_switches_between_primary_and_canary_sides() -> None:
    release = canary("kubernetes", name="web")
    assert kubernetes.desired_selector(SIDES, 100, 0) == {"app": "podinfo-primary"}
    assert kubernetes.desired_selector(SIDES, 0, 100) == {"app": "podinfo"}
    service: dict[str, Any] = {"metadata": {"name": "web"},
                               "spec": {"ports": [{"port": 80}], "selector": {"app": "podinfo-primary"}}}
    assert kubernetes.weights_of(service, SIDES) == (100, 0)
    assert kubernetes.desired_service(release, service, SIDES, 100, 0) is None
    switched = kubernetes.desired_service(release, service, SIDES, 0, 100)
    assert switched is not None
    assert switched["spec"] == {"ports": [{"port": 80}], "selector": {"app": "podinfo"}}
    assert service["spec"]["selector"] == {"app": "podinfo-primary"}  # the input is not changed
    assert kubernetes.weights_of(switched, SIDES) == (0, 100)
    assert kubernetes.weights_of({"spec": {"selector": {"app": "other"}}}, SIDES) is None
    assert kubernetes.weights_of({"spec": {}}, kubernetes.Sides({}, {})) is None


def test_selector_follows_whatever_label_the_sides_use() -> None:
    sides = kubernetes.Sides(primary={"app.kubernetes.io/name": "shop-primary"},
                             canary={"app.kubernetes.io/name": "shop"})
    assert kubernetes.desired_selector(sides, 0, 100) == {"app.kubernetes.io/name": "shop"}
    assert kubernetes.weights_of({"spec": {"selector": {"app.kubernetes.io/name": "shop-primary"}}}, sides) == (100, 0)


def test_selector_refuses_weighted_and_ab_routing() -> None:
    with pytest.raises(RouterError, match="mesh or gateway provider") as e:
        kubernetes.desired_selector(SIDES, 90, 10)
    assert not e.value.temporary
    with pytest.raises(RouterError, match="A/B"):
        kubernetes.desired_selector(SIDES, 100, 0, True)


# --- ownership and updates -------------------------------------------------------------------


def test_bluegreen_owns_its_objects() -> None:
    release = parse_bluegreen({
        "apiVersion": "rollout.gitops.dev/v1alpha1", "kind": "BlueGreen",
        "metadata": {"name": "podinfo", "namespace": "test", "uid": UID},
        "spec": {"provider": "istio", "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                 "service": {"port": 9898}, "analysis": {"interval": "1m", "iterations": 3}},
    })
    owned(istio.desired_virtualservice(release, 0, 100), kind="BlueGreen")


def test_merge_keeps_foreign_metadata_and_is_a_no_op_when_nothing_changes() -> None:
    desired = gatewayapi.desired_httproute(canary(), 90, 10)
    live = copy.deepcopy(desired)
    live["metadata"].update(resourceVersion="7", uid="x")
    live["metadata"]["labels"]["team"] = "web"
    live["metadata"]["annotations"] = {"note": "kept"}
    live["status"] = {"parents": []}
    assert merged(live, desired) is None
    update = merged(live, gatewayapi.desired_httproute(canary(), 50, 50))
    assert update is not None
    assert update["metadata"]["resourceVersion"] == "7"
    assert update["metadata"]["labels"]["team"] == "web"
    assert update["metadata"]["annotations"] == {"note": "kept"}
    assert gatewayapi.weights_of(update) == (50, 50)


def test_merge_takes_over_an_unowned_object_but_not_anothers() -> None:
    desired = smi.desired_trafficsplit(canary("smi"), 100, 0)
    unowned = {"metadata": {"name": "podinfo", "resourceVersion": "3"}, "spec": {}}
    update = merged(unowned, desired)
    assert update is not None and update["metadata"]["ownerReferences"] == desired["metadata"]["ownerReferences"]
    foreign = copy.deepcopy(desired)
    foreign["metadata"]["ownerReferences"][0].update(uid="other", name="other")
    with pytest.raises(RouterError, match="controlled by Canary other") as e:
        merged(foreign, desired)
    assert not e.value.temporary
    predecessor = copy.deepcopy(desired)
    predecessor["metadata"]["ownerReferences"][0]["uid"] = "deleted-and-made-again"
    update = merged(predecessor, desired)
    assert update is not None and update["metadata"]["ownerReferences"] == desired["metadata"]["ownerReferences"]


def test_no_owner_reference_without_a_uid() -> None:
    release = canary("smi")
    bare = Canary(metadata=type(release.metadata)(name="podinfo", namespace="test"), spec=release.spec)
    meta = smi.desired_trafficsplit(bare, 100, 0)["metadata"]
    assert "ownerReferences" not in meta and meta["labels"] == {"app.kubernetes.io/managed-by": "rollout"}


# --- the registry ----------------------------------------------------------------------------


ROUTER_CLASSES = {
    Provider.GATEWAYAPI: GatewayAPIRouter, Provider.ISTIO: IstioRouter, Provider.NGINX: NginxRouter,
    Provider.SMI: SMIRouter, Provider.LINKERD: LinkerdRouter, Provider.KUBERNETES: KubernetesRouter,
    Provider.OSM: SMIRouter,
    Provider.CONTOUR: ContourRouter,
    Provider.GLOO: GlooRouter,
}
ROUTER_CLASSES.update({Provider.KUMA: KumaRouter, Provider.APPMESH: AppMeshRouter})
ROUTER_CLASSES[Provider.KNATIVE] = KnativeRouter
ROUTER_CLASSES.update({Provider.TRAEFIK: TraefikRouter, Provider.APISIX: ApisixRouter,
                       Provider.SKIPPER: SkipperRouter})


def test_registry_covers_every_provider() -> None:
    assert set(ROUTERS) == set(Provider)


@pytest.mark.parametrize("name", [*(p.value for p in Provider), *PROVIDER_ALIASES])
def test_router_for_names_and_aliases(name: str) -> None:
    provider = PROVIDER_ALIASES.get(name) or Provider(name)
    api = client.ApiClient(client.Configuration(host="http://127.0.0.1:9"))
    assert type(router_for(name, api, Settings())) is ROUTER_CLASSES[provider]
    assert type(router_for(provider, api, Settings())) is ROUTER_CLASSES[provider]


def test_router_for_rejects_unknown_names() -> None:
    api = client.ApiClient(client.Configuration(host="http://127.0.0.1:9"))
    with pytest.raises(ValueError, match="ambassador") as e:
        router_for("ambassador", api, Settings())
    for known in ("gatewayapi", "istio", "nginx", "smi", "linkerd", "kubernetes", "gatewayapi:v1beta1"):
        assert known in str(e.value)


# --- knative ----------------------------------------------------------------------------------------


def knative_service(traffic: list[dict[str, Any]] | None = None, primary: str | None = "podinfo-00001"
                    ) -> dict[str, Any]:
    """The Knative Service of Flagger's knative tutorial, as initialization leaves it annotated."""
    meta: dict[str, Any] = {"name": "podinfo", "namespace": "test", "resourceVersion": "7"}
    if primary:
        meta["annotations"] = {"flagger.app/primary-revision": primary}
    spec: dict[str, Any] = {"template": {"spec": {"containers": [{"image": "ghcr.io/stefanprodan/podinfo:6.0.0"}]}}}
    if traffic is not None:
        spec["traffic"] = traffic
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": meta, "spec": spec,
            "status": {"latestCreatedRevisionName": "podinfo-00002"}}


# What Flagger writes (pkg/router/knative.go SetRoutes, pkg/canary/knative_controller.go Initialize; its
# knative tutorial, docs/gitbook/tutorials/knative-progressive-delivery.md: "Modify the .spec.traffic
# section ... between the primary and canary Knative Revision"): the latest Revision first, then the
# primary Revision by name.
@pytest.mark.parametrize(("primary", "canary", "traffic"), [
    (100, 0, [{"latestRevision": True, "percent": 0}, {"revisionName": "podinfo-00001", "percent": 100}]),
    (90, 10, [{"latestRevision": True, "percent": 10}, {"revisionName": "podinfo-00001", "percent": 90}]),
    (50, 50, [{"latestRevision": True, "percent": 50}, {"revisionName": "podinfo-00001", "percent": 50}]),
    (0, 100, [{"latestRevision": True, "percent": 100}, {"revisionName": "podinfo-00001", "percent": 0}]),
])
def test_knative_traffic_for_a_weight(primary: int, canary: int, traffic: list[dict[str, Any]]) -> None:
    written = desired_service(knative_service(), primary, canary)
    assert written is not None and written["spec"]["traffic"] == traffic
    assert written["spec"]["template"] == knative_service()["spec"]["template"]  # only the split changes
    assert written["metadata"] == knative_service()["metadata"] and "status" not in written
    assert weights_of(written) == (primary, canary)
    assert desired_service(written, primary, canary) is None  # already so: nothing to write


def test_knative_rollback_and_promotion_move_the_primary_entry() -> None:
    """A rollback is the 100/0 split; after promotion the annotation names the new Revision, and the
    split is rewritten around it (the old primary Revision leaves the traffic)."""
    during = desired_service(knative_service(), 50, 50)
    assert during is not None
    rolled_back = desired_service(during, 100, 0)
    assert rolled_back is not None and weights_of(rolled_back) == (100, 0)
    promoted = copy.deepcopy(during)
    promoted["metadata"]["annotations"]["flagger.app/primary-revision"] = "podinfo-00002"
    assert weights_of(promoted) is None  # no entry names the new primary yet
    after = desired_service(promoted, 100, 0)
    assert after is not None and after["spec"]["traffic"] == [
        {"latestRevision": True, "percent": 0}, {"revisionName": "podinfo-00002", "percent": 100}]


@pytest.mark.parametrize("traffic", [
    None,  # Knative's default: all to the latest Revision
    [{"latestRevision": True, "percent": 100}],
    [{"revisionName": "podinfo-00001", "percent": 100}],
    [{"latestRevision": True, "percent": "ten"}, {"revisionName": "podinfo-00001", "percent": 90}],
])
def test_knative_weights_unreadable_without_both_entries(traffic: list[dict[str, Any]] | None) -> None:
    assert weights_of(knative_service(traffic)) is None


def test_knative_needs_the_primary_revision_recorded() -> None:
    service = knative_service(primary=None)
    assert weights_of(service) is None
    with pytest.raises(RouterError, match="primary-revision") as e:
        desired_service(service, 100, 0)
    assert e.value.temporary  # initialization records it


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"match": True}, "analysis.match"),
    ({"extras": Extras(mirror=True)}, "analysis.mirror"),
    ({"extras": Extras(cookie="canary=1")}, "analysis.sessionAffinity"),
])
def test_knative_refuses_what_flaggers_knative_router_cannot_do(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(RouterError, match=message) as e:
        desired_service(knative_service(), 100, 0, **kwargs)
    assert not e.value.temporary
    assert not is_matched(knative_service([{"latestRevision": True, "percent": 100}]))
