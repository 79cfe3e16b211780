"""SMI router: a TrafficSplit `<svc>` (split.smi-spec.io/v1alpha2) that sends the apex Service's
traffic to `<svc>-primary` and `<svc>-canary` by weight. SMI has no request matching, so A/B
testing is refused (use istio, gatewayapi, nginx or linkerd for that).
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

TRAFFICSPLIT = Kind("split.smi-spec.io/v1alpha2", "TrafficSplit", "trafficsplits")


def desired_trafficsplit(release: Release, primary: int, canary: int, match: bool = False,
                         extras: Extras = PLAIN) -> Obj:
    refuse_extras("smi", extras)
    if match:
        raise RouterError("SMI TrafficSplit cannot route by header or cookie; A/B testing (analysis.match) "
                          "needs the istio, gatewayapi, nginx or linkerd provider", temporary=False)
    check_weights(primary, canary)
    n = names(release)
    return {
        "apiVersion": TRAFFICSPLIT.api_version,
        "kind": TRAFFICSPLIT.kind,
        "metadata": metadata(release, n.apex),
        "spec": {
            "service": n.apex,
            "backends": [{"service": n.primary, "weight": primary}, {"service": n.canary, "weight": canary}],
        },
    }


def weights_of(split: Mapping[str, Any]) -> tuple[int, int] | None:
    spec = split.get("spec") or {}
    apex = str(spec.get("service") or (split.get("metadata") or {}).get("name"))
    weights = {str(b.get("service")): b.get("weight") for b in spec.get("backends") or []}
    if f"{apex}-primary" not in weights or f"{apex}-canary" not in weights:
        return None
    return weight_pair(weights[f"{apex}-primary"], weights[f"{apex}-canary"])


def is_matched(split: Mapping[str, Any]) -> bool:
    return False


ROUTE = Route(TRAFFICSPLIT, desired_trafficsplit, weights_of, is_matched)


class SMIRouter(RouteIO):
    """Traffic split by an SMI TrafficSplit."""

    def __init__(self, api: client.ApiClient, settings: Settings) -> None:
        super().__init__(Objects(api, settings.api_timeout), ROUTE)
