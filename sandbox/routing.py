"""Where the sandbox's simulated requests go, decided from the live objects alone (pure functions).

The data plane asks this module, once per tick, how each stream of client requests is shared out
among Deployments. The answer follows the router objects exactly as the providers' proxies would:
Gateway API HTTPRoutes, Istio VirtualServices, ingress-nginx canary Ingresses, SMI TrafficSplits,
Linkerd HTTPRoutes, Contour HTTPProxies, Gloo Edge RouteTables, Knative Services' traffic, Traefik
IngressRoutes and TraefikServices, ApisixRoutes, Skipper Ingresses and plain Service selectors.
Keeping it pure (dicts in, shares out) lets the unit tests check every provider's rule without a
running sandbox.

Which requests exist (one stream per *entry*, each getting the configured rate):

- every Gateway API HTTPRoute (clients come in through its Gateway), provider `gatewayapi`;
- every nginx Ingress that is not a canary Ingress, provider `nginx`;
- every root Contour HTTPProxy (one with a `virtualhost`), its routes followed by those of the
  proxies it includes, provider `contour`;
- every Gloo Edge VirtualService (gateway.solo.io), a route delegating to a RouteTable replaced by
  the table's routes, each destination an Upstream whose Kubernetes Service serves it, provider `gloo`;
- every Knative Service (clients call its URL), provider `knative`, routed by its `status.traffic`
  to the Deployments of the Revisions it names;
- every Skipper Ingress (class skipper) that carries no backend weights, provider `skipper`: an enabled
  canary Ingress (`zalando.org/backend-weights`, no `False()` predicate) for its host and path serves it;
- every Traefik IngressRoute, provider `traefik`: its first route's services, through TraefikServices'
  weighted round robin, down to Kubernetes Services;
- every distinct match (hosts, paths) of the ApisixRoutes' http rules, provider `apisix`, served by the
  rule of highest priority for it;
- every Service that is the apex of a mesh router object (a Linkerd HTTPRoute's parent Service, a
  TrafficSplit's `spec.service`, a VirtualService host naming a Service, a Kuma TrafficRoute's
  destination `kuma.io/service` tag) or of a Canary/BlueGreen whose provider is not an edge one
  (`gatewayapi`, `nginx`, `contour`, `gloo`: those clients come through the gateway, the ingress or
  the proxy), and for provider `kubernetes` and BlueGreens also their `-canary` Service (a load
  tester's requests, as in Flagger's blue/green guide), routed by, in this order: a Linkerd
  HTTPRoute, a TrafficSplit, a VirtualService, a Kuma TrafficRoute (relative weights by service
  tag), an App Mesh VirtualService (its `awsName`, by default `<name>.<namespace>`: through its
  VirtualRouter's HTTP routes by priority, to VirtualNodes by their DNS service discovery), or else
  the Service's own selector (provider `kubernetes`). An App Mesh VirtualService is no entry of its
  own (the `-canary` one is what a load tester calls, and no client calls it here). A Service that a
  plain nginx Ingress sends to is not an entry of its own (its clients come through the Ingress).

A request reaching a Service goes to the Deployments and DaemonSets whose pod-template labels its
selector matches and that have ready pods, in proportion to their ready pods (as kube-proxy
spreads over endpoints). Requests sent to a backend with no ready endpoints are not served and
not counted. A/B testing: a request "carrying the match" holds the headers/cookies of the first
rule that needs headers, cookies or query parameters; other requests carry none of them.

Mirroring (an Istio route's `mirror`, an HTTPRoute rule's RequestMirror filter): a copy of the given
share of the plain requests also goes to the mirror's Service; its response is dropped, but the
pods serving it count it. Session affinity: when a route sets a cookie (`Set-Cookie` added to a
response, as Flagger's sessionAffinity writes it), its rules matching only the Cookie header are
sticky rules, not A/B rules: a client whose cookies match one takes it (`Split.sticky`,
`shares_for`), and a share's `set_cookie` is what the client's cookie jar gets from the response
(`set_cookie`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "Entry",
    "Hop",
    "Share",
    "Split",
    "Sticky",
    "World",
    "endpoints",
    "set_cookie",
    "shares_for",
    "split_for",
    "splits",
    "workloads",
]

Obj = Mapping[str, Any]

NGINX = "nginx.ingress.kubernetes.io/"
NGINX_CANARY = NGINX + "canary"
NGINX_WEIGHT = NGINX + "canary-weight"
NGINX_WEIGHT_TOTAL = NGINX + "canary-weight-total"
NGINX_BY_HEADER = NGINX + "canary-by-header"
NGINX_BY_COOKIE = NGINX + "canary-by-cookie"
# Canary/BlueGreen providers whose clients enter through a gateway or an ingress, not the apex Service.
EDGE_PROVIDERS: tuple[str, ...] = ("gatewayapi", "nginx", "contour")
EDGE_PROVIDERS += ("gloo",)
EDGE_PROVIDERS += ("traefik", "apisix", "skipper")  # an IngressRoute, an ApisixRoute, a Skipper Ingress
SKIPPER_WEIGHTS = "zalando.org/backend-weights"
SKIPPER_PREDICATE = "zalando.org/skipper-predicate"


@dataclass(frozen=True)
class World:
    """The live objects routing depends on (plain dicts as the API serves them)."""

    deployments: Sequence[Obj] = ()
    daemonsets: Sequence[Obj] = ()  # served as Deployments are: by their ready pods
    services: Sequence[Obj] = ()
    ingresses: Sequence[Obj] = ()
    httproutes: Sequence[Obj] = ()  # gateway.networking.k8s.io
    virtualservices: Sequence[Obj] = ()
    linkerd_routes: Sequence[Obj] = ()  # policy.linkerd.io HTTPRoutes
    trafficsplits: Sequence[Obj] = ()
    releases: Sequence[Obj] = ()  # Canary and BlueGreen objects
    trafficroutes: Sequence[Obj] = ()  # kuma.io TrafficRoutes (cluster-scoped)
    appmesh_services: Sequence[Obj] = ()  # appmesh.k8s.aws VirtualServices
    appmesh_routers: Sequence[Obj] = ()  # appmesh.k8s.aws VirtualRouters
    appmesh_nodes: Sequence[Obj] = ()  # appmesh.k8s.aws VirtualNodes
    httpproxies: Sequence[Obj] = ()  # projectcontour.io
    gloo_virtualservices: Sequence[Obj] = ()  # gateway.solo.io
    routetables: Sequence[Obj] = ()  # gateway.solo.io
    upstreams: Sequence[Obj] = ()  # gloo.solo.io
    knative_services: Sequence[Obj] = ()  # serving.knative.dev Services
    ingressroutes: Sequence[Obj] = ()  # traefik.io IngressRoutes
    traefikservices: Sequence[Obj] = ()
    apisixroutes: Sequence[Obj] = ()


@dataclass(frozen=True)
class Entry:
    """Where one stream of client requests comes in: an HTTPRoute, an Ingress or a Service."""

    kind: str
    namespace: str
    name: str


@dataclass(frozen=True)
class Hop:
    """One way a request can end: the Deployment (or DaemonSet) serving it and how it got there."""

    deployment: str
    service: str  # the Service it reached the pods through
    port: int
    ingress: str = ""  # the (non-canary) nginx Ingress that served it, if any
    canary: str = ""  # ingress-nginx's canary upstream (`<ns>-<service>-<port>`), "" for the main backend
    cluster: str = ""  # the Envoy cluster of Contour's or Gloo's proxy that sent it, if one did
    route: str = ""  # the edge proxy's name for what served it (Traefik's service, APISIX's or Skipper's route)


@dataclass(frozen=True)
class Share:
    hop: Hop
    fraction: float  # of the entry's requests (plain or matched)
    set_cookie: str = ""  # the Set-Cookie the route adds to responses through this share


@dataclass(frozen=True)
class Sticky:
    """A session-affinity rule: requests whose Cookie header matches `pattern` take its shares."""

    pattern: str
    shares: tuple[Share, ...]


@dataclass(frozen=True)
class Split:
    """How the requests of one entry are shared out; `matched` is None when no rule needs a match;
    `mirrored` are copies of the plain requests (fractions of them), `sticky` the cookie rules."""

    entry: Entry
    provider: str
    plain: tuple[Share, ...]
    matched: tuple[Share, ...] | None = field(default=None)
    mirrored: tuple[Share, ...] = ()
    sticky: tuple[Sticky, ...] = ()

    @property
    def affinity(self) -> bool:
        """Whether requests must be routed one client at a time (their cookies decide)."""
        return bool(self.sticky) or any(s.set_cookie for s in self.plain)


def shares_for(split: Split, cookies: Mapping[str, str]) -> tuple[Share, ...]:
    """Where a plain request from a client holding `cookies` goes: the first sticky rule its Cookie
    header matches (proxies match the regex against the whole header), else the plain shares."""
    header = "; ".join(f"{k}={v}" for k, v in cookies.items())
    for rule in split.sticky:
        if header and re.fullmatch(rule.pattern, header):
            return rule.shares
    return split.plain


def set_cookie(jar: dict[str, str], value: str) -> None:
    """A browser taking a Set-Cookie: `name=value; Max-Age=N` stores it, Max-Age <= 0 deletes it."""
    pair, *attributes = [part.strip() for part in value.split(";")]
    name, _, cookie = pair.partition("=")
    if not name:
        return
    for attribute in attributes:
        key, _, number = attribute.partition("=")
        if key.lower() == "max-age" and number.lstrip("-").isdigit() and int(number) <= 0:
            jar.pop(name, None)
            return
    jar[name] = cookie


# --- small readers --------------------------------------------------------------------------------


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _ns(obj: Obj) -> str:
    return str(_meta(obj).get("namespace") or "default")


def _name(obj: Obj) -> str:
    return str(_meta(obj).get("name") or "")


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def _in(objs: Iterable[Obj], namespace: str) -> list[Obj]:
    return [o for o in objs if _ns(o) == namespace]


def _number(value: Any, default: float = 0.0) -> float:
    """A weight: a number, a numeric string, or a Kubernetes quantity such as `500m`."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip() if value is not None else ""
    try:
        return float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        return default


