"""Route options, mirroring and session affinity: parsed, refused by name where a provider cannot do
them, planned, and written as Flagger's routers write them.

Expected objects follow Flagger's code and tests (github.com/fluxcd/flagger, pkg/router/istio.go,
istio_test.go, gateway_api.go, gateway_api_test.go; docs/gitbook/usage/deployment-strategies.md).
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml

from rollout.api.errors import ValidationError
from rollout.api.parse import parse_canary
from rollout.api.spec import Canary, SessionAffinity
from rollout.api.status import Phase
from rollout.core import SetWeight
from rollout.routers import gatewayapi, istio
from rollout.routers.base import PLAIN, Extras
from rollout.routers.route import kept
from tests.unit.test_plan import canary as plan_canary
from tests.unit.test_plan import started
from tests.unit.world import World

UID = "5f0c8a2e-0000-4000-8000-000000000001"
PAIR = "flagger-cookie=abcdefghij"


def release(provider: str = "istio", service: dict[str, Any] | None = None, **analysis: Any) -> Canary:
    spec_analysis: dict[str, Any] = {"interval": "15s", "threshold": 2}
    spec_analysis.update(analysis or {"maxWeight": 50, "stepWeight": 10})
    svc: dict[str, Any] = {"port": 9898, **(service or {})}
    if provider == "gatewayapi":
        svc.setdefault("gatewayRefs", [{"name": "podinfo"}])
    spec: dict[str, Any] = {"provider": provider,
                            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                            "service": svc, "analysis": spec_analysis}
    if provider == "nginx":
        spec["ingressRef"] = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "web"}
    return parse_canary({"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
                         "metadata": {"name": "podinfo", "namespace": "test", "uid": UID}, "spec": spec})


def errors(provider: str, service: dict[str, Any] | None = None, **analysis: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        release(provider, service, **analysis)
    return {e.path: e.message for e in caught.value.errors}


def dest(host: str, weight: int, **extra: Any) -> dict[str, Any]:
    return {"destination": {"host": host, "port": {"number": 9898}}, "weight": weight, **extra}


def backend(name: str, weight: int, **extra: Any) -> dict[str, Any]:
    return {"group": "", "kind": "Service", "name": name, "port": 9898, "weight": weight, **extra}


def set_cookie_filter(value: str) -> dict[str, Any]:
    return {"type": "ResponseHeaderModifier", "responseHeaderModifier": {"add": [{"name": "Set-Cookie",
                                                                                  "value": value}]}}


# --- parsing and refusals --------------------------------------------------------------------------


def test_parse_mirror_and_session_affinity() -> None:
    a = release("istio", iterations=10, mirror=True, mirrorWeight=100).spec.analysis
    assert (a.mirror, a.mirror_weight, a.session_affinity) == (True, 100, None)
    affinity = release("gatewayapi", maxWeight=50, stepWeight=10,
                       sessionAffinity={"cookieName": "flagger-cookie", "maxAge": 300}).spec.analysis.session_affinity
    assert affinity == SessionAffinity(cookie_name="flagger-cookie", max_age=300)
    assert release("istio", sessionAffinity={"cookieName": "c"}, stepWeight=10).spec.analysis.session_affinity == \
        SessionAffinity(cookie_name="c", max_age=86400)  # Flagger's GetMaxAge default: a day


def test_build_cookie_as_flagger() -> None:
    # SessionAffinity.BuildCookie: attributes in Flagger's order
    full = SessionAffinity("c", domain="example.com", http_only=True, partitioned=True, path="/",
                           same_site="Strict", secure=True)
    assert full.set_cookie("c=v", 60) == ("c=v; Max-Age=60; Domain=example.com; HttpOnly; Partitioned; Path=/; "
                                          "SameSite=Strict; Secure")


@pytest.mark.parametrize(("provider", "service", "analysis", "path"), [
    ("nginx", {}, {"iterations": 5, "mirror": True}, "spec.analysis.mirror"),
    ("linkerd", {}, {"iterations": 5, "mirror": True, "mirrorWeight": 50}, "spec.analysis.mirrorWeight"),
    ("smi", {}, {"stepWeight": 10, "sessionAffinity": {"cookieName": "c"}}, "spec.analysis.sessionAffinity"),
    ("kubernetes", {}, {"iterations": 5, "mirror": True}, "spec.analysis.mirror"),
    # "Weight of the traffic mirrored to your canary ... Only applicable for Istio."
    ("gatewayapi", {}, {"iterations": 5, "mirror": True, "mirrorWeight": 50}, "spec.analysis.mirrorWeight"),
    # Flagger's gatewayapi SetRoutes mirrors only when iterations > 0
    ("gatewayapi", {}, {"stepWeight": 10, "mirror": True}, "spec.analysis.mirror"),
    ("istio", {}, {"iterations": 5, "mirrorWeight": 50}, "spec.analysis.mirrorWeight"),
    ("istio", {}, {"iterations": 5, "mirror": True,
                   "match": [{"headers": {"x": {"exact": "y"}}}]}, "spec.analysis.mirror"),
    ("istio", {}, {"iterations": 5, "sessionAffinity": {"cookieName": "c"}}, "spec.analysis.sessionAffinity"),
    ("istio", {}, {"stepWeight": 10, "sessionAffinity": {"cookieName": "a b"}},
     "spec.analysis.sessionAffinity.cookieName"),
    ("gatewayapi", {"delegation": True}, {"stepWeight": 10}, "spec.service.delegation"),
    ("nginx", {"headers": {"request": {"add": {"x": "y"}}}}, {"stepWeight": 10}, "spec.service.headers"),
    ("linkerd", {"rewrite": {"uri": "/"}}, {"stepWeight": 10}, "spec.service.rewrite"),
    ("smi", {"corsPolicy": {"allowMethods": ["GET"]}}, {"stepWeight": 10}, "spec.service.corsPolicy"),
    ("kubernetes", {"timeout": "10s"}, {"iterations": 5}, "spec.service.timeout"),
    ("istio", {"backendTimeout": "5s"}, {"stepWeight": 10}, "spec.service.backendTimeout"),
    ("gatewayapi", {"retries": {"attempts": 3}}, {"stepWeight": 10}, "spec.service.retries"),
    ("istio", {"mirror": [{"backendRef": {"name": "shadow", "port": 80}}]}, {"stepWeight": 10},
     "spec.service.mirror"),
    ("istio", {"delegation": True, "hosts": ["app.example.com"]}, {"stepWeight": 10}, "spec.service.delegation"),
    ("istio", {"appProtocol": "tcp", "headers": {"request": {"add": {"x": "y"}}}}, {"stepWeight": 10},
     "spec.service.headers"),
    ("istio", {"appProtocol": "TCP"}, {"iterations": 5, "mirror": True}, "spec.analysis.mirror"),
    ("gatewayapi", {"corsPolicy": {"allowOrigins": [{"regex": ".*"}]}}, {"stepWeight": 10},
     "spec.service.corsPolicy.allowOrigins"),
    ("gatewayapi", {"rewrite": {"uri": "/", "type": "Prefix"}}, {"stepWeight": 10}, "spec.service.rewrite.type"),
])
def test_refused_by_name(provider: str, service: dict[str, Any], analysis: dict[str, Any], path: str) -> None:
    found = errors(provider, service, **analysis)
    assert path in found, found


# --- Istio -----------------------------------------------------------------------------------------


def test_istio_delegation_omits_hosts_and_gateways() -> None:
    vs = istio.desired_virtualservice(release("istio", {"delegation": True}), 100, 0)
    assert "hosts" not in vs["spec"] and "gateways" not in vs["spec"]
    assert vs["spec"]["http"] == [{"route": [dest("podinfo-primary", 100), dest("podinfo-canary", 0)]}]


def test_istio_wildcard_host_is_not_joined_by_the_service_host() -> None:
    vs = istio.desired_virtualservice(release("istio", {"hosts": ["*"], "gateways": ["public"]}), 100, 0)
    assert vs["spec"]["hosts"] == ["*"]


@pytest.mark.parametrize("protocol", ["tcp", "TCP"])
def test_istio_tcp_service_gets_a_tcp_route(protocol: str) -> None:
    rel = release("istio", {"appProtocol": protocol, "match": [{"port": 9898}]})
    vs = istio.desired_virtualservice(rel, 70, 30)
    assert "http" not in vs["spec"]
    assert vs["spec"]["tcp"] == [{"match": [{"port": 9898}],
                                  "route": [dest("podinfo-primary", 70), dest("podinfo-canary", 30)]}]
    assert istio.weights_of(vs) == (70, 30)


def test_istio_route_options_on_every_http_route() -> None:
    service = {"retries": {"attempts": 3}, "timeout": "30s", "headers": {"request": {"add": {"x-a": "b"}}},
               "corsPolicy": {"allowMethods": ["GET"]}, "rewrite": {"uri": "/", "authority": "app", "type": "x"}}
    [route] = istio.desired_virtualservice(release("istio", service), 90, 10)["spec"]["http"]
    # GetIstioRewrite keeps uri and authority only
    assert route == {"retries": {"attempts": 3}, "timeout": "30s", "headers": {"request": {"add": {"x-a": "b"}}},
                     "corsPolicy": {"allowMethods": ["GET"]}, "rewrite": {"uri": "/", "authority": "app"},
                     "route": [dest("podinfo-primary", 90), dest("podinfo-canary", 10)]}


@pytest.mark.parametrize("weight", [0, 50, 100])
def test_istio_mirror_and_mirror_weight(weight: int) -> None:
    # istio_test.go: MirrorPercentage is set to mirrorWeight when > 0, absent otherwise
    analysis: dict[str, Any] = {"iterations": 5, "mirror": True}
    if weight:
        analysis["mirrorWeight"] = weight
    rel = release("istio", **analysis)
    [route] = istio.desired_virtualservice(rel, 100, 0, False, Extras(mirror=True))["spec"]["http"]
    assert route["mirror"] == {"host": "podinfo-canary"}
    assert route.get("mirrorPercentage") == ({"value": weight} if weight else None)
    assert "mirror" not in istio.desired_virtualservice(rel, 100, 0)["spec"]["http"][0]


def affinity_release(provider: str, primary_cookie: bool = False) -> Canary:
    affinity: dict[str, Any] = {"cookieName": "flagger-cookie", "maxAge": 300}
    if primary_cookie:
        affinity["primaryCookieName"] = "primary-flagger-cookie"
    return release(provider, maxWeight=50, stepWeight=10, sessionAffinity=affinity)


def test_istio_session_affinity_while_the_canary_has_weight() -> None:
    rel = affinity_release("istio")
    http = istio.desired_virtualservice(rel, 90, 10, False, Extras(cookie=PAIR))["spec"]["http"]
    assert http == [
        {"match": [{"headers": {"Cookie": {"regex": ".*flagger-cookie.*abcdefghij.*"}}}],
         "route": [dest("podinfo-primary", 0), dest("podinfo-canary", 100)]},
        {"route": [dest("podinfo-primary", 90), dest("podinfo-canary", 10, headers={
            "response": {"add": {"Set-Cookie": f"{PAIR}; Max-Age=300"}}})]},
    ]
    vs = {"metadata": {"name": "podinfo"}, "spec": {"http": http}}
    assert istio.weights_of(vs) == (90, 10) and istio.extras_of(vs) == Extras(cookie=PAIR)


def test_istio_session_affinity_with_a_primary_cookie() -> None:
    rel = affinity_release("istio", primary_cookie=True)
    http = istio.desired_virtualservice(rel, 90, 10, False, Extras(cookie=PAIR))["spec"]["http"]
    assert len(http) == 3
    primary_pair = istio.primary_cookie(rel, PAIR)
    assert primary_pair.startswith("primary-flagger-cookie=") and primary_pair != PAIR
    name, value = primary_pair.split("=")
    assert http[1] == {"match": [{"headers": {"Cookie": {"regex": f".*{name}.*{value}.*"}}}],
                       "route": [dest("podinfo-primary", 100), dest("podinfo-canary", 0)]}
    # the primary's cookie lives one analysis interval (15s)
    assert http[2]["route"][0]["headers"] == {"response": {"add": {"Set-Cookie": f"{primary_pair}; Max-Age=15"}}}


def test_istio_session_affinity_at_weight_zero_expires_the_cookie() -> None:
    http = istio.desired_virtualservice(affinity_release("istio"), 100, 0, False, Extras(cookie=PAIR))["spec"]["http"]
    assert http == [
        {"match": [{"headers": {"Cookie": {"regex": ".*flagger-cookie.*abcdefghij.*"}}}],
         "headers": {"response": {"add": {"Set-Cookie": f"{PAIR}; Max-Age=-1"}}},
         "route": [dest("podinfo-primary", 100), dest("podinfo-canary", 0)]},
        {"route": [dest("podinfo-primary", 100), dest("podinfo-canary", 0)]},
    ]
    assert istio.extras_of({"metadata": {"name": "podinfo"}, "spec": {"http": http}}) == Extras(cookie=PAIR)


@pytest.mark.parametrize("route_of", [istio.ROUTE, gatewayapi.ROUTE])
@pytest.mark.parametrize("extras", [PLAIN, Extras(mirror=True), Extras(cookie=PAIR)])
@pytest.mark.parametrize("weights", [(100, 0), (80, 20)])
def test_reconcile_keeps_what_the_planner_set(route_of: Any, extras: Extras, weights: tuple[int, int]) -> None:
    """Reconcile rebuilds the object from the spec and the live object's weights, mirror and cookie:
    it must not drop a mirror or the affinity rules (Flagger ignores them in its diff)."""
    provider = "istio" if route_of is istio.ROUTE else "gatewayapi"
    analysis: dict[str, Any] = {"iterations": 5, "mirror": True} if extras.mirror else {
        "stepWeight": 10, "sessionAffinity": {"cookieName": "flagger-cookie"}}
    rel = release(provider, **analysis)
    live = route_of.desired(rel, *weights, False, extras)
    rebuilt = route_of.desired(rel, *kept(route_of.weights_of(live)), False, route_of.extras_of(live))
    assert rebuilt == live


# --- Gateway API -----------------------------------------------------------------------------------


def test_gatewayapi_timeouts() -> None:
    # gateway_api_test.go TestGatewayAPIRouter_Reconcile: timeout 10s, backendTimeout 5s
    route = gatewayapi.desired_httproute(release("gatewayapi", {"timeout": "10s", "backendTimeout": "5s"}), 100, 0)
    assert route["spec"]["rules"][0]["timeouts"] == {"request": "10s", "backendRequest": "5s"}


def test_gatewayapi_header_modifiers_sorted() -> None:
    ops = {"set": {"h3": "v3", "h1": "v1"}, "add": {"h2": "v2", "h1": "v1"}, "remove": ["token"]}
    rel = release("gatewayapi", {"headers": {"request": ops, "response": {"remove": ["server"]}}})
    [rule] = gatewayapi.desired_httproute(rel, 100, 0)["spec"]["rules"]
    assert rule["filters"] == [
        {"type": "RequestHeaderModifier", "requestHeaderModifier": {
            "add": [{"name": "h1", "value": "v1"}, {"name": "h2", "value": "v2"}],
            "set": [{"name": "h1", "value": "v1"}, {"name": "h3", "value": "v3"}], "remove": ["token"]}},
        {"type": "ResponseHeaderModifier", "responseHeaderModifier": {"remove": ["server"]}},
    ]


@pytest.mark.parametrize(("rewrite", "expected"), [
    ({"uri": "/v2"}, {"path": {"type": "ReplaceFullPath", "replaceFullPath": "/v2"}}),
    ({"uri": "/v2", "type": "ReplacePrefixMatch"},
     {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2"}}),
    ({"authority": "app.example.com"}, {"hostname": "app.example.com"}),
])
def test_gatewayapi_url_rewrite(rewrite: dict[str, str], expected: dict[str, Any]) -> None:
    [rule] = gatewayapi.desired_httproute(release("gatewayapi", {"rewrite": rewrite}), 100, 0)["spec"]["rules"]
    assert rule["filters"] == [{"type": "URLRewrite", "urlRewrite": expected}]


def test_gatewayapi_cors_as_flagger_test() -> None:
    # gateway_api_test.go TestGatewayAPIRouter_makeFilters_CORS (without the ignored allowOrigins)
    cors = {"allowOrigin": ["https://example.com", "https://app.example.com"], "allowMethods": ["GET", "POST", "PUT"],
            "allowHeaders": ["Content-Type", "Authorization"], "exposeHeaders": ["X-Custom-Header"],
            "allowCredentials": True, "maxAge": "24h"}
    [rule] = gatewayapi.desired_httproute(release("gatewayapi", {"corsPolicy": cors}), 100, 0)["spec"]["rules"]
    assert rule["filters"] == [{"type": "CORS", "cors": {
        "allowOrigins": ["https://example.com", "https://app.example.com"], "allowMethods": ["GET", "POST", "PUT"],
        "allowHeaders": ["Content-Type", "Authorization"], "exposeHeaders": ["X-Custom-Header"],
        "allowCredentials": True, "maxAge": 86400}}]


def test_gatewayapi_service_match() -> None:
    match = [{"uri": {"prefix": "/api"}, "method": {"exact": "GET"}, "headers": {"x-team": {"exact": "a"}}}]
    [rule] = gatewayapi.desired_httproute(release("gatewayapi", {"match": match}), 100, 0)["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/api"}, "method": "GET",
                                "headers": [{"name": "x-team", "type": "Exact", "value": "a"}]}]


def test_gatewayapi_service_mirror_filters() -> None:
    shadow = {"backendRef": {"name": "shadow", "port": 80}}
    [rule] = gatewayapi.desired_httproute(release("gatewayapi", {"mirror": [shadow]}), 100, 0)["spec"]["rules"]
    assert rule["filters"] == [{"type": "RequestMirror", "requestMirror": shadow}]


def test_gatewayapi_mirror_filter() -> None:
    rel = release("gatewayapi", iterations=5, mirror=True)
    [rule] = gatewayapi.desired_httproute(rel, 100, 0, False, Extras(mirror=True))["spec"]["rules"]
    assert rule["backendRefs"] == [backend("podinfo-primary", 100), backend("podinfo-canary", 0)]
    assert rule["filters"] == [{"type": "RequestMirror", "requestMirror": {"backendRef": {
        "group": "", "kind": "Service", "name": "podinfo-canary", "port": 9898}}}]


def test_gatewayapi_session_affinity_as_flagger_test() -> None:
    # gateway_api_test.go TestGatewayAPIRouter_getSessionAffinityRouteRules "without primary cookie"
    rel = affinity_release("gatewayapi")
    rules = gatewayapi.desired_httproute(rel, 90, 10, False, Extras(cookie=PAIR))["spec"]["rules"]
    root = [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert rules == [
        {"matches": [{"headers": [{"name": "Cookie", "type": "RegularExpression",
                                   "value": ".*flagger-cookie.*abcdefghij.*"}]}],
         "backendRefs": [backend("podinfo-primary", 0), backend("podinfo-canary", 100)]},
        {"matches": root, "backendRefs": [
            backend("podinfo-primary", 90),
            backend("podinfo-canary", 10, filters=[set_cookie_filter(f"{PAIR}; Max-Age=300")])]},
    ]
    zero = gatewayapi.desired_httproute(rel, 100, 0, False, Extras(cookie=PAIR))["spec"]["rules"]
    assert zero[0]["filters"] == [set_cookie_filter(f"{PAIR}; Max-Age=-1")]
    assert zero[0]["backendRefs"] == [backend("podinfo-primary", 100), backend("podinfo-canary", 0)]
    assert gatewayapi.extras_of({"metadata": {"name": "podinfo"}, "spec": {"rules": zero}}) == Extras(cookie=PAIR)
    assert gatewayapi.weights_of({"metadata": {"name": "podinfo"}, "spec": {"rules": rules}}) == (90, 10)


# --- the planner ------------------------------------------------------------------------------------


def set_weights(world: World) -> list[SetWeight]:
    return [a for a in world.actions if isinstance(a, SetWeight)]


def test_plan_blue_green_mirroring_runs_the_iterations_on_mirrored_traffic() -> None:
    world = started(World(plan_canary(step_weight=None, max_weight=100, iterations=3, mirror=True)))
    world.run_until(Phase.SUCCEEDED)
    moves = [(a.canary, a.mirror) for a in set_weights(world)]
    # Initialized at 0, mirror for the iterations, then (promotion) mirroring stops
    assert moves[1:] == [(0, True), (0, False)], moves
    assert world.status.iterations >= 3


def test_plan_progressive_mirroring_mirrors_one_interval_before_the_first_step() -> None:
    world = started(World(plan_canary(mirror=True)))
    world.run_until(Phase.SUCCEEDED)
    moves = [(a.canary, a.mirror) for a in set_weights(world)]
    assert moves[1:4] == [(0, True), (10, False), (20, False)], moves


def test_plan_failed_mirror_run_stops_mirroring() -> None:
    from tests.unit.world import failing
    world = started(World(plan_canary(step_weight=None, max_weight=100, iterations=3, mirror=True, threshold=2)))
    world.checks = lambda w: failing()
    world.run_until(Phase.FAILED)
    assert set_weights(world)[-1] == SetWeight(100, 0, mirror=False)


def test_plan_session_affinity_cookie_is_one_per_run_and_expired_at_the_end() -> None:
    affinity = SessionAffinity("flagger-cookie")
    world = started(World(plan_canary(session_affinity=affinity)))
    world.run_until(Phase.SUCCEEDED)
    cookies = {a.cookie for a in set_weights(world) if a.canary}
    assert len(cookies) == 1 and re.fullmatch(r"flagger-cookie=[0-9a-f]{10}", cookies.pop() or "")
    last = set_weights(world)[-1]
    assert last.canary == 0 and last.cookie == next(a.cookie for a in set_weights(world) if a.canary)
    first_run = last.cookie
    world.release("v3", "c3")
    world.run_until(Phase.SUCCEEDED)
    second = {a.cookie for a in set_weights(world)[len(set_weights(world)) - 6:] if a.canary}
    assert second and first_run not in second  # a new run, a new cookie


def test_plan_without_affinity_sends_no_cookie() -> None:
    world = started(World(plan_canary()))
    world.run_until(Phase.SUCCEEDED)
    assert {a.cookie for a in set_weights(world)} == {""}
    assert not any(a.mirror for a in set_weights(world))


def test_copy_is_unchanged() -> None:
    # builders never mutate the release's service fields they copy
    service = {"headers": {"request": {"add": {"x": "y"}}}}
    rel = release("istio", copy.deepcopy(service), maxWeight=50, stepWeight=10,
                  sessionAffinity={"cookieName": "flagger-cookie"})
    istio.desired_virtualservice(rel, 90, 10, False, Extras(cookie=PAIR))
    istio.desired_virtualservice(rel, 100, 0, False, Extras(cookie=PAIR))
    assert rel.spec.service.extra["headers"] == service["headers"]


# --- Flagger's own Canaries with these fields ------------------------------------------------------

# From github.com/fluxcd/flagger docs/gitbook/tutorials/istio-progressive-delivery.md ("session
# affinity"), comments and webhooks dropped; Flagger's default provider (istio) written out, and
# autoscalerRef left out (another part of the Flagger drop-in work handles it).
FLAGGER_ISTIO_AFFINITY = """
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: test}
spec:
  provider: istio
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  progressDeadlineSeconds: 60
  service:
    port: 9898
    targetPort: 9898
    gateways: [istio-system/public-gateway]
    hosts: [app.example.com]
    trafficPolicy: {tls: {mode: DISABLE}}
    retries: {attempts: 3, perTryTimeout: 1s, retryOn: "gateway-error,connect-failure,refused-stream"}
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    sessionAffinity: {cookieName: flagger-cookie, maxAge: 21600}
    metrics:
    - {name: request-success-rate, thresholdRange: {min: 99}, interval: 1m}
    - {name: request-duration, thresholdRange: {max: 500}, interval: 30s}
