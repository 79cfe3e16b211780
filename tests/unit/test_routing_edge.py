"""The sandbox's pure routing through Traefik, APISIX and Skipper: the objects the traefik, apisix and
skipper routers write (built by their real pure builders), under the objects clients enter through
(an IngressRoute, the user's ApisixRoute, the user's Skipper Ingress), give the shares per Deployment
and the names each proxy labels its metrics with."""

from __future__ import annotations

from typing import Any

import pytest

from rollout.routers import apisix, skipper, traefik
from sandbox.routing import Entry, Split, World, splits
from tests.unit.test_routers_edge import USER_INGRESS, USER_ROUTE, canary
from tests.unit.test_routing import by_deployment, deployment, service

NS = "test"


def world(**objects: Any) -> World:
    """podinfo (canary) and podinfo-primary behind the Services Flagger's model gives them, on port 80,
    and another app, cdn."""
    def svc(name: str, app: str) -> dict[str, Any]:
        obj = service(name, app)
        obj["spec"]["ports"] = [{"port": 80}]
        return obj
    return World(deployments=[deployment("podinfo"), deployment("podinfo-primary"), deployment("cdn")],
                 services=[svc("podinfo", "podinfo-primary"), svc("podinfo-primary", "podinfo-primary"),
                           svc("podinfo-canary", "podinfo"), svc("cdn", "cdn")],
                 **objects)


def only(w: World) -> Split:
    found = splits(w)
    assert len(found) == 1, found
    return found[0]


def routes(split: Split) -> dict[str, str]:
    return {s.hop.deployment: s.hop.route for s in split.plain}


def expected(primary: int, canary_weight: int) -> dict[str, float]:
    return {k: v / 100 for k, v in (("podinfo-primary", primary), ("podinfo", canary_weight)) if v}


INGRESSROUTE: dict[str, Any] = {  # Flagger's traefik tutorial
    "apiVersion": "traefik.io/v1alpha1", "kind": "IngressRoute", "metadata": {"name": "podinfo", "namespace": NS},
    "spec": {"entryPoints": ["web"], "routes": [{"match": "Host(`app.example.com`)", "kind": "Rule",
                                                  "services": [{"name": "podinfo", "kind": "TraefikService",
                                                                "port": 80}]}]},
}


@pytest.mark.parametrize(("primary", "canary_weight"), [(100, 0), (70, 30), (0, 100)])
def test_traefik_ingressroute_through_the_traefikservice(primary: int, canary_weight: int) -> None:
    ts = traefik.desired_traefikservice(canary("traefik"), primary, canary_weight)
    split = only(world(ingressroutes=[INGRESSROUTE], traefikservices=[ts]))
    assert split.entry == Entry("IngressRoute", NS, "podinfo") and split.provider == "traefik"
    assert by_deployment(split.plain) == expected(primary, canary_weight)
    names = {"podinfo-primary": "test-podinfo-primary-80@kubernetescrd",
             "podinfo": "test-podinfo-canary-80@kubernetescrd"}
    assert routes(split) == {d: r for d, r in names.items() if d in expected(primary, canary_weight)}


def test_traefik_weights_default_to_one_and_nest() -> None:
    outer = {"apiVersion": "traefik.io/v1alpha1", "kind": "TraefikService",
             "metadata": {"name": "outer", "namespace": NS},
             "spec": {"weighted": {"services": [{"name": "podinfo", "kind": "TraefikService"},
                                                {"name": "cdn", "port": 80, "weight": 3}]}}}
    ts = traefik.desired_traefikservice(canary("traefik"), 50, 50)
    route = {**INGRESSROUTE, "spec": {"routes": [{"services": [{"name": "outer", "kind": "TraefikService"}]}]}}
    split = only(world(ingressroutes=[route], traefikservices=[ts, outer]))
    assert by_deployment(split.plain) == {"podinfo-primary": 0.125, "podinfo": 0.125, "cdn": 0.75}


def test_traefik_without_its_traefikservice_serves_nothing() -> None:
    assert only(world(ingressroutes=[INGRESSROUTE])).plain == ()


@pytest.mark.parametrize(("primary", "canary_weight"), [(100, 0), (70, 30), (0, 100)])
def test_apisix_canary_route_outranks_the_users(primary: int, canary_weight: int) -> None:
    ours = apisix.desired_apisixroute(canary("apisix"), USER_ROUTE, primary, canary_weight)
    # the user's route's two rules are two streams, entering at the user's route; the canary route
    # joins the one whose rule it copies
    found = splits(world(apisixroutes=[USER_ROUTE, ours]))
    assert [s.entry for s in found] == [Entry("ApisixRoute", NS, "podinfo")] * 2
    split = next(s for s in found if s.plain[0].hop.service != "cdn")
    assert split.provider == "apisix" and by_deployment(split.plain) == expected(primary, canary_weight)
    assert set(routes(split).values()) == {"test_podinfo-podinfo-canary_method"}


def test_apisix_users_route_alone_sends_to_the_apex() -> None:
    split = next(s for s in splits(world(apisixroutes=[USER_ROUTE])) if s.plain[0].hop.service == "podinfo")
    assert by_deployment(split.plain) == {"podinfo-primary": 1.0}
    assert routes(split) == {"podinfo-primary": "test_podinfo_method"}


USER_SKIPPER = {**USER_INGRESS, "metadata": {**USER_INGRESS["metadata"], "namespace": NS}}


@pytest.mark.parametrize(("primary", "canary_weight"), [(100, 0), (70, 30), (0, 100)])
def test_skipper_canary_ingress_takes_the_users_path(primary: int, canary_weight: int) -> None:
    ours = skipper.desired_ingress(canary("skipper"), USER_SKIPPER, primary, canary_weight)
    split = only(world(ingresses=[USER_SKIPPER, ours]))
    assert split.entry == Entry("Ingress", NS, "podinfo") and split.provider == "skipper"
    assert by_deployment(split.plain) == expected(primary, canary_weight)
    ids = {"podinfo-primary": "kube_test__podinfo_canary__app_example_com_____podinfo_primary",
           "podinfo": "kube_test__podinfo_canary__app_example_com_____podinfo_canary"}
    assert routes(split) == {d: r for d, r in ids.items() if d in expected(primary, canary_weight)}


def test_skipper_disabled_canary_ingress_leaves_the_users() -> None:
    ours = skipper.desired_ingress(canary("skipper"), USER_SKIPPER, 100, 0, enabled=False)
    split = only(world(ingresses=[USER_SKIPPER, ours]))
    assert by_deployment(split.plain) == {"podinfo-primary": 1.0}
    assert routes(split) == {"podinfo-primary": "kube_test__podinfo__app_example_com_____podinfo"}


def test_an_nginx_ingress_is_not_skippers() -> None:
    nginx = {**USER_SKIPPER, "metadata": {"name": "podinfo", "namespace": NS}}
    assert only(world(ingresses=[nginx])).provider == "nginx"


@pytest.mark.parametrize("provider", ["traefik", "apisix", "skipper"])
def test_edge_provider_release_is_no_service_entry(provider: str) -> None:
    """Their clients come in through the proxy's object, not the apex Service."""
    release = {"metadata": {"name": "podinfo", "namespace": NS},
               "spec": {"provider": provider, "targetRef": {"name": "podinfo"}}}
    assert splits(world(releases=[release])) == []