def _service(world: World, namespace: str, name: str) -> Obj | None:
    return next((s for s in world.services if _ns(s) == namespace and _name(s) == name), None)


def _service_port(world: World, namespace: str, name: str) -> int:
    ports = _spec(_service(world, namespace, name) or {}).get("ports") or []
    return int(_number((ports[0] or {}).get("port"), 80)) if ports else 80


def _host_service(world: World, namespace: str, host: str) -> str | None:
    """The Service a mesh host names (`svc`, `svc.ns`, `svc.ns.svc.cluster.local`), if one exists here."""
    parts = host.split(".")
    if len(parts) == 1 or (len(parts) >= 2 and parts[1] == namespace and (len(parts) == 2 or parts[2] == "svc")):
        return parts[0] if _service(world, namespace, parts[0]) is not None else None
    return None


def _ready(workload: Obj) -> int:
    """Ready pods: a Deployment's `readyReplicas`, a DaemonSet's `numberReady`."""
    status = workload.get("status") or {}
    return int(_number(status.get("numberReady" if workload.get("kind") == "DaemonSet" else "readyReplicas"), 0))


def workloads(world: World) -> list[Obj]:
    """The objects that run pods: Deployments and DaemonSets."""
    return [*world.deployments, *world.daemonsets]


# --- Services to Deployments ----------------------------------------------------------------------


