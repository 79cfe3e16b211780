"""Gateway API router: an HTTPRoute `<svc>` (gateway.networking.k8s.io/v1) that splits traffic
between the Services `<svc>-primary` and `<svc>-canary` by backend weights.

For A/B testing, a first rule carries `analysis.match` (Flagger's Istio-style header and query
matches, translated) and sends only the canary; the default rule after it carries the weights.
Flagger's `gatewayapi:v1beta1` means the same router; the object is written as v1. As Flagger's
router does, every rule carries the service's route options (`service.match` as matches; header
modifiers, URL rewrite, request mirrors and CORS as filters; `timeout`/`backendTimeout` as
timeouts); a mirrored split adds a RequestMirror filter to the canary, and session affinity puts
cookie rules ahead of the weighted one (`affinity_rules`).
"""

from __future__ import annotations

import contextlib
import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes import client

from rollout.api.durations import parse_duration
from rollout.api.spec import Release
from rollout.routers import istio
from rollout.routers.base import PLAIN, Extras, RouterError
from rollout.routers.objects import Kind, Obj, Objects, check_weights, metadata, names, weight_pair
from rollout.routers.route import Route, RouteIO
from rollout.settings import Settings

HTTPROUTE = Kind("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes")
GATEWAY = Kind("gateway.networking.k8s.io/v1", "Gateway", "gateways")
ROOT = {"path": {"type": "PathPrefix", "value": "/"}}
# What a cookie named in an nginx-style match must be set to, as nginx's canary-by-cookie reads it.
NGINX_COOKIE_VALUE = "always"
COOKIE, SET_COOKIE = istio.COOKIE, istio.SET_COOKIE


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


def service_matches(release: Release) -> list[Obj]:
    """`service.match` (Istio's HTTPMatchRequest) as HTTPRouteMatches (Flagger's mapRouteMatches);
    the root path prefix when there is none."""
    out: list[Obj] = []
    for condition in release.spec.service.extra.get("match") or []:
        m: Obj = {}
        uri = condition.get("uri") or {}
        for key, kind in (("regex", "RegularExpression"), ("exact", "Exact"), ("prefix", "PathPrefix")):
            if uri.get(key):
                m["path"] = {"type": kind, "value": str(uri[key])}
                break
        method = condition.get("method") or {}
        if method.get("exact"):
            m["method"] = str(method["exact"])
        headers = [header_match(k, v) for k, v in sorted((condition.get("headers") or {}).items())]
        params = [query_match(k, v) for k, v in sorted((condition.get("queryParams") or {}).items())]
        if headers:
            m["headers"] = headers
        if params:
            m["queryParams"] = params
        if m:
            out.append(m)
    return out or [dict(ROOT)]


def merge_matches(analysis: list[Obj], service: list[Obj]) -> list[Obj]:
    """Each analysis match within each service match (Flagger's mergeMatchConditions)."""
    if not analysis:
        return service
    merged: list[Obj] = []
    for a in analysis:
        for s in service:
            m = copy.deepcopy(s)
            for key in ("headers", "queryParams"):
                if a.get(key):
                    m[key] = a[key]
            merged.append(m)
    return merged


def _header_filter(ops: Mapping[str, Any]) -> Obj:
    out: Obj = {}
    for key in ("add", "set"):
        pairs = sorted((str(k), str(v)) for k, v in (ops.get(key) or {}).items())
        if pairs:
            out[key] = [{"name": k, "value": v} for k, v in pairs]
    if ops.get("remove"):
        out["remove"] = [str(h) for h in ops["remove"]]
    return out


def _cors(policy: Mapping[str, Any]) -> Obj:
    """Istio's CorsPolicy as a Gateway API CORS filter (Flagger's toV1CORSFilter)."""
    cors: Obj = {}
    for source, target in (("allowOrigin", "allowOrigins"), ("allowMethods", "allowMethods"),
                           ("allowHeaders", "allowHeaders"), ("exposeHeaders", "exposeHeaders")):
        if policy.get(source):
            cors[target] = [str(v) for v in policy[source]]
    if policy.get("allowCredentials"):
        cors["allowCredentials"] = True
    if policy.get("maxAge"):
        with contextlib.suppress(ValueError):
            cors["maxAge"] = int(parse_duration(str(policy["maxAge"])))
    return cors


