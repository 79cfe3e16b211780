"""The sandbox's pure routing: each provider's live object -> the shares of requests per Deployment.

Router objects are built by the real routers' pure builders (what the operator writes), so these
tests also check that the data plane reads what the routers write.
"""

from __future__ import annotations

from typing import Any

import pytest

from rollout.api.parse import parse_canary
from rollout.api.spec import Release
from rollout.routers import contour, gatewayapi, gloo, istio, linkerd, nginx, smi
from rollout.routers.base import Extras
from sandbox.knative import resolved_traffic
from sandbox.pods import behaviour_of, pod_names
from sandbox.routing import Entry, Split, World, endpoints, set_cookie, shares_for, split_for, splits

NS = "test"
AB = [{"headers": {"x-canary": {"exact": "insider"}}}]


def release(provider: str, match: list[dict[str, Any]] | None = None) -> Release:
    spec: dict[str, Any] = {
        "provider": provider,
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": {"port": 9898, "gatewayRefs": [{"name": "public"}]},
        "analysis": {"interval": "10s", "threshold": 2,
                     **({"match": match, "iterations": 3} if match else {"maxWeight": 50, "stepWeight": 10})},
    }
    if provider == "nginx":
        spec["ingressRef"] = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "web"}
    return parse_canary({"apiVersion": "rollout.gitops.dev/v1alpha1", "kind": "Canary",
                         "metadata": {"name": "podinfo", "namespace": NS, "uid": "u1"}, "spec": spec})


def deployment(name: str, ready: int = 1, app: str | None = None, notes: dict[str, str] | None = None
               ) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": ready, "template": {"metadata": {"labels": {"app": app or name},
                                                                   "annotations": notes or {}}}},
            "status": {"readyReplicas": ready} if ready else {}}


def service(name: str, app: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": NS},
            "spec": {"selector": {"app": app}, "ports": [{"port": 9898}]}}


def flagger_world(**objects: Any) -> World:
    """podinfo (canary) and podinfo-primary, with the Services Flagger's model gives them."""
    return World(
        deployments=[deployment("podinfo"), deployment("podinfo-primary")],
        services=[service("podinfo", "podinfo-primary"), service("podinfo-primary", "podinfo-primary"),
                  service("podinfo-canary", "podinfo")],
        **objects,
    )


