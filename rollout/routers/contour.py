"""Contour router: an HTTPProxy `<svc>` (projectcontour.io/v1) whose route sends the path prefix to
the Services `<svc>-primary` and `<svc>-canary` by weight, as Flagger's contour router writes it.

Clients reach it through a root HTTPProxy (one with a `virtualhost`) that includes it, as in
Flagger's Contour guide. Each service sets Linkerd's `l5d-dst-override` header (harmless without
Linkerd); the route carries the service's `timeout` (as `timeoutPolicy.response`, idle 5m) and
`retries` (as `retryPolicy`), and its path prefix is the first `service.match` URI prefix.

For A/B testing a route per `analysis.match` entry comes first, its conditions the entry's headers
(Flagger's translation: `exact` as exact, `prefix` and `suffix` as `contains`; Contour matches no
regex), sending everything to the canary; the weighted route follows for everyone else. With one
entry this is Flagger's object; several entries get a route each because Contour ANDs the
conditions of one route, while Flagger's match entries are alternatives. Contour mirrors and pins
sessions only where Flagger's router does, which is nowhere: both are refused.
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

HTTPPROXY = Kind("projectcontour.io/v1", "HTTPProxy", "httpproxies")
LINKERD_OVERRIDE = "l5d-dst-override"
IDLE_TIMEOUT = "5m"  # what Flagger's router sets beside the response timeout


def path_prefix(release: Release) -> str:
    """The first `service.match` URI prefix (Flagger's makePrefix), else `/`."""
    for condition in (release.spec.service.extra.get("match") or [])[:1]:
        prefix = (condition.get("uri") or {}).get("prefix")
        if prefix:
            return str(prefix)
    return "/"


def header_condition(name: str, condition: Mapping[str, Any]) -> Obj:
    """One Flagger header condition as a Contour HeaderMatchCondition."""
    if "exact" in condition:
        return {"name": name, "exact": str(condition["exact"])}
    for key in ("prefix", "suffix"):
        if key in condition:
            return {"name": name, "contains": str(condition[key])}
    raise RouterError(f"analysis.match header {name!r}: Contour matches headers by exact, prefix or suffix "
                      f"(no regex), got {dict(condition)}", temporary=False)


def match_conditions(release: Release) -> list[list[Obj]]:
    """The conditions of each A/B route: the path prefix once, then the entry's headers (ANDed)."""
    out: list[list[Obj]] = []
    for i, entry in enumerate(release.spec.analysis.match):
        for key in ("sourceLabels", "queryParams"):
            if entry.get(key):
                raise RouterError(f"analysis.match[{i}].{key}: Contour routes A/B tests by headers only",
                                  temporary=False)
        headers = [header_condition(k, v) for k, v in sorted((entry.get("headers") or {}).items())]
        if not headers:
            continue
        conditions: list[Obj] = [{"prefix": path_prefix(release), "header": headers[0]}]
        conditions += [{"header": h} for h in headers[1:]]
        out.append(conditions)
    if not out:
        raise RouterError("A/B routing was asked for but analysis.match has no header condition", temporary=False)
    return out


def _service(release: Release, name: str, weight: int) -> Obj:
    port = release.spec.service.port
    return {
        "name": name,
        "port": port,
        "weight": weight,
        "requestHeadersPolicy": {"set": [{
            "name": LINKERD_OVERRIDE,
            "value": f"{name}.{release.metadata.namespace}.svc.cluster.local:{port}",
        }]},
    }


def timeout_policy(release: Release) -> Obj | None:
    timeout = release.spec.service.extra.get("timeout")
    return {"response": str(timeout), "idle": IDLE_TIMEOUT} if timeout else None


def retry_policy(release: Release) -> Obj | None:
    retries = release.spec.service.extra.get("retries")
    if not isinstance(retries, Mapping):
        return None
    attempts = retries.get("attempts") or 0
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 0:
        raise RouterError(f"service.retries.attempts must be a whole number of retries, got {attempts!r}",
                          temporary=False)
    policy: Obj = {"count": attempts}
    if retries.get("perTryTimeout"):
        policy["perTryTimeout"] = str(retries["perTryTimeout"])
    retry_on = [part.strip() for part in str(retries.get("retryOn") or "").split(",") if part.strip()]
    if retry_on:
        policy["retryOn"] = retry_on
    return policy


def route(release: Release, conditions: list[Obj], primary: int, canary: int) -> Obj:
    n = names(release)
    out: Obj = {"conditions": conditions}
    timeout, retry = timeout_policy(release), retry_policy(release)
    if timeout:
        out["timeoutPolicy"] = timeout
    if retry:
        out["retryPolicy"] = retry
    out["services"] = [_service(release, n.primary, primary), _service(release, n.canary, canary)]
    return out


def desired_httpproxy(release: Release, primary: int, canary: int, match: bool = False,
                      extras: Extras = PLAIN) -> Obj:
    refuse_extras("contour", extras)
    check_weights(primary, canary)
    routes = [route(release, c, 0, 100) for c in match_conditions(release)] if match else []
    routes.append(route(release, [{"prefix": path_prefix(release)}], primary, canary))
    return {"apiVersion": HTTPPROXY.api_version, "kind": HTTPPROXY.kind,
            "metadata": metadata(release, names(release).apex), "spec": {"routes": routes}}


def _has_header(r: Mapping[str, Any]) -> bool:
    return any(c.get("header") for c in r.get("conditions") or [])


def _weights(r: Mapping[str, Any]) -> dict[str, Any]:
    # Contour (and Flagger's serialization, which omits a zero weight) reads a missing weight as 0
    return {str(s.get("name")): s.get("weight", 0) for s in r.get("services") or []}


def weights_of(proxy: Mapping[str, Any]) -> tuple[int, int] | None:
    """(primary, canary) of the weighted route: the last one without header conditions."""
    apex = str((proxy.get("metadata") or {}).get("name"))
    for r in reversed((proxy.get("spec") or {}).get("routes") or []):
        weights = _weights(r)
        if not _has_header(r) and f"{apex}-primary" in weights and f"{apex}-canary" in weights:
            return weight_pair(weights[f"{apex}-primary"], weights[f"{apex}-canary"])
    return None


def is_matched(proxy: Mapping[str, Any]) -> bool:
    """Whether a header-matched route sends everything to the canary (A/B testing is on)."""
    apex = str((proxy.get("metadata") or {}).get("name"))
    for r in (proxy.get("spec") or {}).get("routes") or []:
        weights = _weights(r)
        if _has_header(r) and weight_pair(weights.get(f"{apex}-primary", 0), weights.get(f"{apex}-canary")) == (0, 100):
            return True
    return False


ROUTE = Route(HTTPPROXY, desired_httpproxy, weights_of, is_matched)


class ContourRouter(RouteIO):
    """Traffic split by a Contour HTTPProxy."""

    def __init__(self, api: client.ApiClient, settings: Settings) -> None:
        super().__init__(Objects(api, settings.api_timeout), ROUTE)
