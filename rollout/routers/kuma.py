"""Kuma router: a TrafficRoute `<svc>` (kuma.io/v1alpha1) that splits the traffic the mesh sends to
the apex Service between `<svc>-primary` and `<svc>-canary`, as Flagger's kuma router writes it.

Kuma names a Kubernetes Service inside the mesh by its `kuma.io/service` tag,
`<service>_<namespace>_svc_<port>`; the route matches every source (`kuma.io/service: "*"`), the apex
tag as its destination, and splits by the primary's and the canary's tags. A TrafficRoute is
cluster-scoped and belongs to the mesh the Canary's `kuma.io/mesh` annotation names (`default`
otherwise). A cluster-scoped object cannot be owned by a namespaced Canary, so, as in Flagger, it
carries no ownerReference: it is ours when its destination is our apex's tag (a route for the same
name in another namespace is refused, not taken over), and finalizing deletes it, since nothing
would collect it. Kuma's TrafficRoute has no request matching or mirroring: A/B testing, mirroring
and session affinity are refused, as Flagger's router cannot do them either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes import client

from rollout.api.spec import Release
from rollout.routers.base import PLAIN, Extras, RouterError, refuse_extras
from rollout.routers.objects import MANAGED_BY, Kind, Obj, Objects, check_weights, names, weight_pair
from rollout.routers.route import Route, RouteIO
from rollout.settings import Settings

TRAFFICROUTE = Kind("kuma.io/v1alpha1", "TrafficRoute", "trafficroutes", namespaced=False)
SERVICE_TAG = "kuma.io/service"
MESH_ANNOTATION = "kuma.io/mesh"
DEFAULT_MESH = "default"


def service_tag(service: str, namespace: str, port: int) -> str:
    """The `kuma.io/service` tag Kuma gives a Kubernetes Service's port."""
    return f"{service}_{namespace}_svc_{port}"


def parse_tag(tag: str) -> tuple[str, str, int] | None:
    """(service, namespace, port) of a `kuma.io/service` tag naming a Kubernetes Service, else None."""
    parts = tag.split("_")
    if len(parts) != 4 or parts[2] != "svc" or not parts[3].isdigit():
        return None
    return parts[0], parts[1], int(parts[3])


def mesh_of(release: Release) -> str:
    return dict(release.metadata.annotations).get(MESH_ANNOTATION) or DEFAULT_MESH


def desired_trafficroute(release: Release, primary: int, canary: int, match: bool = False,
                         extras: Extras = PLAIN) -> Obj:
    refuse_extras("kuma", extras)
    if match:
        raise RouterError("a Kuma TrafficRoute cannot route by header or cookie; A/B testing (analysis.match) "
                          "needs a provider that can, such as istio or appmesh", temporary=False)
    check_weights(primary, canary)
    n, port = names(release), release.spec.service.port
    return {
        "apiVersion": TRAFFICROUTE.api_version,
        "kind": TRAFFICROUTE.kind,
        "mesh": mesh_of(release),
        # cluster-scoped: no namespace, and no ownerReference (see the module docstring)
        "metadata": {"name": n.apex, "labels": dict(MANAGED_BY)},
        "spec": {
            "sources": [{"match": {SERVICE_TAG: "*"}}],
            "destinations": [{"match": {SERVICE_TAG: service_tag(n.apex, n.namespace, port)}}],
            "conf": {"split": [
                {"weight": primary, "destination": {SERVICE_TAG: service_tag(n.primary, n.namespace, port)}},
                {"weight": canary, "destination": {SERVICE_TAG: service_tag(n.canary, n.namespace, port)}},
            ]},
        },
    }


def _destination(route: Mapping[str, Any]) -> str:
    dests = (route.get("spec") or {}).get("destinations") or []
    return str(((dests[0] or {}).get("match") or {}).get(SERVICE_TAG) or "") if dests else ""


def weights_of(route: Mapping[str, Any]) -> tuple[int, int] | None:
    """(primary, canary) of the split, read by the destinations' tags; None without both."""
    apex = parse_tag(_destination(route))
    if apex is None:
        return None
    service, namespace, _ = apex
    weights: dict[str, Any] = {}
    for split in ((route.get("spec") or {}).get("conf") or {}).get("split") or []:
        tag = parse_tag(str((split.get("destination") or {}).get(SERVICE_TAG) or ""))
        if tag is not None and tag[1] == namespace:
            weights[tag[0]] = split.get("weight", 0)
    if f"{service}-primary" not in weights or f"{service}-canary" not in weights:
        return None
    return weight_pair(weights[f"{service}-primary"], weights[f"{service}-canary"])


def is_matched(route: Mapping[str, Any]) -> bool:
    return False


ROUTE = Route(TRAFFICROUTE, desired_trafficroute, weights_of, is_matched)


def is_ours(route: Mapping[str, Any], release: Release) -> bool:
    """Whether a live TrafficRoute routes this release's apex (the only mark a cluster-scoped route has)."""
    tag = parse_tag(_destination(route))
    n = names(release)
    return tag is not None and tag[:2] == (n.apex, n.namespace)


class KumaRouter(RouteIO):
    """Traffic split by a Kuma TrafficRoute."""

    def __init__(self, api: client.ApiClient, settings: Settings) -> None:
        super().__init__(Objects(api, settings.api_timeout), ROUTE)

    def _claim(self, release: Release) -> None:
        live = self.objects.get(TRAFFICROUTE, "", self.route.name(release))
        if live is not None and _destination(live) and not is_ours(live, release):
            raise RouterError(f"TrafficRoute {self.route.name(release)} routes {_destination(live)}, not "
                              f"{release.metadata.namespace}/{names(release).apex}: TrafficRoutes are "
                              "cluster-scoped, so two apex Services of one name cannot both have one",
                              temporary=False)

    def reconcile(self, release: Release) -> None:
        self._claim(release)
        super().reconcile(release)

    def set_weight(self, release: Release, primary: int, canary: int, match: bool = False, *,
                   mirror: bool = False, cookie: str = "") -> None:
        refuse_extras("kuma", Extras(mirror, cookie))
        self._claim(release)
        super().set_weight(release, primary, canary, match)

    def verify_weight(self, release: Release) -> tuple[int, int] | None:
        live = self.objects.get(TRAFFICROUTE, "", self.route.name(release))
        return None if live is None or not is_ours(live, release) else weights_of(live)

    def finalize(self, release: Release) -> None:
        live = self.objects.get(TRAFFICROUTE, "", self.route.name(release))
        if live is not None and is_ours(live, release):
            # Without the route Kuma sends the apex's traffic to the apex Service's own endpoints.
            self.objects.delete(TRAFFICROUTE, "", self.route.name(release))