def endpoints(world: World, namespace: str, service: str) -> list[tuple[str, float]]:
    """The workloads a Service sends to, each with its share (by ready pods); [] when none is ready."""
    svc = _service(world, namespace, service)
    selector = {str(k): str(v) for k, v in (_spec(svc or {}).get("selector") or {}).items()}
    if svc is None or not selector:
        return []
    ready: list[tuple[str, int]] = []
    for d in _in(workloads(world), namespace):
        labels = ((_spec(d).get("template") or {}).get("metadata") or {}).get("labels") or {}
        if all(str(labels.get(k)) == v for k, v in selector.items()) and _ready(d) > 0:
            ready.append((_name(d), _ready(d)))
    total = sum(n for _, n in ready)
    return [(name, n / total) for name, n in sorted(ready)]


def _weighted(world: World, namespace: str, backends: Sequence[tuple[str, int, float]], *,
              ingress: str = "", canaries: frozenset[str] = frozenset()) -> tuple[Share, ...]:
    """Shares for (service, port, weight) backends; a backend in `canaries` is an nginx canary upstream."""
    total = sum(max(w, 0.0) for _, _, w in backends)
    if total <= 0:
        return ()
    out: list[Share] = []
    for service, port, weight in backends:
        if weight <= 0:
            continue
        canary = f"{namespace}-{service}-{port}" if service in canaries else ""
        for deployment, part in endpoints(world, namespace, service):
            hop = Hop(deployment, service, port, ingress=ingress, canary=canary)
            out.append(Share(hop, weight / total * part))
    return tuple(out)


# --- rule order (HTTPRoute and VirtualService) ----------------------------------------------------


def _needs_match(condition: Obj) -> bool:
    """Whether a request must carry something special (headers, cookies, query, source) to match."""
    return any(condition.get(k) for k in ("headers", "queryParams", "sourceLabels"))


def _plain_ok(conditions: Sequence[Obj]) -> bool:
    """A rule an ordinary request takes: no conditions, or one needing no headers (paths always fit)."""
    return not conditions or any(not _needs_match(c) for c in conditions)


def _rule_order(rules: Sequence[Obj], matches_key: str) -> tuple[Obj | None, Obj | None]:
    """(the rule plain requests take, the rule matched requests take or None without an A/B rule)."""
    ab = next((i for i, r in enumerate(rules) if any(_needs_match(c) for c in r.get(matches_key) or [])), None)
    plain = next((r for r in rules if _plain_ok(r.get(matches_key) or [])), None)
    if ab is None:
        return plain, None
    matched = next((r for i, r in enumerate(rules) if i == ab or _plain_ok(r.get(matches_key) or [])), None)
    return plain, matched


def _backend_refs(world: World, namespace: str, rule: Obj | None) -> list[tuple[str, int, float]]:
    out: list[tuple[str, int, float]] = []
    for ref in (rule or {}).get("backendRefs") or []:
        if str(ref.get("kind") or "Service") != "Service" or str(ref.get("group") or "") not in ("", "core"):
            continue
        name = str(ref.get("name"))
        port = int(_number(ref.get("port"), 0)) or _service_port(world, namespace, name)
        out.append((name, port, _number(ref.get("weight"), 1.0)))  # Gateway API: weight defaults to 1
    return out


def _httproute_cookie(condition: Obj) -> str | None:
    """The Cookie-header regex of an HTTPRoute match that tests only the Cookie header."""
    headers = condition.get("headers") or []
    if len(headers) == 1 and str(headers[0].get("name", "")).lower() == "cookie" and not condition.get("queryParams"):
        value = str(headers[0].get("value") or "")
        return value if headers[0].get("type") == "RegularExpression" else re.escape(value)
    return None


def _filter_cookie(filters: Sequence[Obj]) -> str:
    for f in filters or []:
        for h in (f.get("responseHeaderModifier") or {}).get("add") or []:
            if str(h.get("name", "")).lower() == "set-cookie":
                return str(h.get("value") or "")
    return ""


def _httproute_shares(world: World, ns: str, rule: Obj | None) -> tuple[Share, ...]:
    shares = _weighted(world, ns, _backend_refs(world, ns, rule))
    rule_cookie = _filter_cookie((rule or {}).get("filters") or [])
    cookies = {str(b.get("name")): _filter_cookie(b.get("filters") or [])
               for b in (rule or {}).get("backendRefs") or []}
    return tuple(replace(s, set_cookie=cookies.get(s.hop.service) or rule_cookie) for s in shares)


def _httproute_mirrors(world: World, ns: str, rule: Obj | None) -> tuple[Share, ...]:
    out: list[Share] = []
    for f in (rule or {}).get("filters") or []:
        mirror = f.get("requestMirror") or {}
        ref = mirror.get("backendRef") or {}
        if f.get("type") != "RequestMirror" or not ref.get("name"):
            continue
        part = _number(mirror.get("percent"), 100.0) / 100
        fraction = mirror.get("fraction") or {}
        if fraction:
            part = _number(fraction.get("numerator")) / (_number(fraction.get("denominator"), 100.0) or 100.0)
        name = str(ref["name"])
        port = int(_number(ref.get("port"), 0)) or _service_port(world, ns, name)
        out += [Share(s.hop, s.fraction * part) for s in _weighted(world, ns, [(name, port, 1.0)])]
    return tuple(out)


def _only_cookies(conditions: Sequence[Obj], cookie_of: Any) -> bool:
    return bool(conditions) and all(cookie_of(c) for c in conditions)


def _httproute_split(world: World, route: Obj, entry: Entry, provider: str) -> Split:
    ns = _ns(route)
    rules = _spec(route).get("rules") or []
    sticky: list[Sticky] = []
    if any(_filter_cookie(r.get("filters") or []) or any(_filter_cookie(b.get("filters") or [])
                                                         for b in r.get("backendRefs") or []) for r in rules):
        for r in rules:
            if _only_cookies(r.get("matches") or [], _httproute_cookie):
                sticky += [Sticky(str(_httproute_cookie(m)), _httproute_shares(world, ns, r)) for m in r["matches"]]
        rules = [r for r in rules if not _only_cookies(r.get("matches") or [], _httproute_cookie)]
    plain, matched = _rule_order(rules, "matches")
    return Split(entry, provider, _httproute_shares(world, ns, plain),
                 None if matched is None else _weighted(world, ns, _backend_refs(world, ns, matched)),
                 _httproute_mirrors(world, ns, plain), tuple(sticky))