def filters(release: Release) -> list[Obj]:
    """The rule filters Flagger's makeFilters writes from the service: header modifiers, the URL
    rewrite, the service's own request mirrors, CORS."""
    extra = release.spec.service.extra
    out: list[Obj] = []
    headers = extra.get("headers") or {}
    if headers.get("request") is not None:
        out.append({"type": "RequestHeaderModifier", "requestHeaderModifier": _header_filter(headers["request"])})
    if headers.get("response") is not None:
        out.append({"type": "ResponseHeaderModifier", "responseHeaderModifier": _header_filter(headers["response"])})
    rewrite = extra.get("rewrite")
    if isinstance(rewrite, Mapping):
        url: Obj = {}
        if rewrite.get("authority"):
            url["hostname"] = str(rewrite["authority"])
        if rewrite.get("uri"):
            kind = "ReplacePrefixMatch" if rewrite.get("type") == "ReplacePrefixMatch" else "ReplaceFullPath"
            field = "replacePrefixMatch" if kind == "ReplacePrefixMatch" else "replaceFullPath"
            url["path"] = {"type": kind, field: str(rewrite["uri"])}
        out.append({"type": "URLRewrite", "urlRewrite": url})
    for mirror in extra.get("mirror") or []:
        out.append({"type": "RequestMirror", "requestMirror": copy.deepcopy(dict(mirror))})
    if isinstance(extra.get("corsPolicy"), Mapping):
        out.append({"type": "CORS", "cors": _cors(extra["corsPolicy"])})
    return out


def timeouts(release: Release) -> Obj:
    extra = release.spec.service.extra
    out: Obj = {}
    if extra.get("timeout"):
        out["request"] = str(extra["timeout"])
    if extra.get("backendTimeout"):
        out["backendRequest"] = str(extra["backendTimeout"])
    return out


def rule(release: Release, matches: list[Obj], backends: list[Obj]) -> Obj:
    """A rule with the service's filters and timeouts."""
    out: Obj = {"matches": matches}
    chain = filters(release)
    if chain:
        out["filters"] = chain
    out["backendRefs"] = backends
    limits = timeouts(release)
    if limits:
        out["timeouts"] = limits
    return out


def _set_cookie_filter(value: str) -> Obj:
    return {"type": "ResponseHeaderModifier",
            "responseHeaderModifier": {"add": [{"name": SET_COOKIE, "value": value}]}}


def cookie_match(pair: str) -> Obj:
    name, _, value = pair.partition("=")
    return {"headers": [{"name": COOKIE, "type": "RegularExpression", "value": f".*{name}.*{value}.*"}]}


def affinity_rules(release: Release, canary: int, weighted: Obj, pair: str) -> list[Obj]:
    """Flagger's session-affinity rules (see istio.affinity_routes), as HTTPRoute rules: the Set-Cookie
    goes on the canary's backendRef as a ResponseHeaderModifier filter."""
    affinity = release.spec.analysis.session_affinity
    assert affinity is not None
    n, port = names(release), release.spec.service.port
    svc = service_matches(release) if release.spec.service.extra.get("match") else []
    sticky = copy.deepcopy(weighted)
    sticky["matches"] = merge_matches([cookie_match(pair)], svc) if svc else [cookie_match(pair)]
    if canary == 0:
        sticky["filters"] = [*sticky.get("filters", []), _set_cookie_filter(f"{pair}; Max-Age=-1")]
        return [sticky, weighted]
    weighted = copy.deepcopy(weighted)
    by_name = {b["name"]: b for b in weighted["backendRefs"]}
    by_name[n.canary]["filters"] = [_set_cookie_filter(affinity.set_cookie(pair, affinity.max_age))]
    sticky["backendRefs"] = [backend(n.primary, port, 0), backend(n.canary, port, 100)]
    rules = [sticky]
    primary_pair = istio.primary_cookie(release, pair)
    if primary_pair:
        interval = int(release.spec.analysis.interval)
        by_name[n.primary]["filters"] = [_set_cookie_filter(affinity.set_cookie(primary_pair, interval))]
        pinned = copy.deepcopy(weighted)
        pinned["matches"] = merge_matches([cookie_match(primary_pair)], svc) if svc else [cookie_match(primary_pair)]
        pinned["backendRefs"] = [backend(n.primary, port, 100), backend(n.canary, port, 0)]
        rules.append(pinned)
    return [*rules, weighted]


