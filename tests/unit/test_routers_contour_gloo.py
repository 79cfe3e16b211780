"""The Contour and Gloo Edge routers' objects for a weight, an A/B match and a rollback, compared with
what Flagger writes for the Canaries of its guides.

Flagger's guides show the Canary and the objects the user adds (the root HTTPProxy, the Gloo
VirtualService), not the generated ones; those are what Flagger's routers build from such a Canary
(fluxcd/flagger pkg/router/contour.go and gloo.go, v1.44.0), written out here in full.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from rollout.api.errors import ValidationError
from rollout.api.parse import parse_canary, parse_resource
from rollout.api.spec import Canary
from rollout.routers import RouterError, contour, gloo
from rollout.routers.base import Extras
from tests.unit.test_routers import UID, owned

# The Canary of Flagger's Contour guide (docs/gitbook/tutorials/contour-progressive-delivery.md):
# service port 80, timeout 15s, retries {attempts: 3, perTryTimeout: 5s, retryOn: "5xx"}.
CONTOUR_GUIDE_SERVICE = {"port": 80, "targetPort": 9898, "timeout": "15s",
                         "retries": {"attempts": 3, "perTryTimeout": "5s", "retryOn": "5xx"}}


def release(provider: str, service: dict[str, Any], match: list[dict[str, Any]] | None = None,
            namespace: str = "test") -> Canary:
    analysis: dict[str, Any] = {"interval": "30s", "threshold": 5}
    if match:
        analysis.update(iterations=10, match=match)
    else:
        analysis.update(maxWeight=50, stepWeight=5)
    spec = {"provider": provider, "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": service, "analysis": analysis}
    return parse_canary({"apiVersion": "rollout.gitops.dev/v1alpha1", "kind": "Canary",
                         "metadata": {"name": "podinfo", "namespace": namespace, "uid": UID}, "spec": spec})


def with_match(r: Canary, match: list[dict[str, Any]]) -> Canary:
    """`r` asking for a match that validation refuses, as a router may still be handed one."""
    return replace(r, spec=replace(r.spec, analysis=replace(r.spec.analysis, match=tuple(match))))


def contour_service(name: str, weight: int) -> dict[str, Any]:
    return {"name": name, "port": 80, "weight": weight,
            "requestHeadersPolicy": {"set": [{"name": "l5d-dst-override",
                                              "value": f"{name}.test.svc.cluster.local:80"}]}}


def contour_route(conditions: list[dict[str, Any]], primary: int, canary: int) -> dict[str, Any]:
    return {"conditions": conditions,
            "timeoutPolicy": {"response": "15s", "idle": "5m"},
            "retryPolicy": {"count": 3, "perTryTimeout": "5s", "retryOn": ["5xx"]},
            "services": [contour_service("podinfo-primary", primary), contour_service("podinfo-canary", canary)]}


# --- Contour ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("primary, canary_weight", [(100, 0), (95, 5), (50, 50), (100, 0)])
def test_contour_weighted_httpproxy_is_flaggers(primary: int, canary_weight: int) -> None:
    """A step (95/5, 50/50) and the rollback (100/0): one route on `/` with both services."""
    obj = contour.desired_httpproxy(release("contour", CONTOUR_GUIDE_SERVICE), primary, canary_weight)
    assert (obj["apiVersion"], obj["kind"], obj["metadata"]["name"]) == ("projectcontour.io/v1", "HTTPProxy",
                                                                        "podinfo")
    assert obj["spec"] == {"routes": [contour_route([{"prefix": "/"}], primary, canary_weight)]}
    assert contour.weights_of(obj) == (primary, canary_weight) and not contour.is_matched(obj)
    owned(obj)


def test_contour_ab_route_is_flaggers_then_the_weighted_one() -> None:
    """The guide's A/B match (`x-canary: exact insider`): Flagger's first route, which sends the
    matched requests to the canary during the test; everyone else stays on the primary."""
    ab = release("contour", CONTOUR_GUIDE_SERVICE, [{"headers": {"x-canary": {"exact": "insider"}}}])
    obj = contour.desired_httpproxy(ab, 100, 0, True)
    assert obj["spec"]["routes"] == [
        contour_route([{"prefix": "/", "header": {"name": "x-canary", "exact": "insider"}}], 0, 100),
        contour_route([{"prefix": "/"}], 100, 0),
    ]
    assert contour.is_matched(obj) and contour.weights_of(obj) == (100, 0)
    rollback = contour.desired_httpproxy(ab, 100, 0, False)
    assert rollback["spec"]["routes"] == [contour_route([{"prefix": "/"}], 100, 0)]
    assert not contour.is_matched(rollback)


@pytest.mark.parametrize("condition, expected", [
    ({"exact": "insider"}, {"exact": "insider"}),
    ({"suffix": "insider"}, {"contains": "insider"}),  # the guide's cookie example
    ({"prefix": "Mobile"}, {"contains": "Mobile"}),  # the guide's user-agent example
])
def test_contour_header_conditions_are_flaggers(condition: dict[str, str], expected: dict[str, str]) -> None:
    obj = contour.desired_httpproxy(release("contour", {"port": 80}, [{"headers": {"cookie": condition}}]), 100, 0,
                                    True)
    assert obj["spec"]["routes"][0]["conditions"] == [{"prefix": "/", "header": {"name": "cookie", **expected}}]


def test_contour_alternatives_get_a_route_each_and_one_prefix_per_route() -> None:
    match = [{"headers": {"x-canary": {"exact": "insider"}, "x-team": {"exact": "web"}}},
             {"headers": {"cookie": {"suffix": "canary"}}}]
    obj = contour.desired_httpproxy(release("contour", {"port": 80}, match), 100, 0, True)
    routes = obj["spec"]["routes"]
    assert [r["conditions"] for r in routes] == [
        [{"prefix": "/", "header": {"name": "x-canary", "exact": "insider"}},
         {"header": {"name": "x-team", "exact": "web"}}],
        [{"prefix": "/", "header": {"name": "cookie", "contains": "canary"}}],
        [{"prefix": "/"}],
    ]
    assert [[s["weight"] for s in r["services"]] for r in routes] == [[0, 100], [0, 100], [100, 0]]


def test_contour_path_prefix_from_service_match() -> None:
    obj = contour.desired_httpproxy(release("contour", {"port": 80, "match": [{"uri": {"prefix": "/podinfo"}}]}),
                                    90, 10)
    assert obj["spec"]["routes"][0]["conditions"] == [{"prefix": "/podinfo"}]
    assert "timeoutPolicy" not in obj["spec"]["routes"][0] and "retryPolicy" not in obj["spec"]["routes"][0]


@pytest.mark.parametrize("match, said", [
    ([{"headers": {"user-agent": {"regex": ".*Mobile.*"}}}], "no regex"),
    ([{"queryParams": {"v": {"exact": "2"}}}], "headers only"),
])
def test_contour_refuses_what_its_routes_cannot_match(match: list[dict[str, Any]], said: str) -> None:
    spec = with_match(release("contour", {"port": 80}, [{"headers": {"x": {"exact": "y"}}}]), match)
    with pytest.raises(RouterError, match=said) as e:
        contour.desired_httpproxy(spec, 100, 0, True)
    assert not e.value.temporary


@pytest.mark.parametrize("extras", [Extras(mirror=True), Extras(cookie="flagger-cookie=abc")])
def test_contour_and_gloo_refuse_mirroring_and_affinity(extras: Extras) -> None:
    with pytest.raises(RouterError, match="cannot"):
        contour.desired_httpproxy(release("contour", {"port": 80}), 90, 10, False, extras)
    with pytest.raises(RouterError, match="cannot"):
        gloo.desired_routetable(release("gloo", {"port": 9898}), 90, 10, False, extras)


def test_contour_reads_a_missing_weight_as_zero() -> None:
    """Flagger serializes a zero weight by omitting it (`omitempty`); Contour reads that as 0."""
    obj = contour.desired_httpproxy(release("contour", {"port": 80}), 100, 0)
    del obj["spec"]["routes"][0]["services"][1]["weight"]
    assert contour.weights_of(obj) == (100, 0)


# --- Gloo Edge -------------------------------------------------------------------------------------

# The Canary of Flagger's Gloo guide (docs/gitbook/tutorials/gloo-progressive-delivery.md): port 9898.
GLOO_GUIDE_SERVICE = {"port": 9898, "targetPort": 9898}


def destinations(primary: int, canary: int) -> dict[str, Any]:
    return {"multi": {"destinations": [
        {"destination": {"upstream": {"name": "test-podinfo-primaryupstream-9898", "namespace": "test"}},
         "weight": primary},
        {"destination": {"upstream": {"name": "test-podinfo-canaryupstream-9898", "namespace": "test"}},
         "weight": canary},
    ]}}


@pytest.mark.parametrize("primary, canary_weight", [(100, 0), (95, 5), (50, 50), (100, 0)])
def test_gloo_weighted_routetable_is_flaggers(primary: int, canary_weight: int) -> None:
    obj = gloo.desired_routetable(release("gloo", GLOO_GUIDE_SERVICE), primary, canary_weight)
    assert (obj["apiVersion"], obj["kind"], obj["metadata"]["name"]) == ("gateway.solo.io/v1", "RouteTable", "podinfo")
    assert obj["spec"] == {"routes": [{"inheritablePathMatchers": True,
                                       "routeAction": destinations(primary, canary_weight)}]}
    assert gloo.weights_of(obj) == (primary, canary_weight) and not gloo.is_matched(obj)
    owned(obj)


def test_gloo_upstreams_are_flaggers() -> None:
    """The guide's generated `upstreams.gloo.solo.io/test-podinfo-{canary,primary}upstream-9898`."""
    r = release("gloo", GLOO_GUIDE_SERVICE)
    assert gloo.upstream_names(r) == ("test-podinfo-primaryupstream-9898", "test-podinfo-canaryupstream-9898")
    obj = gloo.desired_upstream(r, "test-podinfo-canaryupstream-9898", "podinfo-canary", {"app": "podinfo"})
    assert (obj["apiVersion"], obj["kind"]) == ("gloo.solo.io/v1", "Upstream")
    assert obj["spec"] == {"kube": {"serviceName": "podinfo-canary", "serviceNamespace": "test", "servicePort": 9898,
                                    "selector": {"app": "podinfo"}}}
    owned(obj)


