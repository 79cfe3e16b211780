"""Skipper router: a canary Ingress `<ingress>-canary`, cloned from the user's Ingress (`spec.ingressRef`)
as Flagger's skipper router builds it: every path whose backend is the apex Service `<svc>` points at
`<svc>-primary` and gains a twin pointing at `<svc>-canary`, and Skipper's annotations carry the split:
`zalando.org/backend-weights` (a JSON object, Service -> weight) and `zalando.org/skipper-predicate`
with `Weight(100)` first, so Skipper prefers these routes to the user's Ingress for the same paths.

Setting the canary to 0 puts `False()` first instead: the canary Ingress's routes then match nothing
and the user's Ingress serves again through the apex Service (which selects the primary's pods). The
user's Ingress is never changed. Flagger's skipper router does no A/B testing, mirroring or session
affinity; they are refused.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from kubernetes import client

from rollout.api.spec import CanarySpec, Release
from rollout.routers.base import RouterError
from rollout.routers.copies import LAST_APPLIED, Copy, CopyIO, by_arms, ref_names, weight_only
from rollout.routers.objects import INGRESS, Obj, Objects, check_weights, metadata, names
from rollout.routers.route import kept
from rollout.settings import Settings

BACKEND_WEIGHTS = "zalando.org/backend-weights"
PREDICATE = "zalando.org/skipper-predicate"
ENABLED = "Weight(100)"  # outranks the user's Ingress routes for the same host and path
DISABLED = "False()"  # matches no request


def ingress_names(release: Release) -> tuple[str, str]:
    """(the user's Ingress, the canary Ingress)."""
    ref = release.spec.ingress_ref if isinstance(release.spec, CanarySpec) else None
    return ref_names(ref, "skipper", "ingressRef", "Ingress", lambda name: f"{name}-canary")


def insert_predicate(raw: str, first: str) -> str:
    """`first` ahead of the other predicates of `raw` (Flagger's insertPredicate: a previous
    Weight(100) or False() is dropped, so exactly one of them leads)."""
    rest = [p.strip() for p in raw.split("&&") if p.strip() and p.strip() not in (ENABLED, DISABLED)]
    return " && ".join([first, *rest])


def backend_weights(primary_service: str, primary: int, canary_service: str, canary: int) -> str:
    """The annotation as Go's encoding/json writes Flagger's map: keys sorted, no spaces."""
    return json.dumps({primary_service: primary, canary_service: canary}, sort_keys=True, separators=(",", ":"))


def _split_paths(spec: Obj, apex: str, primary: str, canary: str) -> bool:
    found = False
    for rule in spec.get("rules") or []:
        paths = (rule.get("http") or {}).get("paths") or []
        for path in list(paths):
            service = (path.get("backend") or {}).get("service")
            if service and service.get("name") == apex:
                service["name"] = primary
                twin = copy.deepcopy(path)
                twin["backend"]["service"]["name"] = canary
                paths.append(twin)
                found = True
    return found


def desired_ingress(release: Release, ingress: Mapping[str, Any], primary: int, canary: int, *,
                    enabled: bool = True) -> Obj:
    """The canary Ingress for `ingress` (the user's) carrying these weights; `enabled=False` (Flagger's
    state after the canary is set to 0) leads the predicate with False()."""
    check_weights(primary, canary)
    source, name = ingress_names(release)
    n = names(release)
    spec = copy.deepcopy(dict(ingress.get("spec") or {}))
    if not _split_paths(spec, n.apex, n.primary, n.canary):
        raise RouterError(f"Ingress {source} has no path with a backend for the Service {n.apex}", temporary=False)
    meta = ingress.get("metadata") or {}
    annotations = {k: str(v) for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    annotations[BACKEND_WEIGHTS] = backend_weights(n.primary, primary, n.canary, canary)
    annotations[PREDICATE] = insert_predicate(annotations.get(PREDICATE, ""), ENABLED if enabled else DISABLED)
    obj_meta = metadata(release, name, labels=meta.get("labels") or {})
    obj_meta["annotations"] = annotations
    return {"apiVersion": INGRESS.api_version, "kind": INGRESS.kind, "metadata": obj_meta, "spec": spec}


def is_enabled(ingress: Mapping[str, Any]) -> bool:
    predicates = str(((ingress.get("metadata") or {}).get("annotations") or {}).get(PREDICATE, ""))
    return DISABLED not in [p.strip() for p in predicates.split("&&")]


def weights_of(ingress: Mapping[str, Any], primary: str, canary: str) -> tuple[int, int] | None:
    """(primary, canary) by the backend-weights annotation; a disabled canary Ingress routes nothing, so
    the primary takes all. None when the annotation is missing or unreadable."""
    if not is_enabled(ingress):
        return (100, 0)
    raw = ((ingress.get("metadata") or {}).get("annotations") or {}).get(BACKEND_WEIGHTS)
    try:
        weights = json.loads(str(raw)) if raw is not None else None
    except ValueError:
        return None
    if not isinstance(weights, dict) or set(weights) != {primary, canary}:
        return None
    p, c = weights[primary], weights[canary]
    if not all(isinstance(w, int) and not isinstance(w, bool) for w in (p, c)):
        return None
    return (p, c)


_weights = by_arms(weights_of)


COPY = Copy(
    INGRESS, "spec.ingressRef", ingress_names,
    # At 0 the canary Ingress is switched off (False()), as Flagger leaves it.
    lambda release, source, primary, canary, match: desired_ingress(release, source, primary, canary,
                                                                    enabled=canary > 0),
    lambda release, source, live: desired_ingress(release, source, *kept(_weights(release, live)),
                                                  enabled=is_enabled(live)),
    _weights, weight_only("skipper", "Skipper's backend weights"))


class SkipperRouter(CopyIO):
    """Traffic split by a Skipper canary Ingress with backend weights."""

    def __init__(self, api: client.ApiClient, settings: Settings) -> None:
        super().__init__(Objects(api, settings.api_timeout), COPY)
