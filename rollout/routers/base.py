"""The one interface every traffic provider implements, and the registry that picks one.

A router owns the objects that split traffic between `<target>-primary` and the canary (an
HTTPRoute, a VirtualService, a canary Ingress, a TrafficSplit, or a Service selector). It is told
weights, and it reads them back, because a route someone edited by hand must not be judged as if
it carried what the planner asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rollout.api.spec import Release


class RouterError(Exception):
    """A router could not do its work; `temporary` says whether a retry may help, `kind_missing`
    that the API does not serve the route's kind (its CRDs are not installed): no such object exists."""

    def __init__(self, message: str, *, temporary: bool = True, kind_missing: bool = False) -> None:
        super().__init__(message)
        self.temporary = temporary
        self.kind_missing = kind_missing


@dataclass(frozen=True)
class Extras:
    """What a weighted split may carry besides its weights: requests mirrored to the canary, and the
    run's session-affinity cookie (`name=value`) that pins users sent to the canary."""

    mirror: bool = False
    cookie: str = ""


PLAIN = Extras()


def refuse_extras(provider: str, extras: Extras) -> None:
    """For routers that cannot mirror or set cookies (validation refuses such specs first)."""
    if extras.mirror:
        raise RouterError(f"provider {provider} cannot mirror traffic (analysis.mirror)", temporary=False)
    if extras.cookie:
        raise RouterError(f"provider {provider} cannot pin sessions by cookie (analysis.sessionAffinity)",
                          temporary=False)


class Router(Protocol):
    """Traffic split between the primary and the canary of one release."""

    def reconcile(self, release: Release) -> None:
        """Create or update the router objects (owned by the release); a new object sends all
        traffic to the primary, an existing one keeps its weights."""

    def set_weight(self, release: Release, primary: int, canary: int, match: bool = False, *,
                   mirror: bool = False, cookie: str = "") -> None:
        """Route `canary` percent to the canary (`primary + canary == 100`); with `match`, requests
        matching `analysis.match` go to the canary whatever the weights; with `mirror`, a copy of
        each request goes to the canary too; `cookie` is the run's session-affinity cookie."""

    def verify_weight(self, release: Release) -> tuple[int, int] | None:
        """The (primary, canary) weights the live objects carry; None when they cannot be read."""

    def finalize(self, release: Release) -> None:
        """Send all traffic to the primary and remove what only the release needed."""