def _destinations(world: World, namespace: str, route: Obj | None) -> list[tuple[str, int, float]]:
    dests = (route or {}).get("route") or []
    out: list[tuple[str, int, float]] = []
    for d in dests:
        target = d.get("destination") or {}
        service = _host_service(world, namespace, str(target.get("host") or ""))
        if service is None:
            continue
        port = int(_number((target.get("port") or {}).get("number"), 0)) or _service_port(world, namespace, service)
        # Istio: a lone destination takes everything; with several, a missing weight is 0.
        weight = _number(d.get("weight"), 100.0 if len(dests) == 1 else 0.0)
        out.append((service, port, weight))
    return out


def _vs_cookie(condition: Obj) -> str | None:
    """The Cookie-header regex of a VirtualService match that tests only the Cookie header."""
    headers = condition.get("headers") or {}
    if len(headers) == 1 and not any(condition.get(k) for k in ("queryParams", "sourceLabels")):
        name, value = next(iter(headers.items()))
        if str(name).lower() == "cookie":
            return str(value.get("regex")) if value.get("regex") else re.escape(str(value.get("exact") or ""))
    return None


def _headers_cookie(obj: Obj) -> str:
    add = (((obj.get("headers") or {}).get("response") or {}).get("add")) or {}
    return next((str(v) for k, v in add.items() if str(k).lower() == "set-cookie"), "")


def _vs_shares(world: World, ns: str, route: Obj | None) -> tuple[Share, ...]:
    shares = _weighted(world, ns, _destinations(world, ns, route))
    route_cookie = _headers_cookie(route or {})
    cookies: dict[str, str] = {}
    for d in (route or {}).get("route") or []:
        service = _host_service(world, ns, str((d.get("destination") or {}).get("host") or ""))
        if service:
            cookies[service] = _headers_cookie(d)
    return tuple(replace(s, set_cookie=cookies.get(s.hop.service) or route_cookie) for s in shares)


def _vs_mirrors(world: World, ns: str, route: Obj | None) -> tuple[Share, ...]:
    mirror = (route or {}).get("mirror") or {}
    service = _host_service(world, ns, str(mirror.get("host") or ""))
    if service is None:
        return ()
    part = _number(((route or {}).get("mirrorPercentage") or {}).get("value"), 100.0) / 100
    port = int(_number((mirror.get("port") or {}).get("number"), 0)) or _service_port(world, ns, service)
    return tuple(Share(s.hop, s.fraction * part) for s in _weighted(world, ns, [(service, port, 1.0)]))


def _virtualservice_split(world: World, vs: Obj, entry: Entry) -> Split:
    ns = _ns(vs)
    routes = _spec(vs).get("http") or []
    sticky: list[Sticky] = []
    if any(_headers_cookie(r) or any(_headers_cookie(d) for d in r.get("route") or []) for r in routes):
        for r in routes:
            if _only_cookies(r.get("match") or [], _vs_cookie):
                sticky += [Sticky(str(_vs_cookie(m)), _vs_shares(world, ns, r)) for m in r["match"]]
        routes = [r for r in routes if not _only_cookies(r.get("match") or [], _vs_cookie)]
    if not routes:
        routes = _spec(vs).get("tcp") or []  # a TCP service: its connections follow the tcp route
    plain, matched = _rule_order(routes, "match")
    return Split(entry, "istio", _vs_shares(world, ns, plain),
                 None if matched is None else _weighted(world, ns, _destinations(world, ns, matched)),
                 _vs_mirrors(world, ns, plain), tuple(sticky))


def _trafficsplit_split(world: World, ts: Obj, entry: Entry) -> Split:
    ns = _ns(ts)
    backends = [(str(b.get("service")), _service_port(world, ns, str(b.get("service"))), _number(b.get("weight")))
                for b in _spec(ts).get("backends") or []]
    return Split(entry, "smi", _weighted(world, ns, backends))


# --- Kuma ---------------------------------------------------------------------------------------------

KUMA_SERVICE = "kuma.io/service"


def _kuma_tag(tag: Any) -> tuple[str, str, int] | None:
    """(service, namespace, port) of a `kuma.io/service` tag `<service>_<namespace>_svc_<port>`."""
    parts = str(tag or "").split("_")
    if len(parts) != 4 or parts[2] != "svc" or not parts[3].isdigit():
        return None
    return parts[0], parts[1], int(parts[3])


def _trafficroute_apexes(route: Obj) -> list[tuple[str, str]]:
    tags = [_kuma_tag((d.get("match") or {}).get(KUMA_SERVICE)) for d in _spec(route).get("destinations") or []]
    return [(ns, service) for service, ns, _ in (t for t in tags if t is not None)]


def _trafficroute_split(world: World, route: Obj, entry: Entry) -> Split:
    """Kuma splits by the destinations' tags; weights are relative (not percentages), 0 is ignored."""
    backends: list[tuple[str, int, float]] = []
    for part in (_spec(route).get("conf") or {}).get("split") or []:
        tag = _kuma_tag((part.get("destination") or {}).get(KUMA_SERVICE))
        if tag is not None and tag[1] == entry.namespace:
            backends.append((tag[0], tag[2], _number(part.get("weight"))))
    return Split(entry, "kuma", _weighted(world, entry.namespace, backends))


# --- App Mesh -----------------------------------------------------------------------------------------


def _appmesh_host(vs: Obj) -> str:
    """The name a VirtualService answers to: `awsName`, by default `<name>.<namespace>` (the controller's)."""
    return str(_spec(vs).get("awsName") or f"{_name(vs)}.{_ns(vs)}")


