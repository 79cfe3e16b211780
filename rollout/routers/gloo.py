"""Gloo Edge router: a RouteTable `<svc>` (gateway.solo.io/v1) whose route sends traffic to two
Upstreams (gloo.solo.io/v1) by weight, as Flagger's gloo router writes them.

The Upstreams, `<ns>-<svc>-primaryupstream-<port>` and `<ns>-<svc>-canaryupstream-<port>`, are
Kubernetes upstreams for the Services `<svc>-primary` and `<svc>-canary` (with their selectors), made
by the router itself so that Gloo's discovery may stay off; `spec.upstreamRef` names an Upstream
whose settings (TLS, circuit breakers, connection and load-balancer config, HTTP/2) they copy.
Clients reach the RouteTable through a Gloo VirtualService whose route delegates to it, as in
Flagger's Gloo guide; the RouteTable's route inherits that route's path matcher
(`inheritablePathMatchers`).

For A/B testing, a first route carries `analysis.match` as Gloo matchers (one per match entry, its
headers ANDed: `exact` as a value, `regex` as a regex, `prefix`/`suffix` as the regex they mean;
query parameters likewise; `method` as methods) and sends everything to the canary; the weighted
route follows. Flagger's router puts the matchers on its single weighted route, which leaves users
without the headers no route in the table at all, and merges every entry into one matcher, which
ANDs alternatives; with one entry the matched route is Flagger's. Gloo mirrors and pins sessions
only where Flagger's router does, which is nowhere: both are refused.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from kubernetes import client

from rollout.api.spec import CanarySpec, Release
from rollout.routers.base import PLAIN, Extras, RouterError, refuse_extras
from rollout.routers.objects import SERVICE, Kind, Obj, Objects, check_weights, merged, metadata, names, weight_pair
from rollout.routers.route import Route, RouteIO
from rollout.settings import Settings

ROUTETABLE = Kind("gateway.solo.io/v1", "RouteTable", "routetables")
UPSTREAM = Kind("gloo.solo.io/v1", "Upstream", "upstreams")
VIRTUALSERVICE = Kind("gateway.solo.io/v1", "VirtualService", "virtualservices")


def upstream_names(release: Release) -> tuple[str, str]:
    """(primary, canary) Upstream names, Flagger's `<ns>-<svc>-<primary|canary>upstream-<port>`."""
    n, port = names(release), release.spec.service.port
    return (f"{n.namespace}-{n.apex}-primaryupstream-{port}", f"{n.namespace}-{n.apex}-canaryupstream-{port}")


# What an Upstream copies from the one `spec.upstreamRef` names (Flagger's getGlooUpstreamKubeService).
COPIED = ("labels", "sslConfig", "circuitBreakers", "connectionConfig", "loadBalancerConfig", "useHttp2",
          "initialStreamWindowSize", "initialConnectionWindowSize", "httpProxyHostName")


def desired_upstream(release: Release, name: str, service: str, selector: Mapping[str, str],
                     config: Mapping[str, Any] | None = None) -> Obj:
    """A Kubernetes upstream for `service`, with the settings of the `config` Upstream (spec.upstreamRef)."""
    spec: Obj = {k: copy.deepcopy(v) for k, v in ((config or {}).get("spec") or {}).items() if k in COPIED}
    kube: Obj = {"serviceName": service, "serviceNamespace": release.metadata.namespace,
                 "servicePort": release.spec.service.port}
    if selector:
        kube["selector"] = dict(selector)
    spec["kube"] = kube
    return {"apiVersion": UPSTREAM.api_version, "kind": UPSTREAM.kind, "metadata": metadata(release, name),
            "spec": spec}


def _regex(kind: str, value: str) -> str:
    """The RE2 regex (Envoy matches it against the whole value) a prefix or suffix match means."""
    escaped = re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", value)
    return f"{escaped}.*" if kind == "prefix" else f".*{escaped}"


def _value_matcher(what: str, name: str, condition: Mapping[str, Any]) -> Obj:
    if "exact" in condition:
        return {"name": name, "value": str(condition["exact"])}
    if "regex" in condition:
        return {"name": name, "value": str(condition["regex"]), "regex": True}
    for kind in ("prefix", "suffix"):
        if kind in condition:
            return {"name": name, "value": _regex(kind, str(condition[kind])), "regex": True}
    raise RouterError(f"analysis.match {what} {name!r}: need exact, regex, prefix or suffix, got {dict(condition)}",
                      temporary=False)