def test_gloo_ab_route_carries_flaggers_matchers_then_the_weighted_one() -> None:
    """The guide's A/B match (`x-canary: exact insider`) as Flagger's matcher, sent to the canary."""
    ab = release("gloo", GLOO_GUIDE_SERVICE, [{"headers": {"x-canary": {"exact": "insider"}}}])
    obj = gloo.desired_routetable(ab, 100, 0, True)
    assert obj["spec"]["routes"] == [
        {"matchers": [{"headers": [{"name": "x-canary", "value": "insider"}]}], "inheritablePathMatchers": True,
         "routeAction": destinations(0, 100)},
        {"inheritablePathMatchers": True, "routeAction": destinations(100, 0)},
    ]
    assert gloo.is_matched(obj) and gloo.weights_of(obj) == (100, 0)
    rollback = gloo.desired_routetable(ab, 100, 0, False)
    assert rollback["spec"]["routes"] == [{"inheritablePathMatchers": True, "routeAction": destinations(100, 0)}]


@pytest.mark.parametrize("entry, matcher", [
    ({"headers": {"user-agent": {"regex": ".*Mobile.*"}}},  # the guide's user-agent example
     {"headers": [{"name": "user-agent", "value": ".*Mobile.*", "regex": True}]}),
    ({"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}},
     {"headers": [{"name": "cookie", "value": "^(.*?;)?(canary=always)(;.*)?$", "regex": True}]}),
    ({"headers": {"user-agent": {"prefix": "Mozilla/5.0"}}},
     {"headers": [{"name": "user-agent", "value": "Mozilla/5\\.0.*", "regex": True}]}),
    ({"headers": {"x-v": {"suffix": "beta"}}, "queryParams": {"v": {"exact": "2"}}, "method": {"exact": "GET"}},
     {"headers": [{"name": "x-v", "value": ".*beta", "regex": True}], "queryParameters": [{"name": "v", "value": "2"}],
      "methods": ["GET"]}),
])
def test_gloo_matchers(entry: dict[str, Any], matcher: dict[str, Any]) -> None:
    obj = gloo.desired_routetable(release("gloo", GLOO_GUIDE_SERVICE, [entry]), 100, 0, True)
    assert obj["spec"]["routes"][0]["matchers"] == [matcher]


def test_gloo_alternatives_are_separate_matchers_and_source_labels_are_refused() -> None:
    match = [{"headers": {"x-canary": {"exact": "insider"}}}, {"headers": {"x-beta": {"exact": "1"}}}]
    obj = gloo.desired_routetable(release("gloo", GLOO_GUIDE_SERVICE, match), 100, 0, True)
    assert obj["spec"]["routes"][0]["matchers"] == [{"headers": [{"name": "x-canary", "value": "insider"}]},
                                                    {"headers": [{"name": "x-beta", "value": "1"}]}]
    bad = with_match(release("gloo", GLOO_GUIDE_SERVICE, [{"headers": {"x": {"exact": "y"}}}]),
                     [{"sourceLabels": {"app": "a"}}])
    with pytest.raises(RouterError, match="sourceLabels"):
        gloo.desired_routetable(bad, 100, 0, True)


def test_gloo_reads_a_missing_weight_as_zero_and_other_ports() -> None:
    obj = gloo.desired_routetable(release("gloo", {"port": 8080}), 100, 0)
    del obj["spec"]["routes"][0]["routeAction"]["multi"]["destinations"][1]["weight"]
    assert gloo.weights_of(obj) == (100, 0)
    foreign = copy.deepcopy(obj)
    foreign["spec"]["routes"][0]["routeAction"]["multi"]["destinations"][0]["destination"]["upstream"]["name"] = "x"
    assert gloo.weights_of(foreign) is None


# --- validation: what each provider cannot do is refused, naming the field ------------------------


def manifest(provider: str, service: dict[str, Any] | None = None, **analysis: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "provider": provider, "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": service or {"port": 9898},
        "analysis": {"interval": "1m", "threshold": 5, **(analysis or {"maxWeight": 50, "stepWeight": 5})}}
    return {"apiVersion": "rollout.gitops.dev/v1alpha1", "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": "test"}, "spec": spec}