def _appmesh_node_backend(world: World, ns: str, node_name: str, weight: float) -> tuple[str, int, float] | None:
    """A VirtualNode as (Service, port, weight): the Service its DNS service discovery names."""
    node = next((n for n in _in(world.appmesh_nodes, ns) if _name(n) == node_name), None)
    hostname = str(((_spec(node or {}).get("serviceDiscovery") or {}).get("dns") or {}).get("hostname") or "")
    service = _host_service(world, ns, hostname.rstrip("."))
    return None if service is None else (service, _service_port(world, ns, service), weight)


def _appmesh_targets(world: World, ns: str, route: Obj | None) -> list[tuple[str, int, float]]:
    action = (((route or {}).get("httpRoute") or {}).get("action")) or {}
    found = [_appmesh_node_backend(world, ns, str((t.get("virtualNodeRef") or {}).get("name") or ""),
                                   _number(t.get("weight"))) for t in action.get("weightedTargets") or []]
    return [b for b in found if b is not None]


def _appmesh_split(world: World, vs: Obj, entry: Entry) -> Split:
    """A VirtualService's requests: through its VirtualRouter's HTTP routes (by priority, 0 first; a
    route without one after them), or straight to its VirtualNode."""
    ns, provider = _ns(vs), _spec(vs).get("provider") or {}
    node_ref = ((provider.get("virtualNode") or {}).get("virtualNodeRef") or {}).get("name")
    if node_ref:
        backend = _appmesh_node_backend(world, ns, str(node_ref), 1.0)
        return Split(entry, "appmesh", _weighted(world, ns, [backend] if backend else []))
    router_name = ((provider.get("virtualRouter") or {}).get("virtualRouterRef") or {}).get("name")
    router = next((r for r in _in(world.appmesh_routers, ns) if _name(r) == router_name), None)
    routes = [r for r in _spec(router or {}).get("routes") or [] if isinstance(r.get("httpRoute"), Mapping)]
    ordered = sorted(enumerate(routes), key=lambda ir: (_number(ir[1].get("priority"), 1001.0), ir[0]))
    # as conditions `_rule_order` reads: a route with header matches needs a request that carries them
    rules = [{"match": [{"headers": (r["httpRoute"].get("match") or {}).get("headers")}], "route": r}
             for _, r in ordered]
    plain, matched = _rule_order(rules, "match")
    return Split(entry, "appmesh", _weighted(world, ns, _appmesh_targets(world, ns, (plain or {}).get("route"))),
                 None if matched is None else _weighted(world, ns, _appmesh_targets(world, ns, matched.get("route"))))


# --- nginx ----------------------------------------------------------------------------------------


def _annotations(obj: Obj) -> Mapping[str, Any]:
    return _meta(obj).get("annotations") or {}


def _is_canary_ingress(ingress: Obj) -> bool:
    return str(_annotations(ingress).get(NGINX_CANARY, "")).lower() == "true"


def _ingress_paths(ingress: Obj) -> list[tuple[str, str, Obj]]:
    """(host, path, backend service) of every path, and ("*", "*", ...) for the default backend."""
    spec = _spec(ingress)
    out: list[tuple[str, str, Obj]] = []
    for rule in spec.get("rules") or []:
        for p in (rule.get("http") or {}).get("paths") or []:
            service = (p.get("backend") or {}).get("service")
            if service:
                out.append((str(rule.get("host") or ""), str(p.get("path") or "/"), service))
    default = (spec.get("defaultBackend") or {}).get("service")
    if default:
        out.append(("*", "*", default))
    return out


def _ingress_backend(world: World, ingress: Obj, at: tuple[str, str] | None = None) -> tuple[str, int] | None:
    """The Service (and port) serving `at` (host, path), or the first path's when `at` is None."""
    for host, path, service in _ingress_paths(ingress):
        if at is None or (host, path) == at:
            name = str(service.get("name"))
            port = int(_number((service.get("port") or {}).get("number"), 0)) or _service_port(
                world, _ns(ingress), name)
            return name, port
    return None


def _nginx_split(world: World, main: Obj) -> Split:
    ns, entry = _ns(main), Entry("Ingress", _ns(main), _name(main))
    first = next(iter(_ingress_paths(main)), None)
    primary = _ingress_backend(world, main)
    if first is None or primary is None:
        return Split(entry, "nginx", ())
    at = (first[0], first[1])
    canary_ing = next((i for i in _in(world.ingresses, ns) if _is_canary_ingress(i)
                       and any((h, p) == at for h, p, _ in _ingress_paths(i))), None)
    canary = _ingress_backend(world, canary_ing, at) if canary_ing is not None else None
    if canary_ing is None or canary is None:
        return Split(entry, "nginx", _weighted(world, ns, [(*primary, 1.0)], ingress=_name(main)))
    notes = _annotations(canary_ing)
    total = _number(notes.get(NGINX_WEIGHT_TOTAL), 100.0) or 100.0
    weight = min(max(_number(notes.get(NGINX_WEIGHT), 0.0), 0.0), total)
    kw: dict[str, Any] = {"ingress": _name(main), "canaries": frozenset({canary[0]})}
    plain = _weighted(world, ns, [(*primary, total - weight), (*canary, weight)], **kw)
    by_match = notes.get(NGINX_BY_HEADER) or notes.get(NGINX_BY_COOKIE)
    return Split(entry, "nginx", plain, _weighted(world, ns, [(*canary, 1.0)], **kw) if by_match else None)


# --- Contour and Gloo Edge (Envoy at the edge) ----------------------------------------------------


def _with_clusters(shares: tuple[Share, ...], clusters: Mapping[str, str]) -> tuple[Share, ...]:
    """The shares with the Envoy cluster each backend Service is reached through."""
    return tuple(replace(s, hop=replace(s.hop, cluster=clusters.get(s.hop.service, ""))) for s in shares)


