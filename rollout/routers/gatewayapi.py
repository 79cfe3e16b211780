"""Gateway API router: an HTTPRoute `<svc>` (gateway.networking.k8s.io/v1) that splits traffic
between the Services `<svc>-primary` and `<svc>-canary` by backend weights.

For A/B testing, a first rule carries `analysis.match` (Flagger's Istio-style header and query
matches, translated) and sends only the canary; the default rule after it carries the weights.
Flagger's `gatewayapi:v1beta1` means the same router; the object is written as v1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes import client

from rollout.api.spec import Release
from rollout.routers.base import RouterError
from rollout.routers.objects import Kind, Obj, Objects, check_weights, metadata, names, weight_pair
from rollout.routers.route import Route, RouteIO
from rollout.settings import Settings

HTTPROUTE = Kind("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes")
GATEWAY = Kind("gateway.networking.k8s.io/v1", "Gateway", "gateways")
ROOT = {"path": {"type": "PathPrefix", "value": "/"}}
# What a cookie named in an nginx-style match must be set to, as nginx's canary-by-cookie reads it.
NGINX_COOKIE_VALUE = "always"


def _re2_escape(text: str) -> str:
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", text)


def cookie_pattern(value: str) -> str:
    """A RegularExpression on the Cookie header for an exact cookie match: `name=value` as given,
    or a bare cookie name meaning `name=always` (nginx's canary-by-cookie)."""
    pair = value if "=" in value else f"{value}={NGINX_COOKIE_VALUE}"
    return f"^(.*?;\\s*)?{_re2_escape(pair)}(;.*)?$"


def header_match(name: str, condition: Mapping[str, Any]) -> Obj:
    """One Flagger header condition ({exact|regex|prefix|suffix: value}) as an HTTPHeaderMatch."""
    if name.lower() == "cookie":
        if "regex" in condition:
            return {"name": "Cookie", "type": "RegularExpression", "value": str(condition["regex"])}
        if "exact" in condition:
            return {"name": "Cookie", "type": "RegularExpression", "value": cookie_pattern(str(condition["exact"]))}
    elif "exact" in condition:
        return {"name": name, "type": "Exact", "value": str(condition["exact"])}
    elif "regex" in condition:
        return {"name": name, "type": "RegularExpression", "value": str(condition["regex"])}
    if "prefix" in condition:
        return {"name": name, "type": "RegularExpression", "value": f"^{_re2_escape(str(condition['prefix']))}.*"}
    if "suffix" in condition:
        return {"name": name, "type": "RegularExpression", "value": f".*{_re2_escape(str(condition['suffix']))}$"}
    raise RouterError(f"match on header {name!r}: need exact, regex, prefix or suffix, got {dict(condition)}",
                      temporary=False)


def query_match(name: str, condition: Mapping[str, Any]) -> Obj:
    if "exact" in condition:
        return {"name": name, "type": "Exact", "value": str(condition["exact"])}
    if "regex" in condition:
        return {"name": name, "type": "RegularExpression", "value": str(condition["regex"])}
    if "prefix" in condition:
        return {"name": name, "type": "RegularExpression", "value": f"^{_re2_escape(str(condition['prefix']))}.*"}
    raise RouterError(f"match on query parameter {name!r}: need exact, regex or prefix, got {dict(condition)}",
                      temporary=False)


def route_matches(match: Sequence[Mapping[str, Any]]) -> list[Obj]:
    """Flagger's `analysis.match` as HTTPRouteMatches (any of them routes to the canary)."""
    out: list[Obj] = []
    for condition in match:
        if condition.get("sourceLabels"):
            raise RouterError("analysis.match: sourceLabels cannot be expressed as an HTTPRoute match "
                              "(it needs a mesh that knows the caller, such as istio)", temporary=False)
        m: Obj = dict(ROOT)
        headers = [header_match(k, v) for k, v in sorted((condition.get("headers") or {}).items())]
        params = [query_match(k, v) for k, v in sorted((condition.get("queryParams") or {}).items())]
        if headers:
            m["headers"] = headers
        if params:
            m["queryParams"] = params
        if headers or params:
            out.append(m)
    return out


def backend(name: str, port: int, weight: int) -> Obj:
    return {"group": "", "kind": "Service", "name": name, "port": port, "weight": weight}


def route_rules(release: Release, primary: int, canary: int, match: bool) -> list[Obj]:
    """The rules of a split: an A/B rule to the canary first (with `match`), then the weighted rule."""
    check_weights(primary, canary)
    n, port = names(release), release.spec.service.port
    weighted = {"matches": [dict(ROOT)], "backendRefs": [backend(n.primary, port, primary),
                                                        backend(n.canary, port, canary)]}
    if not match:
        return [weighted]
    matches = route_matches(release.spec.analysis.match)
    if not matches:
        raise RouterError("A/B routing was asked for but analysis.match has no header or query condition",
                          temporary=False)
    return [{"matches": matches, "backendRefs": [backend(n.canary, port, 100)]}, weighted]


def desired_httproute(release: Release, primary: int, canary: int, match: bool = False) -> Obj:
    service = release.spec.service
    if not service.gateway_refs:
        raise RouterError("the gatewayapi provider needs spec.service.gatewayRefs (the Gateways to attach to)",
                          temporary=False)
    spec: Obj = {"parentRefs": [dict(ref) for ref in service.gateway_refs]}
    if service.hosts:
        spec["hostnames"] = list(service.hosts)
    spec["rules"] = route_rules(release, primary, canary, match)
    return {"apiVersion": HTTPROUTE.api_version, "kind": HTTPROUTE.kind,
            "metadata": metadata(release, names(release).apex), "spec": spec}


def _backend_names(rule: Mapping[str, Any]) -> list[str]:
    return [str(b.get("name")) for b in rule.get("backendRefs") or []]


def weights_of(route: Mapping[str, Any]) -> tuple[int, int] | None:
    """(primary, canary) of the weighted rule (the last rule naming both backends), if any."""
    apex = str((route.get("metadata") or {}).get("name"))
    primary, canary = f"{apex}-primary", f"{apex}-canary"
    for rule in reversed((route.get("spec") or {}).get("rules") or []):
        weights = {str(b.get("name")): b.get("weight", 1) for b in rule.get("backendRefs") or []}
        if primary in weights and canary in weights:
            return weight_pair(weights[primary], weights[canary])
    return None


def is_matched(route: Mapping[str, Any]) -> bool:
    """Whether a rule sends matched requests to the canary alone (A/B testing is on)."""
    apex = str((route.get("metadata") or {}).get("name"))
    rules = (route.get("spec") or {}).get("rules") or []
    return any(_backend_names(rule) == [f"{apex}-canary"] and rule.get("matches") for rule in rules)


ROUTE = Route(HTTPROUTE, desired_httproute, weights_of, is_matched)


class GatewayAPIRouter(RouteIO):
    """Traffic split by a Gateway API HTTPRoute."""

    def __init__(self, api: client.ApiClient, settings: Settings) -> None:
        super().__init__(Objects(api, settings.api_timeout), ROUTE)

    def reconcile(self, release: Release) -> None:
        # A route whose Gateway is missing is accepted by the API and carries no traffic: say so.
        for i, ref in enumerate(release.spec.service.gateway_refs):
            if ref.get("kind", "Gateway") != "Gateway" or ref.get("group", GATEWAY.group) != GATEWAY.group:
                continue  # a parent of another kind (a mesh Service) is not ours to check
            namespace = str(ref.get("namespace") or release.metadata.namespace)
            if self.objects.get(GATEWAY, namespace, str(ref["name"])) is None:
                raise RouterError(f"Gateway {namespace}/{ref['name']} (spec.service.gatewayRefs[{i}]) not found")
        super().reconcile(release)
