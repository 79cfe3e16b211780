"""The effects shared by routers that split traffic in a copy of the user's object: ingress-nginx's
and Skipper's canary Ingress, APISIX's canary ApisixRoute. The user's object (named by a spec ref)
serves the apex Service; the router keeps a copy of it, owned by the release, that carries the
weights; it reads them back from the copy and deletes the copy at the end. Each provider supplies the
pure parts (`Copy`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rollout.api.spec import ObjectRef, Release
from rollout.routers.base import Extras, RouterError, refuse_extras
from rollout.routers.objects import Kind, Obj, Objects, merged, names

# kubectl's record of the user's last apply: not copied, it describes the user's object, not the copy.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def ref_names(ref: ObjectRef | None, provider: str, field: str, kind: str, copy_name: Callable[[str], str]
              ) -> tuple[str, str]:
    """(the user's object, its canary copy) from the spec ref `field` (`ingressRef`, `routeRef`)."""
    if ref is None or not ref.name:
        raise RouterError(f"the {provider} provider needs spec.{field} (the {kind} that serves the apex Service)",
                          temporary=False)
    return ref.name, copy_name(ref.name)


def by_arms(weights_of: Callable[[Obj, str, str], tuple[int, int] | None]
            ) -> Callable[[Release, Obj], tuple[int, int] | None]:
    """A copy's weights read by the names of the arms' Services (`<apex>-primary`, `<apex>-canary`)."""
    def read(release: Release, live: Obj) -> tuple[int, int] | None:
        n = names(release)
        return weights_of(live, n.primary, n.canary)

    return read


def weight_only(provider: str, split: str) -> Callable[[bool, Extras], None]:
    """The refusals of a provider that splits by weight alone: no A/B match, mirror or session cookie."""
    def refuse(match: bool, extras: Extras) -> None:
        refuse_extras(provider, extras)
        if match:
            raise RouterError(f"{split} split by weight only; A/B testing (analysis.match) needs the istio, "
                              "gatewayapi, nginx or linkerd provider", temporary=False)

    return refuse


@dataclass(frozen=True)
class Copy:
    """One provider's canary copy: its kind, the ref naming the user's object, and its pure parts."""

    kind: Kind
    ref: str  # the spec field naming the user's object, e.g. `spec.ingressRef`
    names: Callable[[Release], tuple[str, str]]  # (the user's object, the copy)
    # The copy for a split, built from the user's object; `match` routes A/B-matched requests to the canary.
    desired: Callable[[Release, Obj, int, int, bool], Obj]
    # The copy the spec wants now, keeping what the live copy carries (its weights, and the like).
    kept: Callable[[Release, Obj, Obj], Obj]
    weights: Callable[[Release, Obj], tuple[int, int] | None]  # (primary, canary) the live copy carries
    refuse: Callable[[bool, Extras], None]  # raises for what the provider cannot route


class CopyIO:
    """Router operations over a canary copy of the user's object."""

    def __init__(self, objects: Objects, copy: Copy) -> None:
        self.objects = objects
        self.copy = copy

    def _source(self, release: Release) -> Obj:
        source, _ = self.copy.names(release)
        found = self.objects.get(self.copy.kind, release.metadata.namespace, source)
        if found is None:
            raise RouterError(f"{self.copy.kind.kind} {release.metadata.namespace}/{source} ({self.copy.ref}) "
                              "not found")
        return found

    def _name(self, release: Release) -> str:
        return self.copy.names(release)[1]

    def reconcile(self, release: Release) -> None:
        source = self._source(release)

        def build(live: Obj | None) -> Obj | None:
            if live is None:
                return self.copy.desired(release, source, 100, 0, False)
            return merged(live, self.copy.kept(release, source, live))

        self.objects.apply(self.copy.kind, release.metadata.namespace, self._name(release), build)

    def set_weight(self, release: Release, primary: int, canary: int, match: bool = False, *,
                   mirror: bool = False, cookie: str = "") -> None:
        self.copy.refuse(match, Extras(mirror, cookie))
        desired = self.copy.desired(release, self._source(release), primary, canary, match)
        self.objects.apply(self.copy.kind, release.metadata.namespace, self._name(release),
                           lambda live: desired if live is None else merged(live, desired))

    def verify_weight(self, release: Release) -> tuple[int, int] | None:
        live = self.objects.get(self.copy.kind, release.metadata.namespace, self._name(release))
        return None if live is None else self.copy.weights(release, live)

    def finalize(self, release: Release) -> None:
        self.objects.delete(self.copy.kind, release.metadata.namespace, self._name(release))
