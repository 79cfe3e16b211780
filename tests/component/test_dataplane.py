"""The sandbox's data plane judged by a real Prometheus: for every provider, the real router writes
its object at a 70/30 split through the API, and the provider's built-in queries from
`analysis.templates`, run by Prometheus over what it scraped, see the canary's error rate, latency
and share of traffic; at weight 0 the canary's traffic stops.

One sandbox and one Prometheus serve all providers (one namespace each), so the file takes about
30 seconds: 1 s scrapes and 10 s / 5 s rate windows.
"""

from __future__ import annotations

import json
import math
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from analysis.providers.base import NaNError, NoDataError
from analysis.providers.prometheus import PrometheusProvider
from analysis.templates import REQUEST_DURATION, REQUEST_SUCCESS_RATE, builtin_counts_queries, builtin_query
from rollout.api.parse import parse_canary
from rollout.api.spec import Release
from rollout.engine.kube import api_client
from rollout.routers import router_for
from rollout.settings import Settings
from rollout.workloads.knative import KnativeServices
from sandbox import (
    ERROR_RATE_ANNOTATION,
    LATENCY_MEDIAN_ANNOTATION,
    LATENCY_P99_ANNOTATION,
    DataPlaneConfig,
    Sandbox,
)
from sandbox.demo.app import gateway, gloo_virtualservice, ingress, ingressroute, root_httpproxy
from tests.prom import require_prometheus
from tests.tools import wait_for

PROVIDERS: tuple[str, ...] = ("gatewayapi", "istio", "nginx", "smi", "linkerd", "kubernetes")
PROVIDERS += ("contour", "gloo")
PROVIDERS += ("knative",)
PROVIDERS += ("traefik", "skipper")  # edge proxies that label each backend (APISIX labels the route only)
AB_PROVIDERS = ("linkerd", "gloo")  # these run an A/B test: matched requests go to the canary
RPS = 600.0  # per entry: enough requests per 10 s window that the P99 and the error rate settle
MATCH_FRACTION = 0.1
CANARY = {ERROR_RATE_ANNOTATION: "0.2", LATENCY_MEDIAN_ANNOTATION: "50", LATENCY_P99_ANNOTATION: "250"}
PRIMARY = {ERROR_RATE_ANNOTATION: "0.02"}  # median 20 ms, P99 4 x 20 ms by default
WINDOW, SHORT = "10s", "5s"


@dataclass(frozen=True)
class Case:
    provider: str
    namespace: str
    release: Release
    ingress: str | None
    routes: tuple[tuple[str, str], ...] = ()  # knative: each arm's Revision, which its queries select

    def target(self, arm: str) -> str:
        return dict(self.routes).get(arm, "podinfo")

    def query(self, metric: str, arm: str, window: str = WINDOW) -> str:
        return builtin_query(metric, self.provider, self.namespace, self.target(arm), window,
                             arm, ingress=self.ingress)  # type: ignore[arg-type]

    def requests(self, arm: str, window: str) -> str:
        return builtin_counts_queries(self.provider, self.namespace, self.target(arm), window,
                                      arm, ingress=self.ingress).requests  # type: ignore[arg-type]


def deployment(name: str, notes: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}, "annotations": notes},
                                  "spec": {"containers": [{"name": "app", "image": "podinfo"}]}}}}


def service(name: str, app: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 9898}]}}


def knative_case(api: client.ApiClient, ns: str) -> Case:
    """A Knative Service whose first Revision (the primary) runs PRIMARY and second (the canary) CANARY,
    initialized as the operator initializes it."""
    custom: Any = client.CustomObjectsApi(api)
    core: Any = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": ns}})
    knative = ("serving.knative.dev", "v1", ns, "services")
    service = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "podinfo"},
               "spec": {"template": {"metadata": {"annotations": PRIMARY},
                                     "spec": {"containers": [{"image": "podinfo"}]}}}}
    custom.create_namespaced_custom_object(*knative, service)
    created: Any = custom.create_namespaced_custom_object(
        "rollout.gitops.dev", "v1alpha1", ns, "canaries",
        {"apiVersion": "rollout.gitops.dev/v1alpha1", "kind": "Canary", "metadata": {"name": "podinfo"},
         "spec": {"provider": "knative",
                  "targetRef": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "podinfo"},
                  "analysis": {"interval": "10s", "threshold": 2, "maxWeight": 50, "stepWeight": 10}}})
    release = parse_canary(created)
    services = KnativeServices(api, Settings())
    wait_for("the primary Revision", lambda: services.observe(release)[0].ready or None, timeout=20)
    services.initialize(release)
    custom.patch_namespaced_custom_object(*knative, "podinfo", {"spec": {"template": {"metadata": {
        "annotations": {**{k: None for k in PRIMARY}, **CANARY}}}}})
    wait_for("the canary Revision", lambda: services.observe(release)[0].ready or None, timeout=20)
    return Case("knative", ns, release, None, tuple(services.routes(release).items()))