def refused(obj: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        parse_resource(obj)
    return {e.path: e.message for e in caught.value.errors}


AB = {"iterations": 10}
AFFINITY = {"cookieName": "flagger-cookie"}


@pytest.mark.parametrize("obj, path, said", [
    (manifest("contour", match=[{"headers": {"user-agent": {"regex": ".*Mobile.*"}}}], **AB),
     "spec.analysis.match[0].headers.user-agent.regex", "Contour matches no regex"),
    (manifest("contour", match=[{"queryParams": {"v": {"exact": "2"}}}], **AB),
     "spec.analysis.match[0].queryParams", "matches headers only"),
    (manifest("gloo", match=[{"sourceLabels": {"app": "web"}}], **AB),
     "spec.analysis.match[0].sourceLabels", "cannot tell callers apart"),
    (manifest("contour", mirror=True, **AB), "spec.analysis.mirror", "only a Canary with provider"),
    (manifest("gloo", mirror=True, **AB), "spec.analysis.mirror", "only a Canary with provider"),
    (manifest("contour", maxWeight=50, stepWeight=5, sessionAffinity=AFFINITY), "spec.analysis.sessionAffinity",
     "only a Canary with provider"),
    (manifest("gloo", maxWeight=50, stepWeight=5, sessionAffinity=AFFINITY), "spec.analysis.sessionAffinity",
     "only a Canary with provider"),
    (manifest("contour", {"port": 80, "match": [{"uri": {"regex": "/api/.*"}}]}), "spec.service.match[0]",
     "one condition with a URI prefix"),
    (manifest("contour", {"port": 80, "headers": {"request": {"set": {"x": "y"}}}}), "spec.service.headers",
     "not supported for provider 'contour'"),
    (manifest("gloo", {"port": 80, "timeout": "15s"}), "spec.service.timeout", "not supported for provider 'gloo'"),
    ({**manifest("istio"), "spec": {**manifest("istio")["spec"], "upstreamRef": {
        "apiVersion": "gloo.solo.io/v1", "kind": "Upstream", "name": "podinfo", "namespace": "gloo-system"}}},
     "spec.upstreamRef", "provider gloo only"),
])
def test_validation_names_what_contour_and_gloo_cannot_do(obj: dict[str, Any], path: str, said: str) -> None:
    errors = refused(obj)
    assert said in errors.get(path, ""), errors


def test_validation_accepts_what_they_can_do() -> None:
    contour_ab = manifest("contour", {"port": 80, "match": [{"uri": {"prefix": "/api"}}], "timeout": "15s",
                                      "retries": {"attempts": 3, "perTryTimeout": "5s", "retryOn": "5xx"}},
                          match=[{"headers": {"x-canary": {"exact": "insider"}, "cookie": {"suffix": "canary"}}}],
                          **AB)
    release = parse_resource(contour_ab)
    assert isinstance(release, Canary) and release.spec.service.extra["timeout"] == "15s"
    gloo_ab = manifest("gloo", match=[{"headers": {"x-canary": {"regex": ".*insider.*"}}}], **AB)
    gloo_ab["spec"]["upstreamRef"] = {"apiVersion": "gloo.solo.io/v1", "kind": "Upstream", "name": "podinfo-upstream",
                                      "namespace": "gloo-system"}
    gloo_release = parse_resource(gloo_ab)
    assert isinstance(gloo_release, Canary) and gloo_release.spec.upstream_ref is not None
    assert (gloo_release.spec.upstream_ref.name, gloo_release.spec.upstream_ref.namespace) == ("podinfo-upstream",
                                                                                                "gloo-system")


def test_gloo_upstreams_copy_the_referenced_upstreams_settings() -> None:
    """Flagger's guide: `upstreamRef` names an Upstream whose TLS, circuit breakers... the new ones copy."""
    config = {"spec": {"sslConfig": {"sni": "podinfo.example.com"}, "circuitBreakers": {"maxConnections": 10},
                       "loadBalancerConfig": {"roundRobin": {}}, "useHttp2": True,
                       "kube": {"serviceName": "elsewhere", "serviceNamespace": "x", "servicePort": 1},
                       "discoveryMetadata": {"labels": {"a": "b"}}}}
    obj = gloo.desired_upstream(release("gloo", GLOO_GUIDE_SERVICE), "test-podinfo-primaryupstream-9898",
                                "podinfo-primary", {"app": "podinfo-primary"}, config)
    assert obj["spec"] == {"sslConfig": {"sni": "podinfo.example.com"}, "circuitBreakers": {"maxConnections": 10},
                           "loadBalancerConfig": {"roundRobin": {}}, "useHttp2": True,
                           "kube": {"serviceName": "podinfo-primary", "serviceNamespace": "test", "servicePort": 9898,
                                    "selector": {"app": "podinfo-primary"}}}
