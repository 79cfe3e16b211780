"""Istio router: a VirtualService `<svc>` (networking.istio.io/v1beta1) whose HTTP route weighs the
destinations `<svc>-primary` and `<svc>-canary`, and one DestinationRule per destination (with the
service's `trafficPolicy`, when it has one).

`analysis.match` is already Istio's HTTPMatchRequest, so A/B routes take it verbatim (merged with
`service.match`, as Flagger does), ahead of the weighted route.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kubernetes import client

from rollout.api.spec import Release
from rollout.routers.base import RouterError
from rollout.routers.objects import Kind, Obj, Objects, check_weights, merged, metadata, names, weight_pair
from rollout.routers.route import Route, RouteIO
from rollout.settings import Settings

VIRTUALSERVICE = Kind("networking.istio.io/v1beta1", "VirtualService", "virtualservices")
DESTINATIONRULE = Kind("networking.istio.io/v1beta1", "DestinationRule", "destinationrules")
# service fields Flagger copies onto every HTTP route of the VirtualService
ROUTE_FIELDS = ("retries", "timeout", "headers", "corsPolicy", "rewrite")


def merge_matches(analysis: Sequence[Mapping[str, Any]], service: Sequence[Mapping[str, Any]]) -> list[Obj]:
    """Each A/B condition within each of the service's own conditions (any pair routes)."""
    if not service:
        return [dict(a) for a in analysis]
    return [{**dict(s), **dict(a)} for a in analysis for s in service]


def destination(host: str, port: int, weight: int) -> Obj:
    return {"destination": {"host": host, "port": {"number": port}}, "weight": weight}


def desired_virtualservice(release: Release, primary: int, canary: int, match: bool = False) -> Obj:
    check_weights(primary, canary)
    n, service = names(release), release.spec.service
    common = {k: service.extra[k] for k in ROUTE_FIELDS if k in service.extra}
    service_match = list(service.extra.get("match") or [])
    weighted: Obj = {**common, "route": [destination(n.primary, service.port, primary),
                                         destination(n.canary, service.port, canary)]}
    if service_match:
        weighted["match"] = service_match
    http = [weighted]
    if match:
        if not release.spec.analysis.match:
            raise RouterError("A/B routing was asked for but analysis.match is empty", temporary=False)
        ab = {**common, "match": merge_matches(release.spec.analysis.match, service_match),
              "route": [destination(n.canary, service.port, 100)]}
        http = [ab, weighted]
    spec: Obj = {"hosts": list(dict.fromkeys([*service.hosts, n.apex]))}
    if service.gateways:
        spec["gateways"] = list(service.gateways)
    spec["http"] = http
    return {"apiVersion": VIRTUALSERVICE.api_version, "kind": VIRTUALSERVICE.kind,
            "metadata": metadata(release, n.apex), "spec": spec}


def desired_destinationrule(release: Release, host: str) -> Obj:
    spec: Obj = {"host": host}
    policy = release.spec.service.extra.get("trafficPolicy")
    if policy:
        spec["trafficPolicy"] = policy
    return {"apiVersion": DESTINATIONRULE.api_version, "kind": DESTINATIONRULE.kind,
            "metadata": metadata(release, host), "spec": spec}


def _hosts(route: Mapping[str, Any]) -> list[str]:
    return [str((d.get("destination") or {}).get("host")) for d in route.get("route") or []]


def weights_of(vs: Mapping[str, Any]) -> tuple[int, int] | None:
    """(primary, canary) of the weighted route (the last naming both destinations), if any."""
    apex = str((vs.get("metadata") or {}).get("name"))
    primary, canary = f"{apex}-primary", f"{apex}-canary"
    for route in reversed((vs.get("spec") or {}).get("http") or []):
        weights = {str((d.get("destination") or {}).get("host")): d.get("weight", 0) for d in route.get("route") or []}
        if primary in weights and canary in weights:
            return weight_pair(weights[primary], weights[canary])
    return None


def is_matched(vs: Mapping[str, Any]) -> bool:
    apex = str((vs.get("metadata") or {}).get("name"))
    routes = (vs.get("spec") or {}).get("http") or []
    return any(_hosts(r) == [f"{apex}-canary"] and r.get("match") for r in routes)


def _updater(desired: Obj) -> Callable[[Obj | None], Obj | None]:
    return lambda live: desired if live is None else merged(live, desired)


ROUTE = Route(VIRTUALSERVICE, desired_virtualservice, weights_of, is_matched)


class IstioRouter(RouteIO):
    """Traffic split by an Istio VirtualService, with a DestinationRule per destination."""

    def __init__(self, api: client.ApiClient, settings: Settings) -> None:
        super().__init__(Objects(api, settings.api_timeout), ROUTE)

    def reconcile(self, release: Release) -> None:
        n = names(release)
        for host in (n.primary, n.canary):
            self.objects.apply(DESTINATIONRULE, n.namespace, host, _updater(desired_destinationrule(release, host)))
        super().reconcile(release)
