"""AWS App Mesh router (appmesh.k8s.aws/v1beta2), the objects Flagger's appmesh:v1beta2 router writes:

- a VirtualNode each for `<svc>-primary` and `<svc>-canary`: a listener on the container port
  (`grpc` when `service.portName` says so, else `http`), DNS service discovery by the Service's
  name, and the pod selector of that Service (which the workloads module made from the target's
  selector label, as Flagger's `<label>: <target>[-primary]`);
- a VirtualRouter `<svc>` whose route sends weighted targets to the two nodes, and a VirtualRouter
  `<svc>-canary` that sends everything to the canary node (the address a load tester calls);
- a VirtualService for each router, which is what the mesh's clients address (`<svc>.<namespace>`);
  with `service.hosts`, the apex one carries Flagger's App Mesh Gateway annotations (expose, domain).

As Flagger's router, the Canary annotation `appmesh.flagger.app/accesslog: enabled` turns on the
nodes' access log, `service.timeout` becomes the routes' and the nodes' listeners' per-request
timeout, `service.retries` the routes' retry policy, and `service.match[0].uri.prefix` the routes' prefix.

A/B testing (`analysis.match`): as Flagger's router, the `<svc>` router gets two routes: `<svc>-a`
(priority 10) matching the headers of `analysis.match` and sending to the canary, and `<svc>-b`
(priority 20) for every other request. App Mesh routes match headers (exact, prefix, suffix, regex)
but not query parameters or the caller, so those are refused. App Mesh cannot mirror requests or
set cookies, so mirroring and session affinity are refused. The App Mesh controller fills in
`awsName` and `meshRef`; they are kept as it wrote them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kubernetes import client

from rollout.api.durations import parse_duration
from rollout.api.spec import Release
from rollout.routers.base import PLAIN, Extras, RouterError, refuse_extras
from rollout.routers.objects import (
    SERVICE,
    Kind,
    Obj,
    Objects,
    check_weights,
    merged,
    metadata,
    names,
    weight_pair,
)
from rollout.routers.route import Route, RouteIO, kept
from rollout.settings import Settings

API_VERSION = "appmesh.k8s.aws/v1beta2"
VIRTUALNODE = Kind(API_VERSION, "VirtualNode", "virtualnodes")
VIRTUALROUTER = Kind(API_VERSION, "VirtualRouter", "virtualrouters")
VIRTUALSERVICE = Kind(API_VERSION, "VirtualService", "virtualservices")
# Fields the App Mesh controller sets on its objects, which a rewrite of the spec must keep.
CONTROLLER_FIELDS = ("awsName", "meshRef")
A_PRIORITY, B_PRIORITY = 10, 20
# Flagger's Canary annotation that turns on the nodes' Envoy access log (to stdout).
ACCESS_LOG_ANNOTATION = "appmesh.flagger.app/accesslog"
HEADER_METHODS = ("exact", "prefix", "suffix", "regex")


def protocol(release: Release) -> str:
    return "grpc" if "grpc" in (release.spec.service.port_name or "") else "http"


def container_port(release: Release) -> int:
    """`targetPort` when it is a number (the port the pods listen on), else `port`, as Flagger."""
    target = release.spec.service.target_port
    return target if isinstance(target, int) and target > 0 else release.spec.service.port


def _ms(text: Any) -> int | None:
    try:
        return round(parse_duration(str(text)) * 1000)
    except ValueError:
        return None  # validation names the field; Flagger too writes nothing for an unparsable duration


def route_timeout(release: Release) -> Obj | None:
    """`service.timeout` as App Mesh's per-request timeout, in milliseconds (Flagger's makeRouteTimeout)."""
    timeout = release.spec.service.extra.get("timeout")
    ms = _ms(timeout) if timeout else None
    return None if ms is None else {"perRequest": {"unit": "ms", "value": ms}}


def retry_policy(release: Release) -> Obj | None:
    """`service.retries` as an HTTP retry policy (Flagger's makeRetryPolicy: one retry on gateway
    errors, 250ms per try, unless the Canary says otherwise)."""
    retries = release.spec.service.extra.get("retries")
    if not isinstance(retries, Mapping):
        return None
    per_try = _ms(retries.get("perTryTimeout")) if retries.get("perTryTimeout") else None
    attempts = retries.get("attempts")
    events = [e.strip() for e in str(retries.get("retryOn") or "").split(",") if e.strip()] or ["gateway-error"]
    return {"perRetryTimeout": {"unit": "ms", "value": 250 if per_try is None else per_try},
            "maxRetries": attempts if isinstance(attempts, int) and attempts > 0 else 1,
            "httpRetryEvents": events}


def route_prefix(release: Release) -> str:
    """App Mesh routes by URI prefix only: `service.match[0].uri.prefix`, else `/` (as Flagger)."""
    match = release.spec.service.extra.get("match") or []
    uri = (match[0] or {}).get("uri") if match and isinstance(match[0], Mapping) else None
    prefix = uri.get("prefix") if isinstance(uri, Mapping) else None
    return str(prefix) if prefix else "/"


def host(release: Release, service: str) -> str:
    return f"{service}.{release.metadata.namespace}.svc.cluster.local."


def desired_virtualnode(release: Release, service: str, pod_labels: Mapping[str, str]) -> Obj:
    """The VirtualNode `service` (`<svc>-primary` or `<svc>-canary`): the pods `pod_labels` select."""
    listener: Obj = {"portMapping": {"port": container_port(release), "protocol": protocol(release)}}
    timeout = route_timeout(release)
    if timeout:
        listener["timeout"] = {"http": timeout}
    spec: Obj = {
        "listeners": [listener],
        "serviceDiscovery": {"dns": {"hostname": host(release, service)}},
        "podSelector": {"matchLabels": dict(pod_labels)},
    }
    if dict(release.metadata.annotations).get(ACCESS_LOG_ANNOTATION) == "enabled":
        spec["logging"] = {"accessLog": {"file": {"path": "/dev/stdout"}}}
    return {"apiVersion": API_VERSION, "kind": VIRTUALNODE.kind, "metadata": metadata(release, service), "spec": spec}


def header_matches(match: Sequence[Mapping[str, Any]]) -> list[Obj]:
    """Flagger's `analysis.match` headers as App Mesh HTTPRouteHeaders (all of them must match)."""
    if len(match) > 1:
        raise RouterError("analysis.match: App Mesh routes one condition (all its headers must match), got "
                          f"{len(match)}", temporary=False)
    headers: list[Obj] = []
    for i, condition in enumerate(match):
        for key in ("queryParams", "sourceLabels", "uri", "method"):
            if condition.get(key):
                raise RouterError(f"analysis.match[{i}].{key}: App Mesh routes match headers only",
                                  temporary=False)
        for name, test in sorted((condition.get("headers") or {}).items()):
            methods = {k: str(v) for k, v in (test or {}).items() if k in HEADER_METHODS and v not in (None, "")}
            if len(methods) != 1 or len(methods) != len(test or {}):
                raise RouterError(f"analysis.match[{i}].headers.{name}: App Mesh matches a header by one of "
                                  f"exact, prefix, suffix or regex, got {dict(test or {})}", temporary=False)
            headers.append({"name": name, "match": methods})
    if not headers:
        raise RouterError("A/B routing was asked for but analysis.match has no headers", temporary=False)
    return headers