"""

# From github.com/fluxcd/flagger test/gatewayapi/test-session-affinity.sh (installed there with
# -mesh-provider=gatewayapi:v1, written out here); metric templates and webhooks dropped.
FLAGGER_GATEWAYAPI_AFFINITY = """
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: sa-test}
spec:
  provider: gatewayapi:v1
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  progressDeadlineSeconds: 60
  service:
    port: 9898
    portName: http
    hosts: [www.example.com]
    gatewayRefs: [{name: gateway, namespace: istio-ingress}]
  analysis:
    interval: 15s
    threshold: 15
    maxWeight: 50
    stepWeight: 10
    sessionAffinity: {cookieName: canary-flagger-cookie, primaryCookieName: primary-flagger-cookie}
"""

# From github.com/fluxcd/flagger docs/gitbook/tutorials/istio-progressive-delivery.md ("traffic
# mirroring"); the tutorial's targetRef and service added, webhooks dropped.
FLAGGER_ISTIO_MIRROR = """
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: test}
spec:
  provider: istio
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis:
    interval: 1m
    threshold: 5
    iterations: 10
    mirror: true
    mirrorWeight: 100
    metrics:
    - {name: request-success-rate, thresholdRange: {min: 99}, interval: 1m}
    - {name: request-duration, thresholdRange: {max: 500}, interval: 1m}
"""


def test_flagger_documented_canaries() -> None:
    istio_affinity = parse_canary(yaml.safe_load(FLAGGER_ISTIO_AFFINITY))
    assert istio_affinity.spec.analysis.session_affinity == SessionAffinity("flagger-cookie", max_age=21600)
    http = istio.desired_virtualservice(istio_affinity, 90, 10, False, Extras(cookie="flagger-cookie=x"))["spec"]
    assert http["gateways"] == ["istio-system/public-gateway"] and len(http["http"]) == 2
    assert all(r["retries"]["attempts"] == 3 for r in http["http"])
    gw = parse_canary(yaml.safe_load(FLAGGER_GATEWAYAPI_AFFINITY))
    rules = gatewayapi.desired_httproute(gw, 90, 10, False, Extras(cookie="canary-flagger-cookie=x"))["spec"]["rules"]
    assert len(rules) == 3  # canary cookie, primary cookie, weighted
    mirror = parse_canary(yaml.safe_load(FLAGGER_ISTIO_MIRROR))
    [route] = istio.desired_virtualservice(mirror, 100, 0, False, Extras(mirror=True))["spec"]["http"]
    assert route["mirror"] == {"host": "podinfo-canary"} and route["mirrorPercentage"] == {"value": 100}
