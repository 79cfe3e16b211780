"""The effects shared by routers that keep the whole split in one object (HTTPRoute, VirtualService,
TrafficSplit): create it owned by the release, rewrite its weights, read them back, park it on the
primary. Each provider supplies only its pure builder and reader.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rollout.api.spec import Release
from rollout.routers.base import PLAIN, Extras
from rollout.routers.objects import Kind, Obj, Objects, check_weights, merged, names

Builder = Callable[[Release, int, int, bool, Extras], Obj]
Reader = Callable[[Obj], tuple[int, int] | None]


def no_extras(_: Obj) -> Extras:
    return PLAIN


@dataclass(frozen=True)
class Route:
    """One provider's split object: its kind, how to build it, how to read its weights back."""

    kind: Kind
    desired: Builder
    weights_of: Reader
    matched: Callable[[Obj], bool]  # does the live object route A/B-matched requests to the canary?
    extras_of: Callable[[Obj], Extras] = no_extras  # the mirror and cookie the live object carries

    def name(self, release: Release) -> str:
        return names(release).apex


def kept(weights: tuple[int, int] | None) -> tuple[int, int]:
    """Weights a live object carries, when they are a valid split; otherwise all to the primary."""
    if weights is None:
        return (100, 0)
    p, c = weights
    return weights if 0 <= p <= 100 and 0 <= c <= 100 and p + c == 100 else (100, 0)


class RouteIO:
    """Router operations over one split object."""

    def __init__(self, objects: Objects, route: Route) -> None:
        self.objects = objects
        self.route = route

    def reconcile(self, release: Release) -> None:
        route = self.route

        def build(live: Obj | None) -> Obj | None:
            if live is None:
                return route.desired(release, 100, 0, False, PLAIN)
            match = bool(release.spec.analysis.match) and route.matched(live)
            # what the planner set (weights, mirror, cookie) stays: only the rest follows the spec
            return merged(live, route.desired(release, *kept(route.weights_of(live)), match, route.extras_of(live)))

        self.objects.apply(route.kind, release.metadata.namespace, route.name(release), build)

    def set_weight(self, release: Release, primary: int, canary: int, match: bool = False, *,
                   mirror: bool = False, cookie: str = "") -> None:
        check_weights(primary, canary)
        desired = self.route.desired(release, primary, canary, match, Extras(mirror, cookie))
        self.objects.apply(
            self.route.kind,
            release.metadata.namespace,
            self.route.name(release),
            lambda live: desired if live is None else merged(live, desired),
        )

    def verify_weight(self, release: Release) -> tuple[int, int] | None:
        live = self.objects.get(self.route.kind, release.metadata.namespace, self.route.name(release))
        return None if live is None else self.route.weights_of(live)

    def finalize(self, release: Release) -> None:
        desired = self.route.desired(release, 100, 0, False, PLAIN)
        self.objects.apply(
            self.route.kind,
            release.metadata.namespace,
            self.route.name(release),
            lambda live: None if live is None else merged(live, desired),
            create=False,
        )
