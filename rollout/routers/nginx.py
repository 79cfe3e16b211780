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
from rollout.routers.base import Extras, RouterError, refuse_extras
from rollout.routers.objects import (
    INGRESS,
    Obj,
    Objects,
    check_weights,
    merged,
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
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def ingress_names(release: Release) -> tuple[str, str]:
    """(the user's Ingress, the canary Ingress)."""
    ref = release.spec.ingress_ref if isinstance(release.spec, CanarySpec) else None
    if ref is None or not ref.name:
        raise RouterError("the nginx provider needs spec.ingressRef (the Ingress that serves the apex Service)",
                          temporary=False)
    return ref.name, f"{ref.name}-canary"


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


class NginxRouter:
    """Traffic split by an ingress-nginx canary Ingress."""

    def __init__(self, api: client.ApiClient, settings: Settings) -> None:
        self.objects = Objects(api, settings.api_timeout)

    def _source(self, release: Release) -> Obj:
        source, _ = ingress_names(release)
        ingress = self.objects.get(INGRESS, release.metadata.namespace, source)
        if ingress is None:
            raise RouterError(f"Ingress {release.metadata.namespace}/{source} (spec.ingressRef) not found")
        return ingress

    def reconcile(self, release: Release) -> None:
        source = self._source(release)

        def build(live: Obj | None) -> Obj | None:
            if live is None:
                return desired_ingress(release, source, 100, 0)
            match = bool(release.spec.analysis.match) and is_matched(live)
            return merged(live, desired_ingress(release, source, *kept(weights_of(live)), match))

        self.objects.apply(INGRESS, release.metadata.namespace, ingress_names(release)[1], build)

    def set_weight(self, release: Release, primary: int, canary: int, match: bool = False, *,
                   mirror: bool = False, cookie: str = "") -> None:
        refuse_extras("nginx", Extras(mirror, cookie))
        desired = desired_ingress(release, self._source(release), primary, canary, match)
        self.objects.apply(INGRESS, release.metadata.namespace, ingress_names(release)[1],
                           lambda live: desired if live is None else merged(live, desired))

    def verify_weight(self, release: Release) -> tuple[int, int] | None:
        live = self.objects.get(INGRESS, release.metadata.namespace, ingress_names(release)[1])
        return None if live is None else weights_of(live)

    def finalize(self, release: Release) -> None:
        self.objects.delete(INGRESS, release.metadata.namespace, ingress_names(release)[1])