def _targets(canary_node: str, canary: int, primary_node: str, primary: int) -> list[Obj]:
    return [{"virtualNodeRef": {"name": canary_node}, "weight": canary},
            {"virtualNodeRef": {"name": primary_node}, "weight": primary}]


def _route(release: Release, name: str, match: Obj, targets: list[Obj], priority: int | None = None) -> Obj:
    route: Obj = {"name": name}
    if priority is not None:
        route["priority"] = priority
    http: Obj = {"match": match, "action": {"weightedTargets": targets}}
    timeout, retries = route_timeout(release), retry_policy(release)
    if timeout:
        http["timeout"] = timeout
    if retries:
        http["retryPolicy"] = retries
    route["httpRoute"] = http
    return route


def desired_virtualrouter(release: Release, primary: int, canary: int, match: bool = False,
                          extras: Extras = PLAIN) -> Obj:
    """The VirtualRouter `<svc>`: one weighted route, or with `match` the A/B routes `<svc>-a`
    (matched requests: all to the canary) and `<svc>-b` (the rest, by the weights)."""
    refuse_extras("appmesh", extras)
    check_weights(primary, canary)
    n = names(release)
    prefix = {"prefix": route_prefix(release)}
    if match:
        headers = header_matches(release.spec.analysis.match)
        rest = ([{"virtualNodeRef": {"name": n.primary}, "weight": 100}] if canary == 0
                else _targets(n.canary, canary, n.primary, primary))
        routes = [_route(release, f"{n.apex}-a", {**prefix, "headers": headers},
                         _targets(n.canary, 100, n.primary, 0), A_PRIORITY),
                  _route(release, f"{n.apex}-b", prefix, rest, B_PRIORITY)]
    else:
        routes = [_route(release, n.apex, prefix, _targets(n.canary, canary, n.primary, primary))]
    return _router(release, n.apex, routes)


def desired_canary_router(release: Release) -> Obj:
    """The VirtualRouter `<svc>-canary`: everything to the canary node."""
    n = names(release)
    return _router(release, n.canary, [_route(release, n.canary, {"prefix": route_prefix(release)},
                                               _targets(n.canary, 100, n.primary, 0))])


def _router(release: Release, name: str, routes: list[Obj]) -> Obj:
    return {
        "apiVersion": API_VERSION,
        "kind": VIRTUALROUTER.kind,
        "metadata": metadata(release, name),
        "spec": {
            "listeners": [{"portMapping": {"port": container_port(release), "protocol": protocol(release)}}],
            "routes": routes,
        },
    }


def gateway_annotations(release: Release) -> dict[str, str]:
    """Flagger's App Mesh Gateway annotations for the apex VirtualService, when `service.hosts` names
    the domains the gateway exposes it on (Flagger's list ends with a comma, kept as written)."""
    hosts = release.spec.service.hosts
    if not hosts:
        return {}
    return {"gateway.appmesh.k8s.aws/expose": "true", "gateway.appmesh.k8s.aws/domain": "".join(f"{h}," for h in hosts)}


