"""The kuma and appmesh routers' pure parts: the objects each writes for a weight, an A/B match and a
rollback, compared with the objects Flagger's routers write for the same Canary (fluxcd/flagger
pkg/router/kuma.go and pkg/router/appmesh_v1beta2.go, whose tests kuma_test.go and
appmesh_v1beta2_test.go check the same fields; the Canaries are those of Flagger's guides
docs/gitbook/tutorials/kuma-progressive-delivery.md and appmesh-progressive-delivery.md)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollout.api.parse import parse_canary
from rollout.api.spec import Canary
from rollout.routers import RouterError, appmesh, kuma
from rollout.routers.base import Extras
from rollout.routers.route import kept

UID = "5f0c8a2e-0000-4000-8000-000000000002"
OWNER = [{"apiVersion": "rollout.gitops.dev/v1alpha1", "kind": "Canary", "name": "podinfo", "uid": UID,
          "controller": True, "blockOwnerDeletion": True}]
MANAGED = {"app.kubernetes.io/managed-by": "rollout"}
HEADER_MATCH = [{"headers": {"x-canary": {"exact": "insider"}}}]
GUIDES = Path(__file__).parents[1] / "data" / "flagger" / "canaries"


def canary(provider: str, match: list[dict[str, Any]] | None = None, annotations: dict[str, str] | None = None,
           service_match: list[dict[str, Any]] | None = None, **service: Any) -> Canary:
    analysis: dict[str, Any] = {"interval": "1m", "threshold": 5}
    analysis.update({"iterations": 10, "match": match} if match else {"maxWeight": 50, "stepWeight": 5})
    meta: dict[str, Any] = {"name": "podinfo", "namespace": "test", "uid": UID}
    if annotations:
        meta["annotations"] = annotations
    return parse_canary({"apiVersion": "rollout.gitops.dev/v1alpha1", "kind": "Canary", "metadata": meta,
                         "spec": {"provider": provider,
                                  "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                                  "service": {"port": 9898, **service,
                                              **({"match": service_match} if service_match else {})},
                                  "analysis": analysis}})


# --- kuma -------------------------------------------------------------------------------------------


def trafficroute(primary: int, canary_weight: int, mesh: str = "default") -> dict[str, Any]:
    """What Flagger's KumaRouter writes for the guide's podinfo in `test` (Reconcile, then SetRoutes)."""
    return {
        "apiVersion": "kuma.io/v1alpha1", "kind": "TrafficRoute", "mesh": mesh,
        "metadata": {"name": "podinfo", "labels": MANAGED},
        "spec": {
            "sources": [{"match": {"kuma.io/service": "*"}}],
            "destinations": [{"match": {"kuma.io/service": "podinfo_test_svc_9898"}}],
            "conf": {"split": [
                {"weight": primary, "destination": {"kuma.io/service": "podinfo-primary_test_svc_9898"}},
                {"weight": canary_weight, "destination": {"kuma.io/service": "podinfo-canary_test_svc_9898"}},
            ]},
        },
    }


@pytest.mark.parametrize("primary, canary_weight", [(100, 0), (95, 5), (50, 50), (0, 100)])
def test_trafficroute_as_flagger_writes_it(primary: int, canary_weight: int) -> None:
    release = canary("kuma", annotations={"kuma.io/mesh": "default"})
    route = kuma.desired_trafficroute(release, primary, canary_weight)
    assert route == trafficroute(primary, canary_weight)
    assert kuma.weights_of(route) == (primary, canary_weight)


def test_trafficroute_is_cluster_scoped_and_unowned_in_the_canarys_mesh() -> None:
    route = kuma.desired_trafficroute(canary("kuma", annotations={"kuma.io/mesh": "payments"}), 100, 0)
    assert route == trafficroute(100, 0, mesh="payments")
    assert "namespace" not in route["metadata"] and "ownerReferences" not in route["metadata"]
    assert kuma.TRAFFICROUTE.namespaced is False
    assert kuma.mesh_of(canary("kuma")) == "default"


def test_trafficroute_rollback_sends_everything_to_the_primary() -> None:
    live = trafficroute(60, 40)
    assert kuma.weights_of(live) == (60, 40)
    assert kuma.desired_trafficroute(canary("kuma"), *kept(None)) == trafficroute(100, 0)


def test_trafficroute_names_the_service_and_its_port() -> None:
    route = kuma.desired_trafficroute(canary("kuma", name="web", port=80), 90, 10)
    assert route["metadata"]["name"] == "web"
    assert route["spec"]["destinations"] == [{"match": {"kuma.io/service": "web_test_svc_80"}}]
    assert [s["destination"]["kuma.io/service"] for s in route["spec"]["conf"]["split"]] == [
        "web-primary_test_svc_80", "web-canary_test_svc_80"]


def test_trafficroute_refuses_matches_mirroring_and_cookies() -> None:
    release = canary("kuma")
    with pytest.raises(RouterError, match="cannot route by header"):
        kuma.desired_trafficroute(release, 100, 0, True)
    with pytest.raises(RouterError, match="mirror"):
        kuma.desired_trafficroute(release, 100, 0, False, Extras(mirror=True))
    with pytest.raises(RouterError, match="sessionAffinity"):
        kuma.desired_trafficroute(release, 90, 10, False, Extras(cookie="flagger-cookie=abc"))
    assert kuma.is_matched(trafficroute(0, 100)) is False


def test_trafficroute_reader_and_owner_by_tags() -> None:
    route = trafficroute(70, 30)
    assert kuma.is_ours(route, canary("kuma"))
    other = copy.deepcopy(route)
    other["spec"]["destinations"] = [{"match": {"kuma.io/service": "podinfo_prod_svc_9898"}}]
    assert not kuma.is_ours(other, canary("kuma"))
    assert kuma.weights_of(other) is None  # its split names another namespace's Services
    assert kuma.weights_of({"spec": {}}) is None
    assert kuma.parse_tag("podinfo-canary_test_svc_9898") == ("podinfo-canary", "test", 9898)
    assert kuma.parse_tag("external-api") is None


# --- appmesh ----------------------------------------------------------------------------------------


def virtualnode(name: str, selector: str) -> dict[str, Any]:
    """Flagger's reconcileVirtualNode for the guide's Canary (container port 9898, http)."""
    return {
        "apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualNode",
        "metadata": {"name": name, "namespace": "test", "labels": MANAGED, "ownerReferences": OWNER},
        "spec": {
            "listeners": [{"portMapping": {"port": 9898, "protocol": "http"}}],
            "serviceDiscovery": {"dns": {"hostname": f"{name}.test.svc.cluster.local."}},
            "podSelector": {"matchLabels": {"app": selector}},
        },
    }


def targets(canary_weight: int, primary: int) -> list[dict[str, Any]]:
    return [{"virtualNodeRef": {"name": "podinfo-canary"}, "weight": canary_weight},
            {"virtualNodeRef": {"name": "podinfo-primary"}, "weight": primary}]


def virtualrouter(name: str, routes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualRouter",
        "metadata": {"name": name, "namespace": "test", "labels": MANAGED, "ownerReferences": OWNER},
        "spec": {"listeners": [{"portMapping": {"port": 9898, "protocol": "http"}}], "routes": routes},
    }


def weighted(primary: int, canary_weight: int) -> dict[str, Any]:
    """Flagger's reconcileVirtualRouter + SetRoutes: one route named after the router."""
    return virtualrouter("podinfo", [{"name": "podinfo", "httpRoute": {
        "match": {"prefix": "/"}, "action": {"weightedTargets": targets(canary_weight, primary)}}}])


