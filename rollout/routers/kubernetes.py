"""Kubernetes router: blue/green by the apex Service's selector, with no mesh or gateway.

The apex Service `<svc>` selects what `<svc>-primary` selects (all traffic to the primary, e.g.
`app: <target>-primary`) or what `<svc>-canary` selects (all traffic to the new version, e.g.
`app: <target>`). Taking the selectors from those two Services, which the workloads module makes,
keeps this router right whatever label the target's pods are selected by. A Service cannot split
traffic, so any other weight is refused: weighted canaries need a mesh or gateway provider. The
Services belong to the workloads module; this router only switches the apex's selector.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from rollout.api.spec import Release
from rollout.routers.base import Extras, RouterError, refuse_extras
from rollout.routers.objects import SERVICE, Obj, Objects, check_weights, names
from rollout.settings import Settings


@dataclass(frozen=True)
class Sides:
    """The selectors of `<svc>-primary` and `<svc>-canary`: the two things the apex can select."""

    primary: dict[str, str]
    canary: dict[str, str]


def selector_of(service: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in ((service.get("spec") or {}).get("selector") or {}).items()}


def desired_selector(sides: Sides, primary: int, canary: int, match: bool = False) -> dict[str, str]:
    """The apex Service's selector for these weights (only 100/0 and 0/100 exist)."""
    check_weights(primary, canary)
    if match:
        raise RouterError("the kubernetes provider cannot route by header or cookie; A/B testing "
                          "(analysis.match) needs the istio, gatewayapi, nginx or linkerd provider", temporary=False)
    if canary not in (0, 100):
        raise RouterError(f"the kubernetes provider switches all traffic at once (weights 100/0 or 0/100), "
                          f"not {primary}/{canary}: use a mesh or gateway provider (gatewayapi, istio, nginx, "
                          f"smi, linkerd) for weighted canaries", temporary=False)
    return dict(sides.canary if canary == 100 else sides.primary)


def desired_service(release: Release, apex: Mapping[str, Any], sides: Sides, primary: int, canary: int,
                    match: bool = False) -> Obj | None:
    """`apex` (the live Service) selecting the side these weights name; None if it already does."""
    selector = desired_selector(sides, primary, canary, match)
    if selector_of(apex) == selector:
        return None
    return {**apex, "spec": {**(apex.get("spec") or {}), "selector": selector}}


def weights_of(apex: Mapping[str, Any], sides: Sides) -> tuple[int, int] | None:
    """(100, 0) when the apex selects the primary's pods, (0, 100) the canary's, None otherwise."""
    selector = selector_of(apex)
    if selector and selector == sides.primary:
        return (100, 0)
    if selector and selector == sides.canary:
        return (0, 100)
    return None


class KubernetesRouter:
    """Blue/green by switching the apex Service's selector."""

    def __init__(self, api: client.ApiClient, settings: Settings) -> None:
        self.objects = Objects(api, settings.api_timeout)

    def _sides(self, release: Release) -> Sides | None:
        n = names(release)
        primary = self.objects.get(SERVICE, n.namespace, n.primary)
        canary = self.objects.get(SERVICE, n.namespace, n.canary)
        if primary is None or canary is None or not selector_of(primary) or not selector_of(canary):
            return None
        return Sides(selector_of(primary), selector_of(canary))

    def _switch(self, release: Release, primary: int, canary: int, *, only_unknown: bool = False,
                required: bool = True) -> None:
        n = names(release)
        sides = self._sides(release)
        if sides is None:
            if not required:
                return
            raise RouterError(f"Services {n.namespace}/{n.primary} and {n.canary} with selectors are needed "
                              "(the workloads create them)")
        desired_selector(sides, primary, canary)  # refuse impossible weights before any write

        def build(live: Obj | None) -> Obj | None:
            if live is None:
                raise RouterError(f"Service {n.namespace}/{n.apex} not found (the workloads create it)")
            if only_unknown and weights_of(live, sides) is not None:
                return None
            return desired_service(release, live, sides, primary, canary)

        self.objects.apply(SERVICE, n.namespace, n.apex, build, create=required)

    def reconcile(self, release: Release) -> None:
        # An apex already on one side keeps it; one selecting anything else goes to the primary.
        self._switch(release, 100, 0, only_unknown=True)

    def set_weight(self, release: Release, primary: int, canary: int, match: bool = False, *,
                   mirror: bool = False, cookie: str = "") -> None:
        refuse_extras("kubernetes", Extras(mirror, cookie))
        desired_selector(Sides({}, {}), primary, canary, match)
        self._switch(release, primary, canary)

    def verify_weight(self, release: Release) -> tuple[int, int] | None:
        n = names(release)
        sides = self._sides(release)
        live = self.objects.get(SERVICE, n.namespace, n.apex) if sides else None
        return None if live is None or sides is None else weights_of(live, sides)

    def finalize(self, release: Release) -> None:
        self._switch(release, 100, 0, required=False)