def desired_virtualservice(release: Release, name: str) -> Obj:
    """The VirtualService `name` (`<name>.<namespace>` in the mesh), provided by the router `name`;
    the apex one carries the gateway annotations."""
    meta = metadata(release, name)
    annotations = gateway_annotations(release) if name == names(release).apex else {}
    if annotations:
        meta["annotations"] = annotations
    return {
        "apiVersion": API_VERSION,
        "kind": VIRTUALSERVICE.kind,
        "metadata": meta,
        "spec": {"provider": {"virtualRouter": {"virtualRouterRef": {"name": name}}}},
    }


def _http_routes(router: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [r for r in (router.get("spec") or {}).get("routes") or [] if isinstance(r.get("httpRoute"), Mapping)]


def _weights(route: Mapping[str, Any]) -> dict[str, Any]:
    action = (route.get("httpRoute") or {}).get("action") or {}
    return {str((t.get("virtualNodeRef") or {}).get("name")): t.get("weight", 0)
            for t in action.get("weightedTargets") or []}


def _has_headers(route: Mapping[str, Any]) -> bool:
    return bool(((route.get("httpRoute") or {}).get("match") or {}).get("headers"))


def weights_of(router: Mapping[str, Any]) -> tuple[int, int] | None:
    """(primary, canary) of the route every request without the A/B headers takes."""
    apex = str((router.get("metadata") or {}).get("name"))
    for route in _http_routes(router):
        if _has_headers(route):
            continue
        weights = _weights(route)
        if f"{apex}-primary" not in weights:
            return None
        return weight_pair(weights[f"{apex}-primary"], weights.get(f"{apex}-canary", 0))
    return None


def is_matched(router: Mapping[str, Any]) -> bool:
    """Whether a header route sends its requests to the canary."""
    apex = str((router.get("metadata") or {}).get("name"))
    return any(_has_headers(r) and str(_weights(r).get(f"{apex}-canary", 0)) == "100" for r in _http_routes(router))


def keeping_controller_fields(desired: Obj) -> Callable[[Obj | None], Obj | None]:
    """An update to `desired` that keeps the `awsName` and `meshRef` the App Mesh controller wrote."""
    def build(live: Obj | None) -> Obj | None:
        if live is None:
            return desired
        spec = dict(desired["spec"])
        for key in CONTROLLER_FIELDS:
            if key in (live.get("spec") or {}):
                spec[key] = live["spec"][key]
        return merged(live, {**desired, "spec": spec})
    return build


ROUTE = Route(VIRTUALROUTER, desired_virtualrouter, weights_of, is_matched)


class AppMeshRouter(RouteIO):
    """Traffic split by App Mesh VirtualNodes, VirtualRouters and VirtualServices."""

    def __init__(self, api: client.ApiClient, settings: Settings) -> None:
        super().__init__(Objects(api, settings.api_timeout), ROUTE)

    def _pod_labels(self, release: Release, service: str) -> dict[str, str]:
        live = self.objects.get(SERVICE, release.metadata.namespace, service)
        selector = ((live or {}).get("spec") or {}).get("selector") or {}
        if not selector:
            raise RouterError(f"Service {release.metadata.namespace}/{service} (its selector is the VirtualNode's "
                              "pod selector) does not exist yet")
        return {str(k): str(v) for k, v in selector.items()}

    def reconcile(self, release: Release) -> None:
        n, ns = names(release), release.metadata.namespace
        for service in (n.primary, n.canary):
            node = desired_virtualnode(release, service, self._pod_labels(release, service))
            self.objects.apply(VIRTUALNODE, ns, service, keeping_controller_fields(node))
        self.objects.apply(VIRTUALROUTER, ns, n.canary, keeping_controller_fields(desired_canary_router(release)))

        def build(live: Obj | None) -> Obj | None:
            if live is None:
                return desired_virtualrouter(release, 100, 0)
            # the weights and the A/B state the planner set stay: only the rest follows the spec
            match = bool(release.spec.analysis.match) and is_matched(live)
            return keeping_controller_fields(desired_virtualrouter(release, *kept(weights_of(live)), match))(live)

        self.objects.apply(VIRTUALROUTER, ns, n.apex, build)
        for name in (n.apex, n.canary):
            self.objects.apply(VIRTUALSERVICE, ns, name, keeping_controller_fields(
                desired_virtualservice(release, name)))

    def set_weight(self, release: Release, primary: int, canary: int, match: bool = False, *,
                   mirror: bool = False, cookie: str = "") -> None:
        desired = desired_virtualrouter(release, primary, canary, match, Extras(mirror, cookie))
        self.objects.apply(VIRTUALROUTER, release.metadata.namespace, names(release).apex,
                           keeping_controller_fields(desired))

    def finalize(self, release: Release) -> None:
        desired = desired_virtualrouter(release, 100, 0)
        self.objects.apply(VIRTUALROUTER, release.metadata.namespace, names(release).apex,
                           keeping_controller_fields(desired), create=False)