def _contour_routes(world: World, proxy: Obj, seen: frozenset[tuple[str, str]] = frozenset()) -> list[Obj]:
    """A proxy's routes, then those of the proxies it includes (in order; a cycle stops)."""
    key = (_ns(proxy), _name(proxy))
    if key in seen:
        return []
    routes: list[Obj] = [{**r, "_namespace": _ns(proxy)} for r in _spec(proxy).get("routes") or []]
    for include in _spec(proxy).get("includes") or []:
        ns, name = str(include.get("namespace") or _ns(proxy)), str(include.get("name") or "")
        child = next((p for p in world.httpproxies if (_ns(p), _name(p)) == (ns, name)), None)
        if child is not None:
            routes += _contour_routes(world, child, seen | {key})
    return routes


def _contour_shares(world: World, route: Obj | None, *, mirror: bool = False) -> tuple[Share, ...]:
    """A route's weighted services (Contour: a missing weight is 0; all 0 splits evenly), or its mirror."""
    if route is None:
        return ()
    ns = str(route["_namespace"])
    services = [s for s in route.get("services") or [] if bool(s.get("mirror")) == mirror]
    weights = [_number(s.get("weight"), 0.0) for s in services]
    if not any(w > 0 for w in weights):
        weights = [1.0] * len(services)
    backends = [(str(s.get("name")), int(_number(s.get("port"), 0)) or _service_port(world, ns, str(s.get("name"))), w)
                for s, w in zip(services, weights, strict=True)]
    return _with_clusters(_weighted(world, ns, backends), {b: f"{ns}_{b}_{port}" for b, port, _ in backends})


def _contour_split(world: World, root: Obj) -> Split:
    routes = _contour_routes(world, root)
    header = [any(c.get("header") for c in r.get("conditions") or []) for r in routes]
    plain = next((r for r, h in zip(routes, header, strict=True) if not h), None)
    matched = next((r for r, h in zip(routes, header, strict=True) if h), None)
    return Split(Entry("HTTPProxy", _ns(root), _name(root)), "contour", _contour_shares(world, plain),
                 None if matched is None else _contour_shares(world, matched),
                 _contour_shares(world, plain, mirror=True))


def _gloo_routes(world: World, vs: Obj) -> list[Obj]:
    """The VirtualService's routes, each delegating one replaced by the delegated RouteTable's routes."""
    out: list[Obj] = []
    for r in (_spec(vs).get("virtualHost") or {}).get("routes") or []:
        delegate = r.get("delegateAction")
        if not delegate:
            out.append({**r, "_namespace": _ns(vs)})
            continue
        ref = delegate.get("ref") or delegate
        ns, name = str(ref.get("namespace") or _ns(vs)), str(ref.get("name") or "")
        table = next((t for t in world.routetables if (_ns(t), _name(t)) == (ns, name)), None)
        out += [{**t, "_namespace": ns} for t in _spec(table or {}).get("routes") or []]
    return out


def _gloo_shares(world: World, route: Obj | None) -> tuple[Share, ...]:
    """A route's upstreams (Kubernetes upstreams of Services) by weight; Gloo's cluster is `<name>_<ns>`."""
    if route is None:
        return ()
    action = route.get("routeAction") or {}
    dests = (action.get("multi") or {}).get("destinations") or []
    if not dests and action.get("single"):
        dests = [{"destination": action["single"], "weight": 1}]
    backends: list[tuple[str, int, float]] = []
    clusters: dict[str, str] = {}
    for d in dests:
        ref = (d.get("destination") or {}).get("upstream") or {}
        ns, name = str(ref.get("namespace") or route["_namespace"]), str(ref.get("name") or "")
        upstream = next((u for u in world.upstreams if (_ns(u), _name(u)) == (ns, name)), None)
        kube = _spec(upstream or {}).get("kube") or {}
        if not kube.get("serviceName"):
            continue
        service = str(kube["serviceName"])
        port = int(_number(kube.get("servicePort"), 0)) or _service_port(world, ns, service)
        backends.append((service, port, _number(d.get("weight"), 0.0)))
        clusters[service] = f"{name}_{ns}"
    return _with_clusters(_weighted(world, str(route["_namespace"]), backends), clusters)


def _gloo_split(world: World, vs: Obj) -> Split:
    routes = _gloo_routes(world, vs)
    needs = [any(m.get("headers") or m.get("queryParameters") or m.get("methods") for m in r.get("matchers") or [])
             for r in routes]
    plain = next((r for r, n in zip(routes, needs, strict=True) if not n), None)
    matched = next((r for r, n in zip(routes, needs, strict=True) if n), None)
    return Split(Entry("VirtualService.gateway.solo.io", _ns(vs), _name(vs)), "gloo", _gloo_shares(world, plain),
                 None if matched is None else _gloo_shares(world, matched))


# --- Knative --------------------------------------------------------------------------------------


KNATIVE_DEPLOYMENT_SUFFIX = "-deployment"  # Knative runs Revision `r` as Deployment `r-deployment`


def _knative_split(world: World, service: Obj) -> Split:
    """A Knative Service's requests, shared out by the split Knative applied (`status.traffic`,
    each entry naming its Revision) among the Revisions' Deployments that have ready pods. A hop's
    `service` is the Revision: Knative's Envoy ingress names its upstream cluster `<ns>/<revision>`."""
    ns, entry = _ns(service), Entry("KnativeService", _ns(service), _name(service))
    targets = [t for t in (service.get("status") or {}).get("traffic") or [] if t.get("revisionName")]
    total = sum(max(_number(t.get("percent")), 0.0) for t in targets)
    shares: list[Share] = []
    for target in targets:
        revision, weight = str(target["revisionName"]), max(_number(target.get("percent")), 0.0)
        name = f"{revision}{KNATIVE_DEPLOYMENT_SUFFIX}"
        deployment = next((d for d in _in(world.deployments, ns) if _name(d) == name), None)
        if total <= 0 or weight <= 0 or deployment is None or _ready(deployment) <= 0:
            continue
        shares.append(Share(Hop(name, revision, 80), weight / total))
    return Split(entry, "knative", tuple(shares))


