"""APISIX router: a canary ApisixRoute `<route>-<svc>-canary` (apisix.apache.org/v2), cloned from the
user's ApisixRoute (`spec.routeRef`) as Flagger's apisix router does: of the user's http rules it keeps
the one whose backend is the apex Service `<svc>`, raises it to priority 10000 so APISIX prefers it to
the user's route (same hosts and paths), and gives it two weighted backends, `<svc>-primary` and
`<svc>-canary`, the canary copying the primary's port, resolve granularity and subset.

The user's ApisixRoute is left alone; once the release is removed, the canary route goes and the
user's route sends to the apex Service again, which selects the primary's pods. APISIX backends have
weights only, so A/B testing, mirroring and session affinity are refused, as Flagger's router has none.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from kubernetes import client

from rollout.api.spec import CanarySpec, Release
from rollout.routers.base import RouterError
from rollout.routers.copies import LAST_APPLIED, Copy, CopyIO, by_arms, ref_names, weight_only
from rollout.routers.objects import Kind, Obj, Objects, check_weights, metadata, names, weight_pair
from rollout.routers.route import kept
from rollout.settings import Settings

APISIXROUTE = Kind("apisix.apache.org/v2", "ApisixRoute", "apisixroutes")
MAX_PRIORITY = 10000  # Flagger's: the canary rule outranks the user's


def route_names(release: Release) -> tuple[str, str]:
    """(the user's ApisixRoute, the canary ApisixRoute `<route>-<apex>-canary`)."""
    ref = release.spec.route_ref if isinstance(release.spec, CanarySpec) else None
    return ref_names(ref, "apisix", "routeRef", "ApisixRoute", lambda name: f"{name}-{names(release).apex}-canary")


def _weighted_rule(route: Mapping[str, Any], service: str) -> Obj | None:
    """The first http rule with a backend naming `service`."""
    for rule in (route.get("spec") or {}).get("http") or []:
        if any(b.get("serviceName") == service for b in rule.get("backends") or []):
            return dict(rule)
    return None


def desired_apisixroute(release: Release, source: Mapping[str, Any], primary: int, canary: int) -> Obj:
    """The canary ApisixRoute for `source` (the user's) carrying these weights."""
    check_weights(primary, canary)
    user, name = route_names(release)
    n = names(release)
    if not (source.get("spec") or {}).get("http"):
        raise RouterError(f"ApisixRoute {user} has no http rules (spec.http is empty)", temporary=False)
    rule = _weighted_rule(source, n.apex)
    if rule is None:
        raise RouterError(f"ApisixRoute {user} has no http backend for the Service {n.apex}", temporary=False)
    rule = copy.deepcopy(rule)
    if len(rule.get("backends") or []) != 1:
        raise RouterError(f"ApisixRoute {user}'s http rule {rule.get('name')!r} has several backends; the apisix "
                          "provider splits a rule with one backend (the apex Service)", temporary=False)
    [backend] = rule["backends"]
    rule["priority"] = MAX_PRIORITY
    canary_backend: Obj = {"serviceName": n.canary, "servicePort": backend.get("servicePort")}
    for key in ("resolveGranularity", "subset"):
        if backend.get(key):
            canary_backend[key] = backend[key]
    rule["backends"] = [{**backend, "serviceName": n.primary, "weight": primary}, {**canary_backend, "weight": canary}]
    meta = source.get("metadata") or {}
    obj_meta = metadata(release, name, labels=meta.get("labels") or {})
    annotations = {k: str(v) for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    if annotations:
        obj_meta["annotations"] = annotations
    return {"apiVersion": APISIXROUTE.api_version, "kind": APISIXROUTE.kind, "metadata": obj_meta,
            "spec": {"http": [rule]}}


def weights_of(route: Mapping[str, Any], primary: str, canary: str) -> tuple[int, int] | None:
    """(primary, canary) of the rule whose backends are `primary` and `canary`; APISIX gives a backend
    without a weight 100."""
    rule = _weighted_rule(route, primary)
    if rule is None:
        return None
    weights = {str(b.get("serviceName")): b.get("weight", 100) for b in rule.get("backends") or []}
    if set(weights) != {primary, canary}:
        return None
    return weight_pair(weights[primary], weights[canary])


_weights = by_arms(weights_of)


COPY = Copy(
    APISIXROUTE, "spec.routeRef", route_names,
    lambda release, source, primary, canary, match: desired_apisixroute(release, source, primary, canary),
    lambda release, source, live: desired_apisixroute(release, source, *kept(_weights(release, live))),
    _weights, weight_only("apisix", "APISIX backends"))


class ApisixRouter(CopyIO):
    """Traffic split by a canary ApisixRoute with weighted backends."""

    def __init__(self, api: client.ApiClient, settings: Settings) -> None:
        super().__init__(Objects(api, settings.api_timeout), COPY)
