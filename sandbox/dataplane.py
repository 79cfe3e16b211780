"""The sandbox's simulated data plane: client load, routed by the live router objects, counted as
the meshes, ingresses and applications would count it, served on `/metrics` for Prometheus.

No pods run in the sandbox, yet canaries must be judged on real Prometheus queries. Every tick
(about a second of wall time) this engine reads the live objects from the store (on the sandbox's
own event loop, so it never races a write), asks `routing` where each entry's requests go, draws
how many requests arrived (Poisson), which of them carry the A/B match (binomial), where each went
(multinomial over the shares; one client at a time where session-affinity cookies decide), which
copies a mirroring route sends to the canary (their responses are dropped), which failed (binomial
at the pod's error rate) and how long each took (log-normal, see `pods`), and adds the results to
cumulative counters and histograms with exactly the series and labels the built-in queries of `analysis.templates` read:

- Istio: `istio_requests_total`, `istio_request_duration_milliseconds` (reporter="destination");
- Linkerd/SMI: `response_total`, `response_latency_ms` (direction="inbound");
- Open Service Mesh: `osm_request_total`, `osm_request_duration_ms` (destination_kind="Deployment");
- kubernetes (the application's own): `http_request_duration_seconds`, one series set per pod;
- Gateway API (Envoy): `envoy_cluster_upstream_rq`, `envoy_cluster_upstream_rq_time`, for requests
  that came through an HTTPRoute, cluster `<namespace>_<backend Service>_<port>`, and the same for
  Contour's Envoy (through an HTTPProxy) and Gloo's (through a VirtualService, cluster `<upstream>_<namespace>`);
- Kuma (Envoy): `envoy_cluster_upstream_rq`, `envoy_cluster_upstream_rq_time`, for requests a
  TrafficRoute split, `service` being the `kuma.io/service` tag `<Service>_<namespace>_svc_<port>`;
- App Mesh (Envoy): the same series, for requests a VirtualRouter routed, labelled by the pod
  (`kubernetes_namespace`, `kubernetes_pod_name`) as Prometheus's pod discovery labels them;
- Knative (Envoy, as Kourier runs it): the same Envoy series for requests that came through a
  Knative Service, cluster `<namespace>/<revision>`;
- ingress-nginx: `nginx_ingress_controller_requests`, `..._request_duration_seconds`, for requests
  that came through an Ingress, with `canary` set to the canary upstream when it served them;
- Traefik: `traefik_service_requests_total`, `traefik_service_request_duration_seconds`, for requests
  through an IngressRoute, `service` naming the Kubernetes Service `<ns>-<service>-<port>@kubernetescrd`;
- APISIX: `apisix_http_status`, `apisix_http_latency` (ms), by route `<ns>_<ApisixRoute>_<rule>`;
- Skipper: `skipper_response_duration_seconds`, `skipper_serve_route_duration_seconds`, by route id
  `kube_<ns>__<ingress>__<host>__<path>__<service>`, for requests through a Skipper Ingress.

Every served request is reported by both sidecars and the application, as if each pod ran them all,
so any provider's queries find data whatever the router. The Deployment's (or DaemonSet's) current
pod template decides the behaviour (during a template change, the old pods already answer as the new ones).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp.web
import numpy as np
import numpy.typing as npt

from rollout.api.kinds import GROUP, PLURALS, RELEASE_KINDS

from .metrics import Labels, Registry
from .pods import behaviour_of, pod_names, version_of
from .routing import Entry, Hop, Share, Split, World, set_cookie, shares_for, splits, workloads
from .store import ObjectStore

__all__ = ["DataPlane", "DataPlaneConfig", "read_world"]

logger = logging.getLogger(__name__)

# (group, plural) of each kind routing reads, by World field.
_KINDS: dict[str, tuple[str, str]] = {
    "deployments": ("apps", "deployments"),
    "daemonsets": ("apps", "daemonsets"),
    "services": ("", "services"),
    "ingresses": ("networking.k8s.io", "ingresses"),
    "httproutes": ("gateway.networking.k8s.io", "httproutes"),
    "virtualservices": ("networking.istio.io", "virtualservices"),
    "linkerd_routes": ("policy.linkerd.io", "httproutes"),
    "trafficsplits": ("split.smi-spec.io", "trafficsplits"),
    "trafficroutes": ("kuma.io", "trafficroutes"),
    "appmesh_services": ("appmesh.k8s.aws", "virtualservices"),
    "appmesh_routers": ("appmesh.k8s.aws", "virtualrouters"),
    "appmesh_nodes": ("appmesh.k8s.aws", "virtualnodes"),
    "httpproxies": ("projectcontour.io", "httpproxies"),
    "gloo_virtualservices": ("gateway.solo.io", "virtualservices"),
    "routetables": ("gateway.solo.io", "routetables"),
    "upstreams": ("gloo.solo.io", "upstreams"),
    "knative_services": ("serving.knative.dev", "services"),
    "ingressroutes": ("traefik.io", "ingressroutes"),
    "traefikservices": ("traefik.io", "traefikservices"),
    "apisixroutes": ("apisix.apache.org", "apisixroutes"),
}
_RELEASES = tuple((GROUP, PLURALS[kind]) for kind in RELEASE_KINDS)


@dataclass(frozen=True)
class DataPlaneConfig:
    """Settings of the simulated data plane.

    `rps` requests per second arrive at every entry (see `routing`); `match_fraction` of them carry
    the headers or cookies of an A/B rule; `seed` makes the draws repeatable; counters advance every
    `tick` seconds of wall time; on a route with session affinity the requests come from `clients`