def ab_test() -> dict[str, Any]:
    """Flagger's A/B routes after SetRoutes(0, 100): `-a` (headers, to the canary), `-b` (the rest)."""
    return virtualrouter("podinfo", [
        {"name": "podinfo-a", "priority": 10, "httpRoute": {
            "match": {"prefix": "/", "headers": [{"name": "x-canary", "match": {"exact": "insider"}}]},
            "action": {"weightedTargets": targets(100, 0)}}},
        {"name": "podinfo-b", "priority": 20, "httpRoute": {
            "match": {"prefix": "/"},
            "action": {"weightedTargets": [{"virtualNodeRef": {"name": "podinfo-primary"}, "weight": 100}]}}},
    ])


def test_virtualnodes_as_flagger_writes_them() -> None:
    release = canary("appmesh:v1beta2")
    assert appmesh.desired_virtualnode(release, "podinfo-primary", {"app": "podinfo-primary"}) == virtualnode(
        "podinfo-primary", "podinfo-primary")
    assert appmesh.desired_virtualnode(release, "podinfo-canary", {"app": "podinfo"}) == virtualnode(
        "podinfo-canary", "podinfo")


def test_virtualnode_listens_on_the_target_port_and_grpc_by_port_name() -> None:
    node = appmesh.desired_virtualnode(canary("appmesh", targetPort=8080, portName="grpc"), "podinfo-primary",
                                       {"app": "podinfo-primary"})
    assert node["spec"]["listeners"] == [{"portMapping": {"port": 8080, "protocol": "grpc"}}]


