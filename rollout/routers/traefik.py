"""Traefik router: a TraefikService `<svc>` (traefik.io/v1alpha1) whose weighted round robin sends
the apex's traffic to the Services `<svc>-primary` and `<svc>-canary`, as Flagger's traefik router
writes it. The user's IngressRoute names that TraefikService (`kind: TraefikService`) and is left alone.

Traefik's weighted service has no request matching, mirroring of this kind or cookie pinning that
Flagger drives, so A/B testing, `mirror` and `sessionAffinity` are refused (validation says so first).
As Flagger does, the canary's entry is written only while it takes traffic, and the TraefikService
carries the apex Service's metadata (`service.apex`). Unlike Flagger, a primary at 0 is written with
`weight: 0`: Traefik reads a missing weight as 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes import client

from rollout.api.spec import Release
from rollout.routers.base import PLAIN, Extras, RouterError, refuse_extras
from rollout.routers.objects import Kind, Obj, Objects, check_weights, metadata, names, weight_pair
from rollout.routers.route import Route, RouteIO
from rollout.settings import Settings

TRAEFIKSERVICE = Kind("traefik.io/v1alpha1", "TraefikService", "traefikservices")
# Traefik's weight when an entry of a weighted service has none.
DEFAULT_WEIGHT = 1


def desired_traefikservice(release: Release, primary: int, canary: int, match: bool = False,
                           extras: Extras = PLAIN) -> Obj:
    refuse_extras("traefik", extras)
    if match:
        raise RouterError("a TraefikService splits by weight only; A/B testing (analysis.match) needs the istio, "
                          "gatewayapi, nginx or linkerd provider", temporary=False)
    check_weights(primary, canary)
    n = names(release)
    port = release.spec.service.port
    services: list[Obj] = [{"name": n.primary, "namespace": n.namespace, "port": port, "weight": primary}]
    if canary > 0:
        services.append({"name": n.canary, "namespace": n.namespace, "port": port, "weight": canary})
    apex = release.spec.service.metadata_of("apex")
    meta = metadata(release, n.apex, labels=dict(apex.labels))
    if apex.annotations:
        meta["annotations"] = dict(apex.annotations)
    return {
        "apiVersion": TRAEFIKSERVICE.api_version,
        "kind": TRAEFIKSERVICE.kind,
        "metadata": meta,
        "spec": {"weighted": {"services": services}},
    }


def weights_of(service: Mapping[str, Any]) -> tuple[int, int] | None:
    """(primary, canary) as Traefik shares the weighted services; a canary without an entry takes
    nothing. None when the primary has no entry or another Service shares the traffic."""
    apex = str((service.get("metadata") or {}).get("name"))
    entries = (((service.get("spec") or {}).get("weighted") or {}).get("services")) or []
    weights = {str(e.get("name")): e.get("weight", DEFAULT_WEIGHT) for e in entries}
    if f"{apex}-primary" not in weights or set(weights) - {f"{apex}-primary", f"{apex}-canary"}:
        return None
    return weight_pair(weights[f"{apex}-primary"], weights.get(f"{apex}-canary", 0))


def is_matched(service: Mapping[str, Any]) -> bool:
    return False


ROUTE = Route(TRAEFIKSERVICE, desired_traefikservice, weights_of, is_matched)


class TraefikRouter(RouteIO):
    """Traffic split by a weighted TraefikService."""

    def __init__(self, api: client.ApiClient, settings: Settings) -> None:
        super().__init__(Objects(api, settings.api_timeout), ROUTE)