clients per entry, each keeping its cookies. The metrics server binds `host`:`port` (0: a free port).
    """

    rps: float = 50.0
    seed: int = 0
    match_fraction: float = 0.1
    clients: int = 200  # distinct clients (cookie jars) per entry, for routes with session affinity
    tick: float = 1.0
    host: str = "127.0.0.1"
    port: int = 0

    def __post_init__(self) -> None:
        if self.rps < 0 or not 0 <= self.match_fraction <= 1 or self.tick <= 0:
            raise ValueError("DataPlaneConfig needs rps >= 0, 0 <= match_fraction <= 1 and tick > 0")


def read_world(store: ObjectStore) -> World:
    """The live objects routing needs, straight from the store (call on the sandbox's loop)."""
    by_group_plural = {(s.group, s.plural): s for s in store.specs()}

    def objects(group: str, plural: str) -> list[dict[str, Any]]:
        spec = by_group_plural.get((group, plural))
        return [obj for _, obj in store.live_objects(spec)] if spec is not None else []

    fields = {name: objects(*key) for name, key in _KINDS.items()}
    releases = [obj for key in _RELEASES for obj in objects(*key)]
    return World(**fields, releases=releases)


def _register(registry: Registry) -> None:
    registry.counter("istio_requests_total", "Requests, as Istio's sidecars count them.")
    registry.histogram("istio_request_duration_milliseconds", "Request duration, as Istio's sidecars see it.")
    registry.counter("response_total", "Responses, as Linkerd's proxies count them.")
    registry.histogram("response_latency_ms", "Response latency, as Linkerd's proxies see it.")
    registry.counter("osm_request_total", "Requests, as Open Service Mesh's sidecars count them.")
    registry.histogram("osm_request_duration_ms", "Request duration, as Open Service Mesh's sidecars see it.")
    registry.histogram("http_request_duration_seconds", "Request duration, as the application measures it.",
                       seconds=True)
    registry.counter("envoy_cluster_upstream_rq", "Upstream requests of Envoy's clusters (Gateway API, Contour, "
                     "Gloo, Kuma, App Mesh).")
    registry.histogram("envoy_cluster_upstream_rq_time", "Upstream request time of Envoy's clusters.")
    registry.counter("nginx_ingress_controller_requests", "Requests through ingress-nginx.")
    registry.histogram("nginx_ingress_controller_request_duration_seconds", "Request duration in ingress-nginx.",
                       seconds=True)
    registry.counter("traefik_service_requests_total", "Requests of Traefik's services.")
    registry.histogram("traefik_service_request_duration_seconds", "Request duration of Traefik's services.",
                       seconds=True)
    registry.counter("apisix_http_status", "HTTP status codes per route in APISIX.")
    registry.histogram("apisix_http_latency", "HTTP request latency in milliseconds per route in APISIX.")
    registry.histogram("skipper_response_duration_seconds", "Response duration of Skipper's routes.", seconds=True)
    registry.histogram("skipper_serve_route_duration_seconds", "Time Skipper took to serve a route.", seconds=True)


class DataPlane:
    """Simulated load, routing and metrics; `start`, `run` and `stop` run on the sandbox's loop."""

    def __init__(self, store: ObjectStore, config: DataPlaneConfig | None = None) -> None:
        self._store = store
        self.config = config or DataPlaneConfig()
        self._rng = np.random.default_rng(self.config.seed)
        self.registry = Registry()
        _register(self.registry)
        self._runner: aiohttp.web.AppRunner | None = None
        self._url: str | None = None
        # (namespace, image) -> time.monotonic() of the first request that version served: when a
        # bad version first hurt a user, for the demo's "first bad request to rollback".
        self.first_served: dict[tuple[str, str], float] = {}
        # each entry's clients' cookie jars (name -> value), for routes with session affinity
        self.clients: dict[Entry, list[dict[str, str]]] = {}

    @property
    def url(self) -> str:
        """Where the metrics are served (`http://127.0.0.1:<port>/metrics`)."""
        if self._url is None:
            raise RuntimeError("the data plane's metrics server is not started")
        return self._url

    # -- effects: the metrics server and the ticking -------------------------------------------

    async def start(self) -> str:
        app = aiohttp.web.Application()
        app.router.add_get("/metrics", self._serve)
        runner = aiohttp.web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.config.host, self.config.port))
        await aiohttp.web.SockSite(runner, sock).start()
        self._runner = runner
        self._url = f"http://{self.config.host}:{sock.getsockname()[1]}/metrics"
        return self._url

    async def _serve(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(text=self.registry.render(), content_type="text/plain",
                                    headers={"X-Content-Type-Options": "nosniff"})

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while not self._store.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._store.stopping.wait(), self.config.tick)
            now = loop.time()
            try:  # a long stall (a suspended laptop) does not become one huge burst
                self.tick(min(now - last, 5 * self.config.tick))
            except Exception:  # keep counting: one odd object must not stop the data plane
                logger.exception("sandbox data plane tick failed")
            last = now

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- one step ------------------------------------------------------------------------------

    def tick(self, seconds: float) -> None:
        """Send `seconds` worth of requests through the live routes and count them."""
        world = read_world(self._store)
        deployments = {(str(d["metadata"].get("namespace")), str(d["metadata"]["name"])): d
                       for d in workloads(world)}
        for split in splits(world):
            arrived = int(self._rng.poisson(self.config.rps * seconds))
            matched = int(self._rng.binomial(arrived, self.config.match_fraction)) if split.matched is not None else 0
            if split.affinity:
                self._send_by_client(split, arrived - matched, deployments)
            else:
                self._send(split, split.plain, arrived - matched, deployments)
            if split.matched is not None:
                self._send(split, split.matched, matched, deployments)
            # mirrored copies of the plain requests: served and counted, their responses dropped
            self._send(split, split.mirrored, arrived - matched, deployments, mirrored=True)

    def _draw(self, shares: tuple[Share, ...], count: int) -> list[int]:
        fractions = [max(s.fraction, 0.0) for s in shares]
        lost = max(1.0 - sum(fractions), 0.0)  # sent to a backend without ready endpoints (or not mirrored)
        p = np.asarray([*fractions, lost])
        return [int(n) for n in self._rng.multinomial(count, p / p.sum())[:-1]]

    def _send(self, split: Split, shares: tuple[Share, ...], count: int,
              deployments: Mapping[tuple[str, str], Mapping[str, Any]], *, mirrored: bool = False) -> None:
        if count <= 0 or not shares:
            return
        for share, n in zip(shares, self._draw(shares, count), strict=True):
            deployment = deployments.get((split.entry.namespace, share.hop.deployment))
            if n > 0 and deployment is not None:
                self._serve_requests(split, share.hop, deployment, n, mirrored=mirrored)

    def _send_by_client(self, split: Split, count: int,
                        deployments: Mapping[tuple[str, str], Mapping[str, Any]]) -> None:
        """Requests of a route with session affinity, one client at a time: each comes from one of
        the entry's clients, goes where that client's cookies lead, and the client keeps the
        cookies the response sets (as a browser would)."""
        jars = self.clients.setdefault(split.entry, [{} for _ in range(self.config.clients)])
        served: dict[Hop, int] = {}
        for client in self._rng.integers(0, len(jars), size=max(count, 0)):
            jar = jars[int(client)]
            shares = shares_for(split, jar)
            if not shares:
                continue
            drawn = self._draw(shares, 1)
            share = next((s for s, n in zip(shares, drawn, strict=True) if n), None)
            if share is None:
                continue
            served[share.hop] = served.get(share.hop, 0) + 1
            if share.set_cookie:
                set_cookie(jar, share.set_cookie)
        for hop, n in served.items():
            deployment = deployments.get((split.entry.namespace, hop.deployment))
            if deployment is not None:
                self._serve_requests(split, hop, deployment, n)

    def _serve_requests(self, split: Split, hop: Hop, deployment: Mapping[str, Any], count: int, *,
                        mirrored: bool = False) -> None:
        pods = pod_names(deployment) or [f"{hop.deployment}-0-0"]
        behaviour = behaviour_of(deployment)
        if not mirrored:  # a mirrored response never reaches a user
            self.first_served.setdefault((split.entry.namespace, version_of(deployment)), time.monotonic())
        for pod, n in zip(pods, self._rng.multinomial(count, [1 / len(pods)] * len(pods)), strict=True):
            if n == 0:
                continue
            failed = int(self._rng.binomial(n, behaviour.error_rate))
            latencies = self._rng.lognormal(behaviour.mu, behaviour.sigma, size=int(n))
            self._record(split, hop, pod, "500", latencies[:failed])
            self._record(split, hop, pod, "200", latencies[failed:])

    def _record(self, split: Split, hop: Hop, pod: str, code: str, ms: npt.NDArray[np.float64]) -> None:
        # Recorded even when nothing of this code was served: the series then exist at 0 before the
        # first error, so Prometheus's rate() counts that error too (a series born at 1 loses it).
        r, n, ns = self.registry, int(ms.size), split.entry.namespace
        istio: Labels = (("reporter", "destination"), ("destination_workload_namespace", ns),
                         ("destination_workload", hop.deployment), ("destination_service_name", hop.service),
                         ("response_code", code))
        r.inc("istio_requests_total", istio, n)
        r.observe("istio_request_duration_milliseconds", istio, ms)
        linkerd: Labels = (("namespace", ns), ("deployment", hop.deployment), ("direction", "inbound"))
        outcome = "failure" if code.startswith("5") else "success"
        r.inc("response_total", (*linkerd, ("classification", outcome), ("status_code", code)), n)
        r.observe("response_latency_ms", (*linkerd, ("status_code", code)), ms)
        osm: Labels = (("destination_namespace", ns), ("destination_kind", "Deployment"),
                       ("destination_name", hop.deployment), ("response_code", code))
        r.inc("osm_request_total", osm, n)
        r.observe("osm_request_duration_ms", osm, ms)
        app: Labels = (("kubernetes_namespace", ns), ("kubernetes_pod_name", pod), ("app", hop.deployment),
                       ("status", code))
        r.observe("http_request_duration_seconds", app, ms)
        if split.entry.kind == "HTTPRoute" or hop.cluster:
            cluster = ("envoy_cluster_name", hop.cluster or f"{ns}_{hop.service}_{hop.port}")
            r.inc("envoy_cluster_upstream_rq", (cluster, ("envoy_response_code", code)), n)
            r.observe("envoy_cluster_upstream_rq_time", (cluster,), ms)
        if split.provider == "kuma":
            tag = ("service", f"{hop.service}_{ns}_svc_{hop.port}")
            r.inc("envoy_cluster_upstream_rq", (tag, ("envoy_response_code", code)), n)
            r.observe("envoy_cluster_upstream_rq_time", (tag,), ms)
        if split.provider == "appmesh":
            sidecar: Labels = (("kubernetes_namespace", ns), ("kubernetes_pod_name", pod))
            r.inc("envoy_cluster_upstream_rq", (*sidecar, ("envoy_response_code", code)), n)
            r.observe("envoy_cluster_upstream_rq_time", sidecar, ms)
        if split.entry.kind == "KnativeService":
            # Knative's Envoy ingress (Kourier): one upstream cluster per Revision, `<ns>/<revision>`
            cluster = ("envoy_cluster_name", f"{ns}/{hop.service}")
            r.inc("envoy_cluster_upstream_rq", (cluster, ("envoy_response_code", code)), n)
            r.observe("envoy_cluster_upstream_rq_time", (cluster,), ms)
        if hop.ingress:
            nginx: Labels = (("namespace", ns), ("ingress", hop.ingress), ("service", hop.service),
                             ("canary", hop.canary), ("status", code))
            r.inc("nginx_ingress_controller_requests", nginx, n)
            r.observe("nginx_ingress_controller_request_duration_seconds", nginx, ms)
        if hop.route:
            self._record_edge(split.provider, hop.route, code, ms)

    def _record_edge(self, provider: str, route: str, code: str, ms: npt.NDArray[np.float64]) -> None:
        """The edge proxies' own series, labelled with their name for the route or service that served."""
        r, n = self.registry, int(ms.size)
        if provider == "traefik":
            traefik: Labels = (("code", code), ("method", "GET"), ("protocol", "http"), ("service", route))
            r.inc("traefik_service_requests_total", traefik, n)
            r.observe("traefik_service_request_duration_seconds", traefik, ms)
        elif provider == "apisix":
            r.inc("apisix_http_status", (("code", code), ("route", route), ("service", ""), ("consumer", "")), n)
            r.observe("apisix_http_latency", (("type", "request"), ("route", route), ("service", ""),
                                              ("consumer", "")), ms)
        elif provider == "skipper":
            skipper: Labels = (("code", code), ("method", "GET"), ("route", route))
            r.observe("skipper_response_duration_seconds", skipper, ms)
            r.observe("skipper_serve_route_duration_seconds", skipper, ms)