# --- Skipper ----------------------------------------------------------------------------------------

_NON_WORD = re.compile(r"[^0-9A-Za-z_]")


def _is_skipper(ingress: Obj) -> bool:
    """An Ingress of Skipper's class (by `ingressClassName` or the older class annotation)."""
    cls = _spec(ingress).get("ingressClassName") or _annotations(ingress).get("kubernetes.io/ingress.class")
    return str(cls or "") == "skipper"


def _is_skipper_canary(ingress: Obj) -> bool:
    """An Ingress carrying Skipper's backend weights: its routes join those of the Ingress for the same
    host and path (a Skipper canary Ingress), it is no entry of its own."""
    return SKIPPER_WEIGHTS in _annotations(ingress)


def _skipper_route_id(namespace: str, ingress: str, host: str, path: str, service: str) -> str:
    """Skipper's route id for an Ingress path (dataclients/kubernetes routeID): non-word characters as `_`."""
    parts = [_NON_WORD.sub("_", v) for v in (namespace, ingress, host, path, service)]
    return "kube_{}__{}__{}__{}__{}".format(*parts)


def _skipper_enabled(ingress: Obj) -> bool:
    predicates = [p.strip() for p in str(_annotations(ingress).get(SKIPPER_PREDICATE, "")).split("&&")]
    return "False()" not in predicates


def _skipper_backends(world: World, ingress: Obj, at: tuple[str, str]) -> list[tuple[str, int, float, str]]:
    """(service, port, weight, route id) of every path of `ingress` at (host, path), weighted as Skipper
    shares them: by `backend-weights` among the backends it names (the others get nothing), equally
    when it names none."""
    ns = _ns(ingress)
    try:
        named = json.loads(str(_annotations(ingress).get(SKIPPER_WEIGHTS) or "{}"))
    except ValueError:
        named = {}
    named = named if isinstance(named, dict) else {}
    out: list[tuple[str, int, float, str]] = []
    for host, path, service in _ingress_paths(ingress):
        if (host, path) != at:
            continue
        name = str(service.get("name"))
        port = int(_number((service.get("port") or {}).get("number"), 0)) or _service_port(world, ns, name)
        weight = _number(named.get(name), 0.0) if named else 1.0
        out.append((name, port, weight, _skipper_route_id(ns, _name(ingress), host, path, name)))
    return out


def _skipper_split(world: World, main: Obj) -> Split:
    """Requests through a Skipper Ingress: an enabled canary Ingress (backend weights, no False()
    predicate) for the same host and path takes them (its Weight(100) predicate outranks the main
    Ingress's route), else the main Ingress's own backend does."""
    ns, entry = _ns(main), Entry("Ingress", _ns(main), _name(main))
    first = next(iter(_ingress_paths(main)), None)
    if first is None:
        return Split(entry, "skipper", ())
    at = (first[0], first[1])
    canary = next((i for i in _in(world.ingresses, ns) if _is_skipper_canary(i) and _skipper_enabled(i)
                   and any((h, p) == at for h, p, _ in _ingress_paths(i))), None)
    backends = _skipper_backends(world, canary if canary is not None else main, at)
    if canary is None:
        backends = backends[:1]
    return Split(entry, "skipper", _edge_weighted(world, ns, backends))


def _edge_weighted(world: World, namespace: str, backends: Sequence[tuple[str, int, float, str]]) -> tuple[Share, ...]:
    """Shares for (service, port, weight, the proxy's name for that backend's route) backends."""
    shares = _weighted(world, namespace, [(s, p, w) for s, p, w, _ in backends])
    routes = {s: r for s, _, _, r in backends}
    return tuple(replace(share, hop=replace(share.hop, route=routes[share.hop.service])) for share in shares)


# --- Traefik --------------------------------------------------------------------------------------

_TRAEFIK_DEPTH = 5  # TraefikServices may name TraefikServices; a cycle ends here


def _traefik_services(world: World, namespace: str, services: Sequence[Obj], share: float,
                      depth: int = 0) -> list[tuple[str, int, float, str]]:
    """Leaf Services of a weighted round robin (an IngressRoute's services or a TraefikService's
    `weighted.services`), each with its share of `share`; a missing weight is Traefik's 1."""
    total = sum(max(_number(s.get("weight"), 1.0), 0.0) for s in services)
    out: list[tuple[str, int, float, str]] = []
    if total <= 0 or depth > _TRAEFIK_DEPTH:
        return out
    for s in services:
        part = share * max(_number(s.get("weight"), 1.0), 0.0) / total
        ns, name = str(s.get("namespace") or namespace), str(s.get("name") or "")
        if part <= 0 or not name or ns != namespace:
            continue
        if str(s.get("kind") or "Service") == "TraefikService":
            ts = next((t for t in _in(world.traefikservices, ns) if _name(t) == name), None)
            weighted = ((_spec(ts).get("weighted") or {}).get("services") or []) if ts is not None else []
            out += _traefik_services(world, ns, weighted, part, depth + 1)
            continue
        port = int(_number(s.get("port"), 0)) or _service_port(world, ns, name)
        out.append((name, port, part, f"{ns}-{name}-{port}@kubernetescrd"))
    return out


def _traefik_split(world: World, route: Obj) -> Split:
    """Requests through a Traefik IngressRoute: its first route's services, weighted round robin down to
    the Kubernetes Services (Traefik names each `<ns>-<service>-<port>@kubernetescrd`)."""
    ns, entry = _ns(route), Entry("IngressRoute", _ns(route), _name(route))
    rule = next((r for r in _spec(route).get("routes") or [] if r.get("services")), None)
    leaves = _traefik_services(world, ns, (rule or {}).get("services") or [], 1.0)
    merged: dict[tuple[str, int, str], float] = {}
    for name, port, part, label in leaves:
        merged[(name, port, label)] = merged.get((name, port, label), 0.0) + part
    return Split(entry, "traefik", _edge_weighted(world, ns, [(n, p, w, r) for (n, p, r), w in merged.items()]))