@pytest.mark.parametrize("primary, canary_weight", [(100, 0), (95, 5), (50, 50), (0, 100)])
def test_virtualrouter_weights_as_flagger_writes_them(primary: int, canary_weight: int) -> None:
    router = appmesh.desired_virtualrouter(canary("appmesh"), primary, canary_weight)
    assert router == weighted(primary, canary_weight)
    assert appmesh.weights_of(router) == (primary, canary_weight)
    assert appmesh.is_matched(router) is False


def flagger_guide_canary() -> Canary:
    """The Canary of Flagger's App Mesh guide (v1.41.0), without `rewrite` (which its router ignores)."""
    obj = yaml.safe_load((GUIDES / "docs-tutorials-appmesh-progressive-delivery-1.yaml").read_text())
    del obj["spec"]["service"]["rewrite"]
    return parse_canary({**obj, "apiVersion": "rollout.gitops.dev/v1alpha1",
                         "metadata": {**obj["metadata"], "uid": UID}})


def test_the_guides_timeout_retries_prefix_and_access_log_as_flagger_writes_them() -> None:
    release = flagger_guide_canary()
    timeout = {"perRequest": {"unit": "ms", "value": 15000}}
    node = appmesh.desired_virtualnode(release, "podinfo-primary", {"app": "podinfo-primary"})
    assert node["spec"]["listeners"] == [{"portMapping": {"port": 9898, "protocol": "http"},
                                          "timeout": {"http": timeout}}]
    assert node["spec"]["logging"] == {"accessLog": {"file": {"path": "/dev/stdout"}}}
    [route] = appmesh.desired_virtualrouter(release, 95, 5)["spec"]["routes"]
    assert route["httpRoute"] == {
        "match": {"prefix": "/"},
        "action": {"weightedTargets": targets(5, 95)},
        "timeout": timeout,
        "retryPolicy": {"perRetryTimeout": {"unit": "ms", "value": 5000}, "maxRetries": 3,
                        "httpRetryEvents": ["gateway-error", "client-error", "stream-error"]},
    }
    [canary_route] = appmesh.desired_canary_router(release)["spec"]["routes"]
    assert canary_route["httpRoute"]["timeout"] == timeout and canary_route["httpRoute"]["retryPolicy"]


def test_prefix_and_default_retry_policy() -> None:
    release = canary("appmesh", match=HEADER_MATCH, retries={"attempts": 0},
                     service_match=[{"uri": {"prefix": "/api"}}])
    routes = appmesh.desired_virtualrouter(release, 100, 0, True)["spec"]["routes"]
    assert [r["httpRoute"]["match"]["prefix"] for r in routes] == ["/api", "/api"]
    assert routes[0]["httpRoute"]["retryPolicy"] == {"perRetryTimeout": {"unit": "ms", "value": 250},
                                                     "maxRetries": 1, "httpRetryEvents": ["gateway-error"]}
    assert "timeout" not in routes[0]["httpRoute"]


def test_canary_router_and_the_virtualservices() -> None:
    release = canary("appmesh")
    assert appmesh.desired_canary_router(release) == virtualrouter("podinfo-canary", [{
        "name": "podinfo-canary", "httpRoute": {"match": {"prefix": "/"},
                                                "action": {"weightedTargets": targets(100, 0)}}}])
    for name in ("podinfo", "podinfo-canary"):
        assert appmesh.desired_virtualservice(release, name) == {
            "apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": "test", "labels": MANAGED, "ownerReferences": OWNER},
            "spec": {"provider": {"virtualRouter": {"virtualRouterRef": {"name": name}}}},
        }