def setup_case(api: client.ApiClient, provider: str) -> Case:
    ns = f"dp-{provider}"
    if provider == "knative":
        return knative_case(api, ns)
    # The client takes plain dicts as bodies (Any here, as its stubs want its models).
    core: Any = client.CoreV1Api(api)
    apps: Any = client.AppsV1Api(api)
    networking: Any = client.NetworkingV1Api(api)
    core.create_namespace({"metadata": {"name": ns}})
    apps.create_namespaced_deployment(ns, deployment("podinfo", CANARY))
    apps.create_namespaced_deployment(ns, deployment("podinfo-primary", PRIMARY))
    for name, app in (("podinfo", "podinfo-primary"), ("podinfo-primary", "podinfo-primary"),
                      ("podinfo-canary", "podinfo")):
        core.create_namespaced_service(ns, service(name, app))
    spec: dict[str, Any] = {
        "provider": provider,
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": {"port": 9898, "gatewayRefs": [{"name": "public"}]},
        "analysis": {"interval": "10s", "threshold": 2, "maxWeight": 50, "stepWeight": 10},
    }
    if provider in AB_PROVIDERS:  # A/B testing: Linkerd's HTTPRoute or Gloo's RouteTable, a header rule first
        spec["analysis"] = {"interval": "10s", "threshold": 2, "iterations": 3,
                            "match": [{"headers": {"x-canary": {"exact": "insider"}}}]}
    if provider == "kubernetes":  # blue/green: a Service selector switches all traffic at once
        spec["analysis"] = {"interval": "10s", "threshold": 2, "iterations": 3}
    if provider == "gatewayapi":
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", ns, "gateways", gateway(ns))
    if provider == "contour":
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            "projectcontour.io", "v1", ns, "httpproxies", root_httpproxy(ns))
    if provider == "gloo":
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            "gateway.solo.io", "v1", ns, "virtualservices", gloo_virtualservice(ns))
    ingress_name = None
    if provider == "traefik":  # clients come in through the IngressRoute naming the TraefikService
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            "traefik.io", "v1alpha1", ns, "ingressroutes", ingressroute(ns))
    if provider == "skipper":
        ingress_name = "podinfo"
        spec["ingressRef"] = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": ingress_name}
        networking.create_namespaced_ingress(ns, ingress(ns, "skipper"))
    if provider == "nginx":
        ingress_name = "web"
        spec["ingressRef"] = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": ingress_name}
        networking.create_namespaced_ingress(ns, {
            "metadata": {"name": ingress_name},
            "spec": {"rules": [{"host": "app.example.com", "http": {"paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "podinfo", "port": {"number": 9898}}}}]}}]}})
    created: Any = client.CustomObjectsApi(api).create_namespaced_custom_object(
        "rollout.gitops.dev", "v1alpha1", ns, "canaries",
        {"apiVersion": "rollout.gitops.dev/v1alpha1", "kind": "Canary", "metadata": {"name": "podinfo"},
         "spec": spec})
    return Case(provider, ns, parse_canary(created), ingress_name)


def set_weights(api: client.ApiClient, case: Case, primary: int, canary: int, *, match: bool = False) -> None:
    router = router_for(case.provider, api, Settings())
    router.reconcile(case.release)
    router.set_weight(case.release, primary, canary, match=match)
    assert router.verify_weight(case.release) == (primary, canary)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[client.ApiClient, str, dict[str, Case]]]:
    require_prometheus()
    config = DataPlaneConfig(rps=RPS, seed=7, match_fraction=MATCH_FRACTION)
    with Sandbox(dataplane=config, prometheus=True, deployment_ready_delay=0.1) as sandbox:
        api = api_client(sandbox.write_kubeconfig(Path(tmp_path_factory.mktemp("kube")) / "kubeconfig"))
        cases = {p: setup_case(api, p) for p in PROVIDERS}
        for case in cases.values():
            # kubernetes cannot split: it starts all on the primary and switches to the canary later.
            set_weights(api, case, *((100, 0) if case.provider == "kubernetes" else (70, 30)),
                        match=case.provider in AB_PROVIDERS)
        yield api, sandbox.prometheus_url, cases
        api.close()  # type: ignore[no-untyped-call]


def value(prom: PrometheusProvider, query: str) -> float | None:
    try:
        return prom.query_value(query)
    except (NoDataError, NaNError):
        return None


MEDIAN_OF = {250.0: 50.0, 80.0: 20.0}  # P99 -> median, of CANARY and PRIMARY above


def mean_ms(p99: float) -> float:
    """The mean of the pods' log-normal latency (`sandbox.pods`) with this P99 and the arm's median."""
    median = MEDIAN_OF[p99]
    sigma = math.log(p99 / median) / 2.326
    return median * math.exp(sigma**2 / 2)


def check_arm(prom: PrometheusProvider, case: Case, arm: str, window: str, rate: float, p99: float) -> None:
    success = value(prom, case.query(REQUEST_SUCCESS_RATE, arm, window))
    duration = value(prom, case.query(REQUEST_DURATION, arm, window))
    where = f"{case.provider} {arm}"
    # The simulated errors are binomial: a window of a few hundred requests at 20% errors is ~2.5 points
    # wide, and with fifteen providers some arm is bound to land 6 points off. Allow 4 standard errors
    # (counting half the window's requests, as rate() extrapolates), never less than 6 points.
    served = (value(prom, case.requests(arm, window)) or 0.0) / 2
    spread = 4 * 100 * math.sqrt(rate * (1 - rate) / served) if served > 0 else 0.0
    assert success is not None and abs(success - (1 - rate) * 100) < max(6.0, spread), (
        f"{where}: success rate {success} of ~{2 * served:.0f} requests")
    # Flagger's skipper observer reads the mean time to serve the route, the others the P99
    want = mean_ms(p99) if case.provider == "skipper" else p99
    assert duration is not None and abs(duration - want) / want < 0.35, f"{where}: {duration} ms, want ~{want}"


def test_builtin_queries_see_each_arm_and_the_split(world: tuple[client.ApiClient, str, dict[str, Case]]) -> None:
    _, url, cases = world
    with PrometheusProvider(url, timeout=5) as prom:
        # Wait until a whole window of samples is in: the newest data must be WINDOW old at least.
        time.sleep(11)
        wait_for("every arm's data", lambda: all(
            value(prom, c.requests(arm, WINDOW)) for c in cases.values()
            for arm in (("primary",) if c.provider == "kubernetes" else ("primary", "canary"))), timeout=20)
        for case in cases.values():
            check_arm(prom, case, "primary", WINDOW, 0.02, 80.0)
            if case.provider == "kubernetes":
                continue
            check_arm(prom, case, "canary", WINDOW, 0.2, 250.0)
            canary = value(prom, case.requests("canary", WINDOW)) or 0.0
            primary = value(prom, case.requests("primary", WINDOW)) or 0.0
            expected = MATCH_FRACTION + (1 - MATCH_FRACTION) * 0.3 if case.provider in AB_PROVIDERS else 0.3
            assert abs(canary / (canary + primary) - expected) < 0.05, f"{case.provider}: {canary} vs {primary}"


def test_weight_zero_stops_canary_traffic(world: tuple[client.ApiClient, str, dict[str, Case]]) -> None:
    api, url, cases = world
    for case in cases.values():
        # The kubernetes provider switches everything to the canary instead: the primary stops.
        # Without `match`, linkerd's and gloo's A/B rule goes too (as on a rollback), so no request reaches the canary.
        set_weights(api, case, *((0, 100) if case.provider == "kubernetes" else (100, 0)))
    with PrometheusProvider(url, timeout=5) as prom:
        time.sleep(8)  # a whole SHORT window after the switch
        for case in cases.values():
            stopped, serving = ("primary", "canary") if case.provider == "kubernetes" else ("canary", "primary")
            assert value(prom, case.requests(stopped, SHORT)) == 0.0, f"{case.provider} {stopped} still served"
            served = case.requests(serving, SHORT)
            if case.provider == "skipper":
                # At 0 the canary Ingress is off (False(), as Flagger sets it): the user's Ingress serves the
                # apex Service, which selects the primary, under its own route id.
                ns = case.namespace.replace("-", "_")
                served = (f'sum(increase(skipper_response_duration_seconds_bucket{{route=~"kube_{ns}__podinfo__.*'
                          f'__podinfo", le="+Inf"}}[{SHORT}]))')
            assert (value(prom, served) or 0) > RPS * 2, f"{case.provider} {serving}"
        check_arm(prom, cases["kubernetes"], "canary", SHORT, 0.2, 250.0)


def test_prometheus_scrapes_the_metrics_endpoint(world: tuple[client.ApiClient, str, dict[str, Case]]) -> None:
    _, url, _ = world
    def targets() -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{url}/api/v1/targets", timeout=5) as response:
            found: list[dict[str, Any]] = json.load(response)["data"]["activeTargets"]
        return found if [t["health"] for t in found] == ["up"] else []

    target = wait_for("the data plane as Prometheus' one healthy target", targets, timeout=20)[0]
    with urllib.request.urlopen(target["scrapeUrl"], timeout=5) as response:
        first = _counters(response.read().decode())
    time.sleep(1.5)
    with urllib.request.urlopen(target["scrapeUrl"], timeout=5) as response:
        second = _counters(response.read().decode())
    assert any(k.startswith('envoy_cluster_upstream_rq{envoy_cluster_name="dp-gatewayapi_podinfo-canary_9898"')
               for k in first)
    assert not any('"dp-gatewayapi_podinfo_9898"' in k for k in first)  # only the route's backends are clusters
    # Contour's and Gloo's Envoy clusters, as Flagger's observers name them
    assert any('envoy_cluster_name="dp-contour_podinfo-canary_9898"' in k for k in first)
    assert any('envoy_cluster_name="dp-gloo-podinfo-canaryupstream-9898_dp-gloo"' in k for k in first)
    assert first.keys() <= second.keys()
    assert all(second[k] >= v for k, v in first.items()), "counters only grow"
    assert any(second[k] > v for k, v in first.items()), "and they do grow"


def _counters(text: str) -> dict[str, float]:
    return {line.rpartition(" ")[0]: float(line.rpartition(" ")[2]) for line in text.splitlines()
            if line and not line.startswith("#")}
