"""Istio router: a VirtualService `<svc>` (networking.istio.io/v1beta1) whose HTTP route weighs the
destinations `<svc>-primary` and `<svc>-canary`, and one DestinationRule per destination (with the
service's `trafficPolicy`, when it has one).

`analysis.match` is already Istio's HTTPMatchRequest, so A/B routes take it verbatim (merged with
`service.match`, as Flagger does), ahead of the weighted route. As in Flagger's istio router:
`service.delegation` leaves out hosts and gateways (a delegate VirtualService), `appProtocol: tcp`
writes a `tcp` route instead of `http` ones, a mirrored split mirrors the weighted route to the
canary (`mirrorPercentage` from `analysis.mirrorWeight`), and session affinity puts cookie rules
ahead of it (`affinity_routes`).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kubernetes import client

from rollout.api.spec import Release
from rollout.routers.base import PLAIN, Extras, RouterError
from rollout.routers.objects import Kind, Obj, Objects, check_weights, merged, metadata, names, weight_pair
from rollout.routers.route import Route, RouteIO
from rollout.settings import Settings

VIRTUALSERVICE = Kind("networking.istio.io/v1beta1", "VirtualService", "virtualservices")
DESTINATIONRULE = Kind("networking.istio.io/v1beta1", "DestinationRule", "destinationrules")
# service fields Flagger copies onto every HTTP route of the VirtualService
ROUTE_FIELDS = ("retries", "timeout", "headers", "corsPolicy")
COOKIE, SET_COOKIE = "Cookie", "Set-Cookie"


def merge_matches(analysis: Sequence[Mapping[str, Any]], service: Sequence[Mapping[str, Any]]) -> list[Obj]:
    """Each A/B condition within each of the service's own conditions (any pair routes)."""
    if not service:
        return [dict(a) for a in analysis]
    return [{**dict(s), **dict(a)} for a in analysis for s in service]


def destination(host: str, port: int, weight: int) -> Obj:
    return {"destination": {"host": host, "port": {"number": port}}, "weight": weight}


def is_tcp(release: Release) -> bool:
    """Flagger writes a `tcp` route instead of `http` ones when `service.appProtocol` is tcp."""
    return str(release.spec.service.app_protocol or "").lower() == "tcp"


def route_fields(release: Release) -> Obj:
    """What Flagger puts on every HTTP route besides match and destinations (its GetIstioRewrite
    keeps only uri and authority of `service.rewrite`)."""
    extra = release.spec.service.extra
    common: Obj = {k: copy.deepcopy(extra[k]) for k in ROUTE_FIELDS if extra.get(k)}
    rewrite = extra.get("rewrite")
    if isinstance(rewrite, Mapping):
        kept = {k: rewrite[k] for k in ("uri", "authority") if rewrite.get(k)}
        if kept:
            common["rewrite"] = kept
    return common


def cookie_match(pair: str) -> Obj:
    """Flagger's match on the affinity cookie `name=value`: a regex on the Cookie header."""
    name, _, value = pair.partition("=")
    return {"headers": {COOKIE: {"regex": f".*{name}.*{value}.*"}}}


def primary_cookie(release: Release, pair: str) -> str:
    """The primary's cookie for this run (`primaryCookieName`), with a value of its own."""
    affinity = release.spec.analysis.session_affinity
    value = hashlib.sha256(pair.encode()).hexdigest()[:10]
    return f"{affinity.primary_cookie_name}={value}" if affinity and affinity.primary_cookie_name else ""


def _add_response_header(obj: Obj, name: str, value: str) -> None:
    headers = obj.setdefault("headers", {})
    response = headers.setdefault("response", {})
    response.setdefault("add", {})[name] = value


def affinity_routes(release: Release, canary: int, weighted: Obj, pair: str) -> list[Obj]:
    """Flagger's session-affinity rules (getSessionAffinityRouteRules) around the weighted route.

    While the canary has weight, the canary's destination sets the run's cookie and a first route
    sends every request carrying it to the canary (a `primaryCookieName` likewise pins users to the
    primary for one interval). At weight 0 the first route matches the cookie of the run that ended
    and expires it (Max-Age=-1), sending its carriers where everyone goes.
    """
    affinity = release.spec.analysis.session_affinity
    assert affinity is not None
    n, port = names(release), release.spec.service.port
    service_match = list(release.spec.service.extra.get("match") or [])
    sticky = copy.deepcopy(weighted)
    sticky["match"] = merge_matches([cookie_match(pair)], service_match)
    if canary == 0:
        _add_response_header(sticky, SET_COOKIE, f"{pair}; Max-Age=-1")
        return [sticky, weighted]
    weighted = copy.deepcopy(weighted)
    by_host = {d["destination"]["host"]: d for d in weighted["route"]}
    _add_response_header(by_host[n.canary], SET_COOKIE, affinity.set_cookie(pair, affinity.max_age))
    sticky["route"] = [destination(n.primary, port, 0), destination(n.canary, port, 100)]
    routes = [sticky]
    primary_pair = primary_cookie(release, pair)
    if primary_pair:
        interval = int(release.spec.analysis.interval)
        _add_response_header(by_host[n.primary], SET_COOKIE, affinity.set_cookie(primary_pair, interval))
        pinned = copy.deepcopy(weighted)
        pinned["match"] = merge_matches([cookie_match(primary_pair)], service_match)
        pinned["route"] = [destination(n.primary, port, 100), destination(n.canary, port, 0)]
        routes.append(pinned)
    return [*routes, weighted]