def matchers(release: Release) -> list[Obj]:
    """`analysis.match` as Gloo matchers (any of them routes to the canary)."""
    out: list[Obj] = []
    for i, entry in enumerate(release.spec.analysis.match):
        if entry.get("sourceLabels"):
            raise RouterError(f"analysis.match[{i}].sourceLabels: Gloo Edge cannot tell callers apart by their labels",
                              temporary=False)
        m: Obj = {}
        headers = [_value_matcher("header", k, v) for k, v in sorted((entry.get("headers") or {}).items())]
        params = [_value_matcher("query parameter", k, v)
                  for k, v in sorted((entry.get("queryParams") or {}).items())]
        if headers:
            m["headers"] = headers
        if params:
            m["queryParameters"] = params
        method = entry.get("method") or {}
        if isinstance(method, Mapping) and method.get("exact"):
            m["methods"] = [str(method["exact"])]
        if m:
            out.append(m)
    if not out:
        raise RouterError("A/B routing was asked for but analysis.match has no header, query or method condition",
                          temporary=False)
    return out


def _route(release: Release, matched: list[Obj] | None, primary: int, canary: int) -> Obj:
    ns = release.metadata.namespace
    p, c = upstream_names(release)
    out: Obj = {}
    if matched:
        out["matchers"] = matched
    out["inheritablePathMatchers"] = True
    out["routeAction"] = {"multi": {"destinations": [
        {"destination": {"upstream": {"name": p, "namespace": ns}}, "weight": primary},
        {"destination": {"upstream": {"name": c, "namespace": ns}}, "weight": canary},
    ]}}
    return out


def desired_routetable(release: Release, primary: int, canary: int, match: bool = False,
                       extras: Extras = PLAIN) -> Obj:
    refuse_extras("gloo", extras)
    check_weights(primary, canary)
    routes = [_route(release, matchers(release), 0, 100)] if match else []
    routes.append(_route(release, None, primary, canary))
    return {"apiVersion": ROUTETABLE.api_version, "kind": ROUTETABLE.kind,
            "metadata": metadata(release, names(release).apex), "spec": {"routes": routes}}


def _weights(r: Mapping[str, Any]) -> dict[str, Any]:
    dests = ((r.get("routeAction") or {}).get("multi") or {}).get("destinations") or []
    # Gloo (and Flagger's serialization, which omits a zero weight) reads a missing weight as 0
    return {str(((d.get("destination") or {}).get("upstream") or {}).get("name")): d.get("weight", 0) for d in dests}


def _upstreams(table: Mapping[str, Any]) -> tuple[str, str]:
    meta = table.get("metadata") or {}
    ns, apex = meta.get("namespace"), meta.get("name")
    for r in (table.get("spec") or {}).get("routes") or []:
        for name in _weights(r):
            found = re.fullmatch(rf"{re.escape(f'{ns}-{apex}')}-(primary|canary)upstream-(\d+)", name)
            if found:
                return (f"{ns}-{apex}-primaryupstream-{found[2]}", f"{ns}-{apex}-canaryupstream-{found[2]}")
    return ("", "")


def weights_of(table: Mapping[str, Any]) -> tuple[int, int] | None:
    """(primary, canary) of the weighted route: the last one without matchers."""
    primary, canary = _upstreams(table)
    for r in reversed((table.get("spec") or {}).get("routes") or []):
        weights = _weights(r)
        if not r.get("matchers") and primary in weights and canary in weights:
            return weight_pair(weights[primary], weights[canary])
    return None


def is_matched(table: Mapping[str, Any]) -> bool:
    """Whether a route with matchers sends everything to the canary (A/B testing is on)."""
    primary, canary = _upstreams(table)
    for r in (table.get("spec") or {}).get("routes") or []:
        weights = _weights(r)
        if r.get("matchers") and canary in weights and weight_pair(weights.get(primary, 0),
                                                                    weights[canary]) == (0, 100):
            return True
    return False


ROUTE = Route(ROUTETABLE, desired_routetable, weights_of, is_matched)


class GlooRouter(RouteIO):
    """Traffic split by a Gloo Edge RouteTable between two Upstreams the router makes."""

    def __init__(self, api: client.ApiClient, settings: Settings) -> None:
        super().__init__(Objects(api, settings.api_timeout), ROUTE)

    def _config(self, release: Release) -> Obj | None:
        ref = release.spec.upstream_ref if isinstance(release.spec, CanarySpec) else None
        if ref is None:
            return None
        namespace = ref.namespace or release.metadata.namespace
        config = self.objects.get(UPSTREAM, namespace, ref.name)
        if config is None:
            raise RouterError(f"Upstream {namespace}/{ref.name} (spec.upstreamRef) not found")
        return config

    def reconcile(self, release: Release) -> None:
        n = names(release)
        config = self._config(release)
        for upstream, service in zip(upstream_names(release), (n.primary, n.canary), strict=True):
            svc = self.objects.get(SERVICE, n.namespace, service)
            if svc is None:
                raise RouterError(f"Service {n.namespace}/{service} not found (the Upstream {upstream} points at it)")
            selector = {str(k): str(v) for k, v in ((svc.get("spec") or {}).get("selector") or {}).items()}
            desired = desired_upstream(release, upstream, service, selector, config)
            self.objects.apply(UPSTREAM, n.namespace, upstream,
                               lambda live, d=desired: d if live is None else merged(live, d))  # type: ignore[misc]
        super().reconcile(release)