# --- APISIX ---------------------------------------------------------------------------------------


def _apisix_splits(world: World) -> list[Split]:
    """Requests through APISIX: one stream per distinct match (hosts and paths) of the ApisixRoutes' http
    rules, entering at the lowest-priority route (the user's); the highest-priority rule for that match
    serves it (Flagger's canary route, at 10000), by its backends' weights (100 when unset). APISIX
    labels each request with the route `<ns>_<ApisixRoute>_<rule>`."""
    groups: dict[tuple[str, tuple[str, ...], tuple[str, ...]], list[tuple[float, str, Obj]]] = {}
    for route in world.apisixroutes:
        for rule in _spec(route).get("http") or []:
            match = rule.get("match") or {}
            key = (_ns(route), tuple(sorted(map(str, match.get("hosts") or []))),
                   tuple(sorted(map(str, match.get("paths") or []))))
            groups.setdefault(key, []).append((_number(rule.get("priority"), 0.0), _name(route), rule))
    out: list[Split] = []
    for (ns, _, _), rules in groups.items():
        entry_route = min(rules, key=lambda r: (r[0], r[1]))[1]
        _, name, rule = min(rules, key=lambda r: (-r[0], r[1]))
        label = f"{ns}_{name}_{rule.get('name') or ''}"
        backends = [(str(b.get("serviceName")), int(_number(b.get("servicePort"), 0))
                     or _service_port(world, ns, str(b.get("serviceName"))), _number(b.get("weight"), 100.0), label)
                    for b in rule.get("backends") or []]
        out.append(Split(Entry("ApisixRoute", ns, entry_route), "apisix", _edge_weighted(world, ns, backends)))
    return out


# --- entries --------------------------------------------------------------------------------------


def _release_apexes(release: Obj) -> list[tuple[str, str]]:
    """The apex Service of a mesh release; with provider kubernetes (and every BlueGreen) also its
    `-canary` Service, which a load tester calls as in Flagger's blue/green guide: without a mesh
    that is the only way the new version sees requests before it takes all traffic."""
    spec = _spec(release)
    provider = str(spec.get("provider") or "kubernetes")
    if provider.startswith(EDGE_PROVIDERS):
        return []
    if provider == "knative":
        return []  # its clients come through the Knative Service (`_knative_split`)
    name = (spec.get("service") or {}).get("name") or (spec.get("targetRef") or {}).get("name")
    if not name:
        return []
    found = [(_ns(release), str(name))]
    if provider == "kubernetes" or release.get("kind") == "BlueGreen":
        found.append((_ns(release), f"{name}-canary"))
    return found


def _apexes(world: World) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for route in world.linkerd_routes:
        for ref in _spec(route).get("parentRefs") or []:
            if str(ref.get("kind") or "") == "Service" and ref.get("name"):
                found.append((str(ref.get("namespace") or _ns(route)), str(ref["name"])))
    for ts in world.trafficsplits:
        if _spec(ts).get("service"):
            found.append((_ns(ts), str(_spec(ts)["service"])))
    for vs in world.virtualservices:
        for host in _spec(vs).get("hosts") or []:
            service = _host_service(world, _ns(vs), str(host))
            if service:
                found.append((_ns(vs), service))
    for route in world.trafficroutes:
        found += _trafficroute_apexes(route)
    found += [apex for release in world.releases for apex in _release_apexes(release)]
    behind_ingress = {(_ns(i), str(s.get("name"))) for i in world.ingresses if not _is_canary_ingress(i)
                      for _, _, s in _ingress_paths(i)}
    return [apex for apex in dict.fromkeys(found) if apex not in behind_ingress]


def split_for(world: World, namespace: str, service: str) -> Split:
    """The split of requests addressed to the Service `service` from inside the mesh."""
    entry = Entry("Service", namespace, service)
    for route in _in(world.linkerd_routes, namespace):
        if any(str(r.get("kind") or "") == "Service" and r.get("name") == service
               and str(r.get("namespace") or namespace) == namespace for r in _spec(route).get("parentRefs") or []):
            return _httproute_split(world, route, entry, "linkerd")
    for ts in _in(world.trafficsplits, namespace):
        if _spec(ts).get("service") == service:
            return _trafficsplit_split(world, ts, entry)
    for vs in _in(world.virtualservices, namespace):
        if any(_host_service(world, namespace, str(h)) == service for h in _spec(vs).get("hosts") or []):
            return _virtualservice_split(world, vs, entry)
    for route in world.trafficroutes:
        if (namespace, service) in _trafficroute_apexes(route):
            return _trafficroute_split(world, route, entry)
    for mesh_vs in _in(world.appmesh_services, namespace):
        if _host_service(world, namespace, _appmesh_host(mesh_vs)) == service:
            return _appmesh_split(world, mesh_vs, entry)
    port = _service_port(world, namespace, service)
    return Split(entry, "kubernetes", _weighted(world, namespace, [(service, port, 1.0)]))


def splits(world: World) -> list[Split]:
    """Every entry's split, in a stable order (see the module docstring for which entries exist)."""
    out = [_httproute_split(world, r, Entry("HTTPRoute", _ns(r), _name(r)), "gatewayapi")
           for r in world.httproutes]
    out += [_contour_split(world, p) for p in world.httpproxies if _spec(p).get("virtualhost")]
    out += [_gloo_split(world, vs) for vs in world.gloo_virtualservices]
    out += [_skipper_split(world, i) if _is_skipper(i) else _nginx_split(world, i)
            for i in world.ingresses if not _is_canary_ingress(i) and not _is_skipper_canary(i)]
    out += [_traefik_split(world, r) for r in world.ingressroutes]
    out += _apisix_splits(world)
    out += [split_for(world, ns, name) for ns, name in _apexes(world)]
    out += [_knative_split(world, service) for service in world.knative_services]
    return sorted(out, key=lambda s: (s.entry.namespace, s.entry.kind, s.entry.name))