def desired_virtualservice(release: Release, primary: int, canary: int, match: bool = False,
                           extras: Extras = PLAIN) -> Obj:
    check_weights(primary, canary)
    n, service = names(release), release.spec.service
    split = [destination(n.primary, service.port, primary), destination(n.canary, service.port, canary)]
    spec: Obj = {}
    if not service.extra.get("delegation"):
        # a delegate VirtualService has neither: the root VirtualService that delegates to it names them
        spec["hosts"] = list(dict.fromkeys([*service.hosts, n.apex])) if "*" not in service.hosts else list(
            service.hosts)
        if service.gateways:
            spec["gateways"] = list(service.gateways)
    if is_tcp(release):
        tcp: Obj = {"route": split}
        ports = [{"port": m["port"]} for m in service.extra.get("match") or [] if isinstance(m, Mapping)
                 and m.get("port")]
        if ports:
            tcp["match"] = ports
        spec["tcp"] = [tcp]
        return {"apiVersion": VIRTUALSERVICE.api_version, "kind": VIRTUALSERVICE.kind,
                "metadata": metadata(release, n.apex), "spec": spec}
    common = route_fields(release)
    service_match = list(service.extra.get("match") or [])
    weighted: Obj = {**common, "route": split}
    if service_match:
        weighted["match"] = service_match
    if extras.mirror:
        weighted["mirror"] = {"host": n.canary}
        if release.spec.analysis.mirror_weight:
            weighted["mirrorPercentage"] = {"value": release.spec.analysis.mirror_weight}
    http = [weighted]
    if extras.cookie and release.spec.analysis.session_affinity is not None:
        http = affinity_routes(release, canary, weighted, extras.cookie)
    if match:
        if not release.spec.analysis.match:
            raise RouterError("A/B routing was asked for but analysis.match is empty", temporary=False)
        ab = {**common, "match": merge_matches(release.spec.analysis.match, service_match),
              "route": [destination(n.canary, service.port, 100)]}
        http = [ab, weighted]
    spec["http"] = http
    return {"apiVersion": VIRTUALSERVICE.api_version, "kind": VIRTUALSERVICE.kind,
            "metadata": metadata(release, n.apex), "spec": spec}


def desired_destinationrule(release: Release, host: str) -> Obj:
    spec: Obj = {"host": host}
    policy = release.spec.service.extra.get("trafficPolicy")
    if policy:
        spec["trafficPolicy"] = policy
    return {"apiVersion": DESTINATIONRULE.api_version, "kind": DESTINATIONRULE.kind,
            "metadata": metadata(release, host), "spec": spec}


def _hosts(route: Mapping[str, Any]) -> list[str]:
    return [str((d.get("destination") or {}).get("host")) for d in route.get("route") or []]


def _routes(vs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    spec = vs.get("spec") or {}
    return [*(spec.get("http") or []), *(spec.get("tcp") or [])]


def weights_of(vs: Mapping[str, Any]) -> tuple[int, int] | None:
    """(primary, canary) of the weighted route (the last naming both destinations), if any."""
    apex = str((vs.get("metadata") or {}).get("name"))
    primary, canary = f"{apex}-primary", f"{apex}-canary"
    for route in reversed(_routes(vs)):
        weights = {str((d.get("destination") or {}).get("host")): d.get("weight", 0) for d in route.get("route") or []}
        if primary in weights and canary in weights:
            return weight_pair(weights[primary], weights[canary])
    return None


def extras_of(vs: Mapping[str, Any]) -> Extras:
    """Whether the live routes mirror to the canary, and the affinity cookie the canary sets (or the
    ended run's cookie a route expires)."""
    apex = str((vs.get("metadata") or {}).get("name"))
    http = (vs.get("spec") or {}).get("http") or []
    mirror = any(str((r.get("mirror") or {}).get("host")) == f"{apex}-canary" for r in http)
    cookie = ""
    for route in http:
        for d in route.get("route") or []:
            if str((d.get("destination") or {}).get("host")) == f"{apex}-canary":
                cookie = cookie or _set_cookie_pair(d)
        if any(COOKIE in (m.get("headers") or {}) for m in route.get("match") or []):
            expired = _set_cookie_pair(route)
            cookie = cookie or (expired if "Max-Age=-1" in _set_cookie(route) else "")
    return Extras(mirror, cookie)


def _set_cookie(obj: Mapping[str, Any]) -> str:
    return str((((obj.get("headers") or {}).get("response") or {}).get("add") or {}).get(SET_COOKIE) or "")


def _set_cookie_pair(obj: Mapping[str, Any]) -> str:
    return _set_cookie(obj).split(";")[0].strip()


def is_matched(vs: Mapping[str, Any]) -> bool:
    apex = str((vs.get("metadata") or {}).get("name"))
    routes = (vs.get("spec") or {}).get("http") or []
    return any(_hosts(r) == [f"{apex}-canary"] and r.get("match") for r in routes)


def _updater(desired: Obj) -> Callable[[Obj | None], Obj | None]:
    return lambda live: desired if live is None else merged(live, desired)


ROUTE = Route(VIRTUALSERVICE, desired_virtualservice, weights_of, is_matched, extras_of)


class IstioRouter(RouteIO):
    """Traffic split by an Istio VirtualService, with a DestinationRule per destination."""

    def __init__(self, api: client.ApiClient, settings: Settings) -> None:
        super().__init__(Objects(api, settings.api_timeout), ROUTE)

    def reconcile(self, release: Release) -> None:
        n = names(release)
        for host in (n.primary, n.canary):
            self.objects.apply(DESTINATIONRULE, n.namespace, host, _updater(desired_destinationrule(release, host)))
        super().reconcile(release)