def by_deployment(shares: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for s in shares or ():
        out[s.hop.deployment] = out.get(s.hop.deployment, 0.0) + s.fraction
    return {k: round(v, 6) for k, v in out.items()}


def only(world: World) -> Split:
    found = splits(world)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize(("primary", "canary"), [(100, 0), (70, 30), (0, 100)])
def test_gatewayapi_httproute_weights(primary: int, canary: int) -> None:
    route = gatewayapi.desired_httproute(release("gatewayapi"), primary, canary)
    split = only(flagger_world(httproutes=[route]))
    assert split.entry == Entry("HTTPRoute", NS, "podinfo") and split.provider == "gatewayapi"
    expected = {k: v / 100 for k, v in (("podinfo-primary", primary), ("podinfo", canary)) if v}
    assert by_deployment(split.plain) == expected
    assert split.matched is None
    assert {s.hop.service for s in split.plain} <= {"podinfo-primary", "podinfo-canary"}
    assert all(s.hop.port == 9898 for s in split.plain)


def test_gatewayapi_match_rule_takes_matched_requests() -> None:
    route = gatewayapi.desired_httproute(release("gatewayapi", AB), 70, 30, match=True)
    split = only(flagger_world(httproutes=[route]))
    assert by_deployment(split.plain) == {"podinfo-primary": 0.7, "podinfo": 0.3}
    assert by_deployment(split.matched) == {"podinfo": 1.0}


@pytest.mark.parametrize("match", [False, True])
def test_istio_virtualservice(match: bool) -> None:
    rel = release("istio", AB if match else None)
    vs = istio.desired_virtualservice(rel, 80, 20, match)
    split = only(flagger_world(virtualservices=[vs]))
    assert split.entry == Entry("Service", NS, "podinfo") and split.provider == "istio"
    assert by_deployment(split.plain) == {"podinfo-primary": 0.8, "podinfo": 0.2}
    assert by_deployment(split.matched) == ({"podinfo": 1.0} if match else {})


def test_istio_lone_destination_without_weight_takes_all() -> None:
    vs = {"metadata": {"name": "vs", "namespace": NS},
          "spec": {"hosts": ["podinfo.test.svc.cluster.local"],
                   "http": [{"route": [{"destination": {"host": "podinfo-canary"}}]}]}}
    assert by_deployment(only(flagger_world(virtualservices=[vs])).plain) == {"podinfo": 1.0}


def test_smi_trafficsplit() -> None:
    ts = smi.desired_trafficsplit(release("smi"), 70, 30)
    split = only(flagger_world(trafficsplits=[ts]))
    assert (split.entry, split.provider) == (Entry("Service", NS, "podinfo"), "smi")
    assert by_deployment(split.plain) == {"podinfo-primary": 0.7, "podinfo": 0.3}


def test_smi_quantity_weights() -> None:
    ts = {"metadata": {"name": "podinfo", "namespace": NS},
          "spec": {"service": "podinfo", "backends": [{"service": "podinfo-primary", "weight": "900m"},
                                                      {"service": "podinfo-canary", "weight": "100m"}]}}
    assert by_deployment(only(flagger_world(trafficsplits=[ts])).plain) == {"podinfo-primary": 0.9,
                                                                            "podinfo": 0.1}


def test_linkerd_httproute_with_match() -> None:
    route = linkerd.desired_httproute(release("linkerd", AB), 60, 40, match=True)
    split = only(flagger_world(linkerd_routes=[route]))
    assert (split.entry, split.provider) == (Entry("Service", NS, "podinfo"), "linkerd")
    assert by_deployment(split.plain) == {"podinfo-primary": 0.6, "podinfo": 0.4}
    assert by_deployment(split.matched) == {"podinfo": 1.0}


def test_linkerd_route_wins_over_trafficsplit() -> None:
    route = linkerd.desired_httproute(release("linkerd"), 0, 100)
    ts = smi.desired_trafficsplit(release("smi"), 100, 0)
    assert by_deployment(only(flagger_world(linkerd_routes=[route], trafficsplits=[ts])).plain) == {"podinfo": 1.0}


def user_ingress() -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": NS},
            "spec": {"rules": [{"host": "app.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "podinfo", "port": {"number": 9898}}}}]}}]}}


@pytest.mark.parametrize("match", [False, True])
def test_nginx_canary_ingress(match: bool) -> None:
    rel = release("nginx", AB if match else None)
    canary = nginx.desired_ingress(rel, user_ingress(), 70, 30, match)
    split = only(flagger_world(ingresses=[user_ingress(), canary]))
    assert (split.entry, split.provider) == (Entry("Ingress", NS, "web"), "nginx")
    assert by_deployment(split.plain) == {"podinfo-primary": 0.7, "podinfo": 0.3}
    labels = {(s.hop.deployment, s.hop.ingress, s.hop.canary) for s in split.plain}
    assert labels == {("podinfo-primary", "web", ""), ("podinfo", "web", "test-podinfo-canary-9898")}
    assert by_deployment(split.matched) == ({"podinfo": 1.0} if match else {})


def test_nginx_disabled_canary_takes_nothing() -> None:
    canary = nginx.desired_ingress(release("nginx"), user_ingress(), 70, 30)
    canary["metadata"]["annotations"][nginx.CANARY] = "false"
    world = flagger_world(ingresses=[user_ingress(), canary])
    # The disabled canary Ingress is then an ordinary Ingress of its own, sending all to podinfo-canary.
    assert {s.entry.name: by_deployment(s.plain) for s in splits(world)} == {
        "web": {"podinfo-primary": 1.0}, "web-canary": {"podinfo": 1.0}}


def test_service_behind_an_ingress_is_no_entry_of_its_own() -> None:
    bluegreen = {"metadata": {"name": "podinfo", "namespace": NS},
                 "spec": {"provider": "kubernetes", "targetRef": {"name": "podinfo"}}}
    world = flagger_world(ingresses=[user_ingress()], releases=[bluegreen])
    assert [s.entry for s in splits(world)] == [Entry("Ingress", NS, "web"), Entry("Service", NS, "podinfo-canary")]


@pytest.mark.parametrize(("selects", "expected"), [("podinfo-primary", "podinfo-primary"), ("podinfo", "podinfo")])
def test_kubernetes_selector(selects: str, expected: str) -> None:
    bluegreen = {"metadata": {"name": "bg", "namespace": NS},
                 "spec": {"provider": "kubernetes", "targetRef": {"name": "podinfo"}}}
    world = World(deployments=[deployment("podinfo"), deployment("podinfo-primary")],
                  services=[service("podinfo", selects), service("podinfo-canary", "podinfo")], releases=[bluegreen])
    split, tester = splits(world)
    assert (split.entry, split.provider) == (Entry("Service", NS, "podinfo"), "kubernetes")
    assert by_deployment(split.plain) == {expected: 1.0}
    # without a mesh, a load tester calls the -canary Service (Flagger's blue/green guide)
    assert tester.entry == Entry("Service", NS, "podinfo-canary")
    assert by_deployment(tester.plain) == {"podinfo": 1.0}


@pytest.mark.parametrize("provider", ["gatewayapi:v1beta1", "contour", "gloo"])
def test_edge_provider_release_is_no_service_entry(provider: str) -> None:
    canary = {"metadata": {"name": "podinfo", "namespace": NS},
              "spec": {"provider": provider, "targetRef": {"name": "podinfo"}}}
    assert splits(flagger_world(releases=[canary])) == []


def test_endpoints_by_ready_replicas_and_labels() -> None:
    world = World(deployments=[deployment("a", ready=3, app="x"), deployment("b", ready=1, app="x"),
                               deployment("c", ready=0, app="x"), deployment("d", ready=5, app="y")],
                  services=[service("s", "x"), {"metadata": {"name": "none", "namespace": NS}, "spec": {}}])
    assert endpoints(world, NS, "s") == [("a", 0.75), ("b", 0.25)]
    assert endpoints(world, NS, "none") == []
    assert endpoints(world, "other", "s") == []


def test_backend_without_ready_pods_loses_its_share() -> None:
    route = gatewayapi.desired_httproute(release("gatewayapi"), 70, 30)
    world = World(deployments=[deployment("podinfo", ready=0), deployment("podinfo-primary")],
                  services=flagger_world().services, httproutes=[route])
    assert by_deployment(only(world).plain) == {"podinfo-primary": 0.7}


def test_split_for_service_without_routes_uses_the_selector() -> None:
    assert by_deployment(split_for(flagger_world(), NS, "podinfo-canary").plain) == {"podinfo": 1.0}


def test_pod_behaviour_from_annotations() -> None:
    d = deployment("p", notes={"dataplane.sandbox/error-rate": "0.05", "dataplane.sandbox/latency-median-ms": "50",
                               "dataplane.sandbox/latency-p99-ms": "200"})
    b = behaviour_of(d)
    assert (b.error_rate, b.median_ms, b.p99_ms) == (0.05, 50.0, 200.0)
    default = behaviour_of(deployment("q", notes={"dataplane.sandbox/error-rate": "lots"}))
    assert (default.error_rate, default.median_ms, default.p99_ms) == (0.0, 20.0, 80.0)
    assert behaviour_of(deployment("r", notes={"dataplane.sandbox/error-rate": "7"})).error_rate == 1.0


def test_pod_names_follow_kubernetes_and_the_template() -> None:
    d = deployment("podinfo", ready=3)
    names = pod_names(d)
    assert len(names) == 3 and len(set(names)) == 3
    assert all(n.startswith("podinfo-") and len(n.split("-")) == 3 for n in names)
    d["spec"]["template"]["metadata"]["annotations"] = {"v": "2"}
    assert set(pod_names(d)).isdisjoint(names)


# --- mirroring and session affinity ----------------------------------------------------------------

PAIR = "flagger-cookie=abcdefghij"


def option_release(provider: str, **analysis: Any) -> Release:
    return parse_canary({"apiVersion": "rollout.gitops.dev/v1alpha1", "kind": "Canary",
                         "metadata": {"name": "podinfo", "namespace": NS, "uid": "u1"},
                         "spec": {"provider": provider,
                                  "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                                  "service": {"port": 9898, "gatewayRefs": [{"name": "public"}]},
                                  "analysis": {"interval": "10s", **analysis}}})


@pytest.mark.parametrize(("provider", "mirror_weight", "expected"), [
    ("istio", 0, 1.0), ("istio", 30, 0.3), ("gatewayapi", 0, 1.0)])
def test_mirrored_requests_also_reach_the_canary(provider: str, mirror_weight: int, expected: float) -> None:
    analysis: dict[str, Any] = {"iterations": 3, "mirror": True}
    if mirror_weight:
        analysis["mirrorWeight"] = mirror_weight
    rel = option_release(provider, **analysis)
    extras = Extras(mirror=True)
    if provider == "istio":
        world = flagger_world(virtualservices=[istio.desired_virtualservice(rel, 100, 0, False, extras)])
    else:
        world = flagger_world(httproutes=[gatewayapi.desired_httproute(rel, 100, 0, False, extras)])
    split = only(world)
    assert by_deployment(split.plain) == {"podinfo-primary": 1.0}  # clients get the primary's answers
    assert by_deployment(split.mirrored) == {"podinfo": expected}
    assert {s.hop.service for s in split.mirrored} == {"podinfo-canary"}


def test_no_mirror_without_the_mirror_rule() -> None:
    rel = option_release("istio", iterations=3, mirror=True)
    assert only(flagger_world(virtualservices=[istio.desired_virtualservice(rel, 100, 0)])).mirrored == ()


@pytest.mark.parametrize("provider", ["istio", "gatewayapi"])
def test_session_affinity_cookie_carriers_go_to_the_canary(provider: str) -> None:
    rel = option_release(provider, stepWeight=10, maxWeight=50, sessionAffinity={"cookieName": "flagger-cookie"})
    if provider == "istio":
        build = lambda p, c: flagger_world(virtualservices=[  # noqa: E731
            istio.desired_virtualservice(rel, p, c, False, Extras(cookie=PAIR))])
    else:
        build = lambda p, c: flagger_world(httproutes=[  # noqa: E731
            gatewayapi.desired_httproute(rel, p, c, False, Extras(cookie=PAIR))])
    split = only(build(90, 10))
    assert split.affinity and split.matched is None  # the cookie rule is not an A/B rule
    assert by_deployment(shares_for(split, {})) == {"podinfo-primary": 0.9, "podinfo": 0.1}
    canary_share = next(s for s in shares_for(split, {}) if s.hop.deployment == "podinfo")
    assert canary_share.set_cookie == f"{PAIR}; Max-Age=86400"
    jar: dict[str, str] = {"session": "x"}
    set_cookie(jar, canary_share.set_cookie)
    assert jar == {"session": "x", "flagger-cookie": "abcdefghij"}
    assert by_deployment(shares_for(split, jar)) == {"podinfo": 1.0}
    assert by_deployment(shares_for(split, {"flagger-cookie": "other-run"})) == {"podinfo-primary": 0.9,
                                                                                   "podinfo": 0.1}
    # the run ended (weight 0): carriers go to the primary and lose the cookie
    ended = only(build(100, 0))
    shares = shares_for(ended, jar)
    assert by_deployment(shares) == {"podinfo-primary": 1.0}
    set_cookie(jar, shares[0].set_cookie)
    assert jar == {"session": "x"}


def test_set_cookie_keeps_and_expires() -> None:
    jar: dict[str, str] = {}
    set_cookie(jar, "a=1; Max-Age=300; Path=/; HttpOnly")
    set_cookie(jar, "b=2")
    assert jar == {"a": "1", "b": "2"}
    set_cookie(jar, "a=1; Max-Age=-1")
    set_cookie(jar, "b=2; max-age=0")
    assert jar == {}


def test_tcp_virtualservice_routes_connections() -> None:
    rel = parse_canary({"apiVersion": "rollout.gitops.dev/v1alpha1", "kind": "Canary",
                        "metadata": {"name": "podinfo", "namespace": NS, "uid": "u1"},
                        "spec": {"provider": "istio",
                                 "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                                 "service": {"port": 9898, "appProtocol": "tcp"},
                                 "analysis": {"interval": "10s", "stepWeight": 10}}})
    split = only(flagger_world(virtualservices=[istio.desired_virtualservice(rel, 60, 40)]))
    assert by_deployment(split.plain) == {"podinfo-primary": 0.6, "podinfo": 0.4}


# --- Contour and Gloo Edge: clients enter through the root HTTPProxy / the Gloo VirtualService -----

# The objects users add in Flagger's Contour and Gloo guides (docs/gitbook/tutorials/
# contour-progressive-delivery.md and gloo-progressive-delivery.md), in namespace `test`.
ROOT_PROXY = {"metadata": {"name": "podinfo-ingress", "namespace": NS},
              "spec": {"virtualhost": {"fqdn": "app.example.com"},
                       "includes": [{"name": "podinfo", "namespace": NS, "conditions": [{"prefix": "/"}]}]}}
GLOO_VS = {"metadata": {"name": "podinfo", "namespace": NS},
           "spec": {"virtualHost": {"domains": ["app.example.com"], "routes": [
               {"matchers": [{"prefix": "/"}], "delegateAction": {"ref": {"name": "podinfo", "namespace": NS}}}]}}}


def gloo_upstreams(r: Release) -> list[dict[str, Any]]:
    return [gloo.desired_upstream(r, name, svc, {"app": app}) for name, svc, app in zip(
        gloo.upstream_names(r), ("podinfo-primary", "podinfo-canary"), ("podinfo-primary", "podinfo"), strict=True)]


def clusters(shares: Any) -> dict[str, str]:
    return {s.hop.deployment: s.hop.cluster for s in shares or ()}


@pytest.mark.parametrize(("primary", "canary"), [(100, 0), (70, 30), (0, 100)])
def test_contour_root_proxy_follows_its_include(primary: int, canary: int) -> None:
    proxy = contour.desired_httpproxy(release("contour"), primary, canary)
    split = only(flagger_world(httpproxies=[ROOT_PROXY, proxy]))
    assert split.entry == Entry("HTTPProxy", NS, "podinfo-ingress") and split.provider == "contour"
    expected = {k: v / 100 for k, v in (("podinfo-primary", primary), ("podinfo", canary)) if v}
    assert by_deployment(split.plain) == expected and split.matched is None
    # Contour's Envoy names the cluster <namespace>_<service>_<port>, as Flagger's observer reads it
    assert set(clusters(split.plain).values()) <= {"test_podinfo-primary_9898", "test_podinfo-canary_9898"}


def test_contour_ab_route_takes_matched_requests_and_an_orphan_proxy_serves_nobody() -> None:
    proxy = contour.desired_httpproxy(release("contour", AB), 100, 0, True)
    split = only(flagger_world(httpproxies=[ROOT_PROXY, proxy]))
    assert by_deployment(split.plain) == {"podinfo-primary": 1.0}
    assert by_deployment(split.matched) == {"podinfo": 1.0}
    assert clusters(split.matched) == {"podinfo": "test_podinfo-canary_9898"}
    assert splits(flagger_world(httpproxies=[proxy])) == []  # no root proxy includes it: no clients


@pytest.mark.parametrize(("primary", "canary"), [(100, 0), (70, 30), (0, 100)])
def test_gloo_virtualservice_delegates_to_the_routetable(primary: int, canary: int) -> None:
    r = release("gloo")
    table = gloo.desired_routetable(r, primary, canary)
    split = only(flagger_world(gloo_virtualservices=[GLOO_VS], routetables=[table], upstreams=gloo_upstreams(r)))
    assert split.entry == Entry("VirtualService.gateway.solo.io", NS, "podinfo") and split.provider == "gloo"
    expected = {k: v / 100 for k, v in (("podinfo-primary", primary), ("podinfo", canary)) if v}
    assert by_deployment(split.plain) == expected and split.matched is None
    # Gloo's Envoy names an Upstream's cluster <upstream>_<namespace>, as Flagger's observer reads it
    assert set(clusters(split.plain).values()) <= {"test-podinfo-primaryupstream-9898_test",
                                                   "test-podinfo-canaryupstream-9898_test"}


def test_gloo_ab_route_takes_matched_requests_and_a_missing_upstream_serves_nobody() -> None:
    r = release("gloo", AB)
    table = gloo.desired_routetable(r, 100, 0, True)
    split = only(flagger_world(gloo_virtualservices=[GLOO_VS], routetables=[table], upstreams=gloo_upstreams(r)))
    assert by_deployment(split.plain) == {"podinfo-primary": 1.0}
    assert by_deployment(split.matched) == {"podinfo": 1.0}
    bare = only(flagger_world(gloo_virtualservices=[GLOO_VS], routetables=[table]))
    assert bare.plain == () and bare.matched == ()


# --- knative --------------------------------------------------------------------------------------


def revision_deployment(revision: str, ready: int = 1) -> dict[str, Any]:
    return deployment(f"{revision}-deployment", ready, app=revision)


def knative_service(traffic: list[dict[str, Any]] | None, latest_ready: str = "podinfo-00002") -> dict[str, Any]:
    service: dict[str, Any] = {"metadata": {"name": "podinfo", "namespace": NS}, "spec": {}}
    if traffic is not None:
        service["spec"]["traffic"] = traffic
    service["status"] = {"traffic": resolved_traffic(service, latest_ready)}
    return service


def test_knative_traffic_resolves_the_latest_revision_to_the_latest_ready_one() -> None:
    split = [{"latestRevision": True, "percent": 10}, {"revisionName": "podinfo-00001", "percent": 90}]
    assert resolved_traffic({"spec": {"traffic": split}}, "podinfo-00002") == [
        {"latestRevision": True, "percent": 10, "revisionName": "podinfo-00002"},
        {"latestRevision": False, "percent": 90, "revisionName": "podinfo-00001"}]
    # Knative's default when the Service states no split: everything to the latest ready Revision
    assert resolved_traffic({"spec": {}}, "podinfo-00001") == [
        {"latestRevision": True, "percent": 100, "revisionName": "podinfo-00001"}]


@pytest.mark.parametrize(("canary", "expected"), [
    (0, {"podinfo-00001-deployment": 1.0}),
    (30, {"podinfo-00001-deployment": 0.7, "podinfo-00002-deployment": 0.3}),
    (100, {"podinfo-00002-deployment": 1.0}),
])
def test_knative_service_splits_by_its_traffic(canary: int, expected: dict[str, float]) -> None:
    traffic = [{"latestRevision": True, "percent": canary}, {"revisionName": "podinfo-00001", "percent": 100 - canary}]
    world = World(deployments=[revision_deployment("podinfo-00001"), revision_deployment("podinfo-00002")],
                  knative_services=[knative_service(traffic)])
    split = only(world)
    assert (split.entry, split.provider, split.matched) == (Entry("KnativeService", NS, "podinfo"), "knative", None)
    assert by_deployment(split.plain) == expected
    # each hop names its Revision: Knative's Envoy counts it under the cluster `<ns>/<revision>`
    assert {s.hop.deployment: s.hop.service for s in split.plain} == {
        d: d.removesuffix("-deployment") for d in expected}


def test_knative_revision_without_ready_pods_takes_nothing() -> None:
    traffic = [{"latestRevision": True, "percent": 50}, {"revisionName": "podinfo-00001", "percent": 50}]
    world = World(deployments=[revision_deployment("podinfo-00001"), revision_deployment("podinfo-00002", 0)],
                  knative_services=[knative_service(traffic)])
    # half of the requests are lost (no endpoints), as on a cluster; the other half reach the primary
    assert by_deployment(only(world).plain) == {"podinfo-00001-deployment": 0.5}


def test_knative_release_is_no_service_entry() -> None:
    """A knative Canary's clients call the Knative Service, not a `<target>` core Service."""
    canary = {"kind": "Canary", "metadata": {"name": "podinfo", "namespace": NS},
              "spec": {"provider": "knative", "targetRef": {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                                                            "name": "podinfo"}}}
    assert splits(World(releases=[canary])) == []
