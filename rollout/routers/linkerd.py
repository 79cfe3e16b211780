"""Linkerd router: an SMI TrafficSplit for weighted canaries (Linkerd's SMI extension serves it),
and, when the release does A/B testing, a Linkerd HTTPRoute `<svc>` (policy.linkerd.io/v1beta2)
attached to the apex Service instead, because only an HTTPRoute can match headers (Linkerd 2.12+).

The objects are built by the smi and gatewayapi modules; this one only chooses between them, and
removes the one the release no longer uses.
"""

from __future__ import annotations

from kubernetes import client

from rollout.api.spec import Release
from rollout.routers import gatewayapi, smi
from rollout.routers.base import PLAIN, Extras, RouterError, refuse_extras
from rollout.routers.objects import Kind, Obj, Objects, metadata, names, owned_by
from rollout.routers.route import Route, RouteIO
from rollout.settings import Settings

LINKERD_HTTPROUTE = Kind("policy.linkerd.io/v1beta2", "HTTPRoute", "httproutes")


def desired_httproute(release: Release, primary: int, canary: int, match: bool = False,
                      extras: Extras = PLAIN) -> Obj:
    """An HTTPRoute on the apex Service (Linkerd's outbound policy), rules as the Gateway API router's."""
    refuse_extras("linkerd", extras)
    n = names(release)
    parent = {"group": "core", "kind": "Service", "name": n.apex, "port": release.spec.service.port}
    return {
        "apiVersion": LINKERD_HTTPROUTE.api_version,
        "kind": LINKERD_HTTPROUTE.kind,
        "metadata": metadata(release, n.apex),
        "spec": {"parentRefs": [parent], "rules": gatewayapi.route_rules(release, primary, canary, match)},
    }


HTTPROUTE = Route(LINKERD_HTTPROUTE, desired_httproute, gatewayapi.weights_of, gatewayapi.is_matched)
TRAFFICSPLIT = smi.ROUTE


def uses_httproute(release: Release) -> bool:
    """A/B testing needs header matches, which only the HTTPRoute has."""
    return bool(release.spec.analysis.match)


class LinkerdRouter:
    """Traffic split for Linkerd: a TrafficSplit, or an HTTPRoute for A/B testing."""

    def __init__(self, api: client.ApiClient, settings: Settings) -> None:
        objects = Objects(api, settings.api_timeout)
        self.objects = objects
        self.routes = {True: RouteIO(objects, HTTPROUTE), False: RouteIO(objects, TRAFFICSPLIT)}

    def _io(self, release: Release) -> RouteIO:
        return self.routes[uses_httproute(release)]

    def reconcile(self, release: Release) -> None:
        # The release switched between weights and A/B: drop the object it no longer uses (if ours).
        unused = self.routes[not uses_httproute(release)].route
        namespace, name = release.metadata.namespace, unused.name(release)
        try:
            live = self.objects.get(unused.kind, namespace, name)
        except RouterError:
            live = None  # that kind is not installed, so it holds nothing of ours
        if live is not None and owned_by(live, release):
            self.objects.delete(unused.kind, namespace, name)
        self._io(release).reconcile(release)

    def set_weight(self, release: Release, primary: int, canary: int, match: bool = False, *,
                   mirror: bool = False, cookie: str = "") -> None:
        refuse_extras("linkerd", Extras(mirror, cookie))
        self._io(release).set_weight(release, primary, canary, match)

    def verify_weight(self, release: Release) -> tuple[int, int] | None:
        return self._io(release).verify_weight(release)

    def finalize(self, release: Release) -> None:
        self._io(release).finalize(release)
