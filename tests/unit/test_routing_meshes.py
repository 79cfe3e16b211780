"""The sandbox's pure routing for Kuma TrafficRoutes and App Mesh VirtualServices/VirtualRouters, fed
with what the kuma and appmesh routers write (so the data plane reads what the operator writes)."""

from __future__ import annotations

from typing import Any

import pytest

from rollout.routers import appmesh, kuma
from sandbox.routing import Entry, World, split_for, splits
from tests.unit.test_routing import AB, NS, by_deployment, flagger_world, only, release


@pytest.mark.parametrize(("primary", "canary"), [(100, 0), (70, 30), (0, 100)])
def test_kuma_trafficroute_splits_the_apex(primary: int, canary: int) -> None:
    route = kuma.desired_trafficroute(release("kuma"), primary, canary)
    split = only(flagger_world(trafficroutes=[route]))
    assert (split.entry, split.provider) == (Entry("Service", NS, "podinfo"), "kuma")
    expected = {k: v / 100 for k, v in (("podinfo-primary", primary), ("podinfo", canary)) if v}
    assert by_deployment(split.plain) == expected
    assert split.matched is None
    assert {s.hop.service for s in split.plain} <= {"podinfo-primary", "podinfo-canary"}
    assert {s.hop.port for s in split.plain} == {9898}


def test_kuma_weights_are_relative_and_other_namespaces_ignored() -> None:
    route: dict[str, Any] = {"metadata": {"name": "podinfo"}, "spec": {
        "destinations": [{"match": {"kuma.io/service": "podinfo_test_svc_9898"}}],
        "conf": {"split": [{"weight": 3, "destination": {"kuma.io/service": "podinfo-primary_test_svc_9898"}},
                           {"weight": 1, "destination": {"kuma.io/service": "podinfo-canary_test_svc_9898"}},
                           {"weight": 4, "destination": {"kuma.io/service": "podinfo-canary_prod_svc_9898"}}]}}}
    assert by_deployment(only(flagger_world(trafficroutes=[route])).plain) == {"podinfo-primary": 0.75,
                                                                               "podinfo": 0.25}


def appmesh_world(primary: int, canary: int, match: bool = False) -> World:
    rel = release("appmesh", AB if match else None)
    nodes = [appmesh.desired_virtualnode(rel, "podinfo-primary", {"app": "podinfo-primary"}),
             appmesh.desired_virtualnode(rel, "podinfo-canary", {"app": "podinfo"})]
    routers = [appmesh.desired_virtualrouter(rel, primary, canary, match), appmesh.desired_canary_router(rel)]
    services = [appmesh.desired_virtualservice(rel, name) for name in ("podinfo", "podinfo-canary")]
    return flagger_world(appmesh_nodes=nodes, appmesh_routers=routers, appmesh_services=services,
                         releases=[{"kind": "Canary", "metadata": {"name": "podinfo", "namespace": NS},
                                    "spec": {"provider": "appmesh", "service": {"port": 9898},
                                             "targetRef": {"name": "podinfo"}}}])


@pytest.mark.parametrize(("primary", "canary"), [(100, 0), (60, 40), (0, 100)])
def test_appmesh_virtualrouter_splits_the_apex(primary: int, canary: int) -> None:
    split = only(appmesh_world(primary, canary))  # the Canary's apex; no client calls podinfo-canary here
    assert (split.entry, split.provider) == (Entry("Service", NS, "podinfo"), "appmesh")
    expected = {k: v / 100 for k, v in (("podinfo-primary", primary), ("podinfo", canary)) if v}
    assert by_deployment(split.plain) == expected
    assert split.matched is None


def test_appmesh_ab_routes_by_priority() -> None:
    split = only(appmesh_world(100, 0, match=True))
    assert by_deployment(split.plain) == {"podinfo-primary": 1.0}
    assert by_deployment(split.matched) == {"podinfo": 1.0}
    # priority decides, not the order in the list
    world = appmesh_world(100, 0, match=True)
    router = dict(world.appmesh_routers[0])
    router["spec"] = {**router["spec"], "routes": list(reversed(router["spec"]["routes"]))}
    reordered = World(**{**vars(world), "appmesh_routers": [router, world.appmesh_routers[1]]})
    assert by_deployment(only(reordered).matched) == {"podinfo": 1.0}


def test_appmesh_canary_virtualservice_sends_everything_to_the_canary() -> None:
    split = split_for(appmesh_world(90, 10), NS, "podinfo-canary")
    assert split.provider == "appmesh" and by_deployment(split.plain) == {"podinfo": 1.0}


def test_appmesh_virtualservice_provided_by_a_node() -> None:
    rel = release("appmesh")
    node = appmesh.desired_virtualnode(rel, "podinfo-canary", {"app": "podinfo"})
    vs = {"metadata": {"name": "podinfo", "namespace": NS},
          "spec": {"awsName": "podinfo.test.svc.cluster.local",
                   "provider": {"virtualNode": {"virtualNodeRef": {"name": "podinfo-canary"}}}}}
    split = split_for(flagger_world(appmesh_nodes=[node], appmesh_services=[vs]), NS, "podinfo")
    assert by_deployment(split.plain) == {"podinfo": 1.0}
    assert splits(flagger_world(appmesh_nodes=[node], appmesh_services=[vs])) == []  # not a release's apex
