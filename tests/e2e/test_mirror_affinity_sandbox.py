"""Mirroring and session affinity through the simulated data plane, judged by the operator.

As in test_dataplane_releases: `rollout sandbox up --dataplane` (its own process) routes simulated
requests by the router objects the operator writes, a real Prometheus scrapes it, and `rollout run`
judges the built-in queries. A mirror run keeps all live traffic on the primary, so its checks can
only see the canary through the mirrored copies: a healthy version is promoted, a failing one rolled
back. With session affinity, clients the weighted route sent to the canary keep going there.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from rollout.engine.kube import api_client
from sandbox.demo import app
from tests.e2e.conftest import OperatorProcess, create_release, release_status, wait_for

pytestmark = pytest.mark.e2e

GOOD = app.Version(2, "ghcr.io/stefanprodan/podinfo:6.0.1", 0.0)
BAD = app.Version(3, "ghcr.io/stefanprodan/podinfo:6.0.2", 0.2)
MIRRORED = ("istio", "gatewayapi")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[client.ApiClient, str]]:
    root = tmp_path_factory.mktemp("mirror")
    kubeconfig, log = root / "kubeconfig", root / "sandbox.log"
    with log.open("wb") as out:
        sandbox = subprocess.Popen([str(Path(sys.executable).parent / "rollout"), "sandbox", "up", "--dataplane",
                                    "--rps", "60", "--kubeconfig", str(kubeconfig)], stdout=out,
                                   stderr=subprocess.STDOUT)
    operator: OperatorProcess | None = None
    try:
        text = wait_for("the sandbox with its data plane", lambda: "kubeconfig:" in log.read_text() and log.read_text(),
                        timeout=60)
        prometheus = re.search(r"prometheus: (\S+)", text)
        assert prometheus, text
        operator = OperatorProcess(kubeconfig, prometheus.group(1), root / "reports", root / "operator.log")
        operator.start()
        yield api_client(kubeconfig), prometheus.group(1)
        assert operator.process is not None and operator.process.poll() is None, operator.output()
    finally:
        if operator is not None:
            operator.stop()
        sandbox.terminate()
        try:
            sandbox.wait(timeout=20)
        except subprocess.TimeoutExpired:
            sandbox.kill()


def namespace(api: client.ApiClient, prefix: str, provider: str) -> str:
    ns = f"{prefix}-{provider[:5]}-{uuid.uuid4().hex[:4]}"
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    client.AppsV1Api(api).create_namespaced_deployment(ns, app.deployment(app.VERSIONS[1], ns))
    if provider == "gatewayapi":  # the router checks that the Gateway it attaches to exists
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", ns, "gateways", app.gateway(ns))
    return ns


def release_version(api: client.ApiClient, ns: str, version: app.Version) -> None:
    template = app.deployment(version, ns)["spec"]["template"]
    client.AppsV1Api(api).patch_namespaced_deployment(app.APP, ns, {"spec": {"template": template}})


def route_of(api: client.ApiClient, provider: str, ns: str) -> dict[str, Any]:
    group, version, plural = (("networking.istio.io", "v1beta1", "virtualservices") if provider == "istio"
                              else ("gateway.networking.k8s.io", "v1", "httproutes"))
    obj: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
        group, version, ns, plural, app.APP)
    return obj


def mirrors(route: dict[str, Any]) -> bool:
    spec = route.get("spec") or {}
    return any("mirror" in r for r in spec.get("http") or []) or any(
        f.get("type") == "RequestMirror" for r in spec.get("rules") or [] for f in r.get("filters") or [])


def mirror_canary(provider: str, ns: str) -> dict[str, Any]:
    obj = app.canary(provider, "threshold", 3.0, ns, git=False)
    analysis = obj["spec"]["analysis"]
    for key in ("stepWeight", "maxWeight"):
        analysis.pop(key, None)
    analysis.update(iterations=3, threshold=2, mirror=True,
                    metrics=[{"name": "request-success-rate", "interval": "6s", "thresholdRange": {"min": 95}}])
    return obj


def mirror_runs(api: client.ApiClient) -> dict[str, dict[str, Any]]:
    """Per provider: v2 (healthy) then v3 (20% errors) released under a mirror-only analysis."""
    names = {p: namespace(api, "mirror", p) for p in MIRRORED}
    for provider, ns in names.items():
        create_release(api, mirror_canary(provider, ns))

    def phases(*wanted: str) -> bool:
        return all(release_status(api, ns, app.APP).get("phase") in wanted for ns in names.values())

    wait_for("every Canary initialized", lambda: phases("Initialized"), timeout=60)
    results: dict[str, dict[str, Any]] = {p: {} for p in MIRRORED}
    for version, done in ((GOOD, ("Succeeded", "Failed")), (BAD, ("Failed", "Succeeded"))):
        for ns in names.values():
            release_version(api, ns, version)
        seen: dict[str, dict[str, Any]] = {p: {"mirrored": False, "weights": set(), "ran": False} for p in MIRRORED}
        deadline = time.monotonic() + 150
        while not all(s["ran"] for s in seen.values()) or not phases(*done):
            assert time.monotonic() < deadline, {ns: release_status(api, ns, app.APP) for ns in names.values()}
            for provider, ns in names.items():
                status = release_status(api, ns, app.APP)
                if status.get("phase") == "Progressing":
                    seen[provider]["ran"] = True
                    seen[provider]["mirrored"] |= mirrors(route_of(api, provider, ns))
                    seen[provider]["weights"].add(status.get("canaryWeight") or 0)
            time.sleep(0.3)
        wait_for(f"every v{version.number} mirror run finished", lambda d=done: phases(*d), timeout=60)  # type: ignore[misc]
        for provider, ns in names.items():
            status = release_status(api, ns, app.APP)
            primary = client.AppsV1Api(api).read_namespaced_deployment(
                f"{app.APP}-primary", ns).spec.template.spec.containers[0].image
            results[provider][f"v{version.number}"] = {
                "phase": status["phase"], "primary": primary, "analysis": status.get("analysis"),
                "mirrored": seen[provider]["mirrored"], "weights": seen[provider]["weights"],
                "route_mirrors_after": mirrors(route_of(api, provider, ns))}
    return results


@pytest.mark.parametrize("provider", MIRRORED)
def test_a_mirror_run_sees_the_canary_and_promotes_or_rolls_back(runs: dict[str, Any], provider: str) -> None:
    good, bad = runs["mirror"][provider]["v2"], runs["mirror"][provider]["v3"]
    for run in (good, bad):
        assert run["mirrored"], run  # the route mirrored to the canary during the analysis
        assert run["weights"] <= {0}, run  # while no live request went to the canary
        assert not run["route_mirrors_after"], run  # and mirroring stopped at the end
    assert good["phase"] == "Succeeded" and good["primary"] == GOOD.image, good
    assert bad["phase"] == "Failed" and bad["primary"] == GOOD.image, bad
    metric = next(m for m in bad["analysis"]["metrics"] if m["name"] == "request-success-rate")
    # the canary's only requests were mirrored copies, and they failed
    assert metric["verdict"] == "fail" and metric["value"] < 95, metric


def prometheus_shares(prometheus: str, provider: str, ns: str, window: str) -> dict[str, float]:
    """Share of the requests each version served over the last `window`, as the provider's metrics
    count them (Istio by workload; Envoy, for Gateway API, by backend Service)."""
    if provider == "istio":
        query = (f'sum by (destination_workload) (increase(istio_requests_total{{reporter="destination",'
                 f'destination_workload_namespace="{ns}"}}[{window}]))')
        names = {app.APP: "canary", f"{app.APP}-primary": "primary"}
    else:
        query = (f'sum by (envoy_cluster_name) '
                 f'(increase(envoy_cluster_upstream_rq{{envoy_cluster_name=~"{ns}_.*"}}[{window}]))')
        names = {f"{ns}_{app.APP}-canary_{app.PORT}": "canary", f"{ns}_{app.APP}-primary_{app.PORT}": "primary"}
    url = f"{prometheus.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    counts: dict[str, float] = {}
    for r in body["data"]["result"]:
        label = names.get(next(iter(r["metric"].values()), ""), "other")
        counts[label] = counts.get(label, 0.0) + float(r["value"][1])
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()} if total else {}


def sticky_rule(provider: str, route: dict[str, Any]) -> dict[str, Any]:
    rules = route["spec"]["http"] if provider == "istio" else route["spec"]["rules"]
    return dict(rules[0])


def sticky_run(api: client.ApiClient, prometheus: str, provider: str) -> dict[str, Any]:
    """A release at a 50% weight with session affinity, from its start to its promotion: what the
    route and Prometheus showed while the weight held, and the route after the run."""
    ns = namespace(api, "sticky", provider)
    obj = app.canary(provider, "threshold", 20.0, ns, git=False)
    analysis = obj["spec"]["analysis"]
    for key in ("stepWeight", "maxWeight"):
        analysis.pop(key, None)
    analysis.update(stepWeights=[50], threshold=2, sessionAffinity={"cookieName": "flagger-cookie", "maxAge": 600},
                    metrics=[{"name": "request-success-rate", "interval": "10s", "thresholdRange": {"min": 95}}])
    create_release(api, obj)
    wait_for("the Canary initialized", lambda: release_status(api, ns, app.APP).get("phase") == "Initialized",
             timeout=60)
    release_version(api, ns, GOOD)
    wait_for("weight 50", lambda: release_status(api, ns, app.APP).get("canaryWeight") == 50, timeout=90)
    started = time.monotonic()
    sticky = sticky_rule(provider, route_of(api, provider, ns))
    time.sleep(10)  # the clients draw the canary once, then keep its cookie
    shares = prometheus_shares(prometheus, provider, ns, "6s")
    weight = release_status(api, ns, app.APP).get("canaryWeight")
    held = time.monotonic() - started
    wait_for("the sticky release promoted", lambda: release_status(api, ns, app.APP).get("phase") == "Succeeded",
             timeout=120)
    return {"sticky": sticky, "shares": shares, "weight": weight, "held": held,
            "route": route_of(api, provider, ns)}


@pytest.fixture(scope="module")
def runs(world: tuple[client.ApiClient, str]) -> dict[str, Any]:
    """The session affinity runs (one per provider, in threads) and the mirror runs, all at once: each
    release has its own namespace, and the data plane sends every entry its own requests. A sticky
    run's result is its Future, so that its failure is its own test's."""
    api, prometheus = world
    with ThreadPoolExecutor(len(MIRRORED)) as pool:  # leaving it waits for the sticky runs
        sticky = {p: pool.submit(sticky_run, api, prometheus, p) for p in MIRRORED}
        mirror = mirror_runs(api)
    return {"mirror": mirror, "sticky": sticky}


@pytest.mark.parametrize("provider", MIRRORED)
def test_session_affinity_keeps_cookie_carriers_on_the_canary(runs: dict[str, Any], provider: str) -> None:
    """At a 50% weight, clients that drew the canary once keep going there: well over half of the
    requests reach the canary, where without affinity half would; the run's end expires the cookie."""
    run = runs["sticky"][provider].result()
    sticky = run["sticky"]
    assert "Cookie" in str(sticky.get("match") or sticky.get("matches")), sticky  # the sticky rule comes first
    assert run["weight"] == 50 and run["held"] < 20, run
    shares = run["shares"]
    assert shares.get("canary", 0.0) > 0.7, shares
    # the run ended: a first rule expires the run's cookie, and the weights are back on the primary
    route = run["route"]
    assert "Max-Age=-1" in str(sticky_rule(provider, route)), route
    rules = route["spec"]["http"] if provider == "istio" else route["spec"]["rules"]
    last = rules[-1].get("route") or rules[-1].get("backendRefs")
    assert last[0]["weight"] == 100, route