def test_apex_virtualservice_is_exposed_on_the_gateway_for_hosts() -> None:
    release = canary("appmesh", hosts=["podinfo.example.com", "www.example.com"])
    apex = appmesh.desired_virtualservice(release, "podinfo")
    assert apex["metadata"]["annotations"] == {"gateway.appmesh.k8s.aws/expose": "true",
                                               "gateway.appmesh.k8s.aws/domain": "podinfo.example.com,www.example.com,"}
    assert "annotations" not in appmesh.desired_virtualservice(release, "podinfo-canary")["metadata"]


def test_ab_routes_as_flagger_writes_them_and_a_rollback() -> None:
    release = canary("appmesh", match=HEADER_MATCH)
    router = appmesh.desired_virtualrouter(release, 100, 0, True)
    assert router == ab_test()
    assert appmesh.weights_of(router) == (100, 0)
    assert appmesh.is_matched(router)
    # rolled back (or promoted): the routes leave the A/B state, all traffic to the primary
    assert appmesh.desired_virtualrouter(release, 100, 0) == weighted(100, 0)


@pytest.mark.parametrize("test, expected", [
    ({"exact": "insider"}, {"exact": "insider"}),
    ({"prefix": "ins"}, {"prefix": "ins"}),
    ({"suffix": "der"}, {"suffix": "der"}),
    ({"regex": "^(.*?;)?(canary=insider)(;.*)?$"}, {"regex": "^(.*?;)?(canary=insider)(;.*)?$"}),
])
def test_header_matches(test: dict[str, str], expected: dict[str, str]) -> None:
    assert appmesh.header_matches([{"headers": {"cookie": test}}]) == [{"name": "cookie", "match": expected}]


def test_headers_of_one_condition_must_all_match() -> None:
    assert appmesh.header_matches([{"headers": {"x-b": {"exact": "1"}, "x-a": {"prefix": "2"}}}]) == [
        {"name": "x-a", "match": {"prefix": "2"}}, {"name": "x-b", "match": {"exact": "1"}}]


@pytest.mark.parametrize("match, field", [
    ([{"queryParams": {"user": {"exact": "x"}}}], "queryParams"),
    ([{"sourceLabels": {"app": "web"}}], "sourceLabels"),
    ([{"headers": {"x-canary": {"exact": "a", "prefix": "b"}}}], "headers.x-canary"),
    ([{"headers": {}}], "no headers"),
    ([{"headers": {"a": {"exact": "1"}}}, {"headers": {"b": {"exact": "2"}}}], "one condition"),
])
def test_header_matches_refuse_what_app_mesh_cannot_match(match: list[dict[str, Any]], field: str) -> None:
    with pytest.raises(RouterError, match=field):
        appmesh.header_matches(match)


def test_virtualrouter_refuses_mirroring_and_cookies() -> None:
    with pytest.raises(RouterError, match="mirror"):
        appmesh.desired_virtualrouter(canary("appmesh"), 100, 0, False, Extras(mirror=True))
    with pytest.raises(RouterError, match="sessionAffinity"):
        appmesh.desired_virtualrouter(canary("appmesh"), 90, 10, False, Extras(cookie="a=b"))


def test_updates_keep_what_the_app_mesh_controller_wrote() -> None:
    live = weighted(100, 0)
    live["metadata"]["resourceVersion"] = "7"
    live["spec"]["awsName"] = "podinfo_test"
    live["spec"]["meshRef"] = {"name": "global", "uid": "1"}
    updated = appmesh.keeping_controller_fields(weighted(90, 10))(live)
    assert updated is not None
    assert updated["spec"]["awsName"] == "podinfo_test" and updated["spec"]["meshRef"] == {"name": "global", "uid": "1"}
    assert appmesh.weights_of(updated) == (90, 10)
    assert updated["metadata"]["resourceVersion"] == "7"
    assert appmesh.keeping_controller_fields(weighted(100, 0))(live) is None  # nothing to change