def route_rules(release: Release, primary: int, canary: int, match: bool, extras: Extras = PLAIN) -> list[Obj]:
    """The rules of a split: an A/B rule to the canary first (with `match`), then the weighted rule;
    with a session-affinity cookie, Flagger's cookie rules ahead of the weighted one."""
    check_weights(primary, canary)
    n, port = names(release), release.spec.service.port
    svc = service_matches(release)
    weighted = rule(release, svc, [backend(n.primary, port, primary), backend(n.canary, port, canary)])
    if extras.mirror:
        mirror = {"type": "RequestMirror", "requestMirror": {"backendRef": {
            "group": "", "kind": "Service", "name": n.canary, "port": port}}}
        weighted["filters"] = [*weighted.get("filters", []), mirror]
    if extras.cookie and release.spec.analysis.session_affinity is not None:
        return affinity_rules(release, canary, weighted, extras.cookie)
    if not match:
        return [weighted]
    matches = route_matches(release.spec.analysis.match)
    if not matches:
        raise RouterError("A/B routing was asked for but analysis.match has no header or query condition",
                          temporary=False)
    if release.spec.service.extra.get("match"):
        matches = merge_matches(matches, svc)
    return [rule(release, matches, [backend(n.canary, port, 100)]), weighted]


def desired_httproute(release: Release, primary: int, canary: int, match: bool = False,
                      extras: Extras = PLAIN) -> Obj:
    service = release.spec.service
    if not service.gateway_refs:
        raise RouterError("the gatewayapi provider needs spec.service.gatewayRefs (the Gateways to attach to)",
                          temporary=False)
    spec: Obj = {"parentRefs": [dict(ref) for ref in service.gateway_refs]}
    if service.hosts:
        spec["hostnames"] = list(service.hosts)
    spec["rules"] = route_rules(release, primary, canary, match, extras)
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


def extras_of(route: Mapping[str, Any]) -> Extras:
    """Whether the live rules mirror to the canary, and the affinity cookie the canary's backend sets
    (or the ended run's cookie a rule expires)."""
    apex = str((route.get("metadata") or {}).get("name"))
    rules = (route.get("spec") or {}).get("rules") or []
    mirror, cookie = False, ""
    for r in rules:
        for f in r.get("filters") or []:
            ref = (f.get("requestMirror") or {}).get("backendRef") or {}
            mirror = mirror or (f.get("type") == "RequestMirror" and ref.get("name") == f"{apex}-canary")
            value = _set_cookie(f)
            if "Max-Age=-1" in value and any(any(h.get("name") == COOKIE for h in m.get("headers") or [])
                                             for m in r.get("matches") or []):
                cookie = cookie or value.split(";")[0].strip()
        for b in r.get("backendRefs") or []:
            if b.get("name") == f"{apex}-canary":
                cookie = next((_set_cookie(f).split(";")[0].strip() for f in b.get("filters") or []
                               if _set_cookie(f)), "") or cookie
    return Extras(mirror, cookie)


def _set_cookie(f: Mapping[str, Any]) -> str:
    adds = (f.get("responseHeaderModifier") or {}).get("add") or []
    return next((str(h.get("value")) for h in adds if h.get("name") == SET_COOKIE), "")


ROUTE = Route(HTTPROUTE, desired_httproute, weights_of, is_matched, extras_of)


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
