"""NGINX Ingress router: a canary Ingress `<ingress>-canary`, cloned from the user's Ingress
(`spec.ingressRef`) with every backend that named the apex Service `<svc>` pointed at
`<svc>-canary`, and ingress-nginx's canary annotations carrying the weight.

As in Flagger, the user's Ingress is left alone: it keeps sending to the apex Service, which
selects the primary's pods; ingress-nginx then diverts `canary-weight` percent (or, for A/B
testing, the requests with the header or cookie from `analysis.match`) to the canary Ingress.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from kubernetes import client

from rollout.api.spec import CanarySpec, Release
from rollout.routers.base import RouterError, refuse_extras
from rollout.routers.copies import LAST_APPLIED, Copy, CopyIO, ref_names
from rollout.routers.objects import (
    INGRESS,
    Obj,
    Objects,
    check_weights,
    metadata,
    names,
)
from rollout.routers.route import kept
from rollout.settings import Settings

PREFIX = "nginx.ingress.kubernetes.io/"
CANARY = PREFIX + "canary"
WEIGHT = PREFIX + "canary-weight"
BY_HEADER = PREFIX + "canary-by-header"
BY_HEADER_VALUE = PREFIX + "canary-by-header-value"
BY_HEADER_PATTERN = PREFIX + "canary-by-header-pattern"
BY_COOKIE = PREFIX + "canary-by-cookie"


def ingress_names(release: Release) -> tuple[str, str]:
    """(the user's Ingress, the canary Ingress)."""
    ref = release.spec.ingress_ref if isinstance(release.spec, CanarySpec) else None
    return ref_names(ref, "nginx", "ingressRef", "Ingress", lambda name: f"{name}-canary")


def match_annotations(match: Any) -> dict[str, str]:
    """Flagger's `analysis.match` as ingress-nginx canary-by-* annotations: one header (exact value or
    regex) and one cookie (a header named `cookie` with the exact cookie name), nothing else."""
    out: dict[str, str] = {}
    for condition in match:
        if condition.get("sourceLabels") or condition.get("queryParams"):
            raise RouterError("ingress-nginx can route A/B only by a header or a cookie; "
                              "analysis.match has sourceLabels or queryParams", temporary=False)
        for name, cond in (condition.get("headers") or {}).items():
            if name.lower() == "cookie":
                if "exact" not in cond:
                    raise RouterError("ingress-nginx matches a cookie by name: use `cookie: {exact: <name>}`",
                                      temporary=False)
                _put(out, BY_COOKIE, str(cond["exact"]))
                continue
            _put(out, BY_HEADER, name)
            if "exact" in cond:
                _put(out, BY_HEADER_VALUE, str(cond["exact"]))
            elif "regex" in cond:
                _put(out, BY_HEADER_PATTERN, str(cond["regex"]))
            elif "prefix" in cond:
                _put(out, BY_HEADER_PATTERN, f"^{re.escape(str(cond['prefix']))}.*")
            elif "suffix" in cond:
                _put(out, BY_HEADER_PATTERN, f".*{re.escape(str(cond['suffix']))}$")
    if not out:
        raise RouterError("A/B routing was asked for but analysis.match has no header or cookie", temporary=False)
    return out


def _put(out: dict[str, str], key: str, value: str) -> None:
    if out.get(key, value) != value:
        raise RouterError(f"ingress-nginx routes A/B by one header and one cookie; analysis.match asks for "
                          f"both {out[key]!r} and {value!r} ({key.removeprefix(PREFIX)})", temporary=False)
    out[key] = value


def _point_at_canary(spec: Obj, apex: str, canary: str) -> bool:
    found = False
    backends = [spec.get("defaultBackend")]
    for rule in spec.get("rules") or []:
        backends += [path.get("backend") for path in (rule.get("http") or {}).get("paths") or []]
    for b in backends:
        service = (b or {}).get("service")
        if service and service.get("name") == apex:
            service["name"] = canary
            found = True
    return found


def desired_ingress(release: Release, ingress: Mapping[str, Any], primary: int, canary: int,
                    match: bool = False) -> Obj:
    """The canary Ingress for `ingress` (the user's) carrying these weights."""
    check_weights(primary, canary)
    source, name = ingress_names(release)
    n = names(release)
    spec = copy.deepcopy(dict(ingress.get("spec") or {}))
    if not _point_at_canary(spec, n.apex, n.canary):
        raise RouterError(f"Ingress {source} has no backend for the Service {n.apex}", temporary=False)
    meta = ingress.get("metadata") or {}
    annotations = {k: str(v) for k, v in (meta.get("annotations") or {}).items()
                   if not k.startswith(CANARY) and k != LAST_APPLIED}
    annotations[CANARY] = "true"
    annotations[WEIGHT] = str(canary)
    if match:
        annotations.update(match_annotations(release.spec.analysis.match))
    obj_meta = metadata(release, name, labels=meta.get("labels") or {})
    obj_meta["annotations"] = annotations
    return {"apiVersion": INGRESS.api_version, "kind": INGRESS.kind, "metadata": obj_meta, "spec": spec}


def weights_of(ingress: Mapping[str, Any]) -> tuple[int, int] | None:
    """(primary, canary) by the canary Ingress's annotations; a disabled canary takes nothing."""
    annotations = (ingress.get("metadata") or {}).get("annotations") or {}
    if annotations.get(CANARY) != "true":
        return (100, 0)
    raw = str(annotations.get(WEIGHT, "0")).strip()
    if not raw.isdigit() or int(raw) > 100:
        return None
    return (100 - int(raw), int(raw))


def is_matched(ingress: Mapping[str, Any]) -> bool:
    annotations = (ingress.get("metadata") or {}).get("annotations") or {}
    return annotations.get(CANARY) == "true" and (BY_HEADER in annotations or BY_COOKIE in annotations)


def _kept(release: Release, source: Obj, live: Obj) -> Obj:
    """The weights the live canary Ingress carries, and its A/B routing while the spec still asks for it."""
    match = bool(release.spec.analysis.match) and is_matched(live)
    return desired_ingress(release, source, *kept(weights_of(live)), match)


COPY = Copy(INGRESS, "spec.ingressRef", ingress_names, desired_ingress, _kept,
            lambda release, live: weights_of(live), lambda match, extras: refuse_extras("nginx", extras))


class NginxRouter(CopyIO):
    """Traffic split by an ingress-nginx canary Ingress."""

    def __init__(self, api: client.ApiClient, settings: Settings) -> None:
        super().__init__(Objects(api, settings.api_timeout), COPY)
