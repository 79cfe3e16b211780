"""Every provider, through the simulated data plane: a healthy release is promoted, a bad one rolled back.

Here nothing is faked per test: the sandbox (`rollout sandbox up --dataplane`, its own process)
routes simulated requests by the router objects the operator writes, the versions' error rates
come from their pod-template annotations, a real Prometheus scrapes the data plane and the
operator (`rollout run`) judges the provider's built-in queries. All the releases run at once.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from rollout.engine.kube import api_client
from sandbox.demo import app
from tests.e2e.conftest import OperatorProcess, create_release, release_status, wait_for

pytestmark = pytest.mark.e2e

PROVIDERS: tuple[str, ...] = ("gatewayapi", "istio", "linkerd", "nginx", "smi", "osm", "kubernetes")
PROVIDERS += ("kuma", "appmesh")
PROVIDERS += ("contour", "gloo")
PROVIDERS += ("knative",)
KNATIVE = ("serving.knative.dev", "v1")
PROVIDERS += ("traefik", "apisix", "skipper")  # clients enter through an IngressRoute, an ApisixRoute, an Ingress
GOOD = app.Version(2, "ghcr.io/stefanprodan/podinfo:6.0.1", 0.0)
BAD = app.Version(3, "ghcr.io/stefanprodan/podinfo:6.0.2", 0.2)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[client.ApiClient, OperatorProcess]]:
    root = tmp_path_factory.mktemp("dataplane")
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
        yield api_client(kubeconfig), operator
    finally:
        if operator is not None:
            operator.stop()
        sandbox.terminate()
        try:
            sandbox.wait(timeout=20)
        except subprocess.TimeoutExpired:
            sandbox.kill()


def canary(provider: str, namespace: str) -> dict[str, Any]:
    # Checks 3s apart over a 6s window: a check sees only the version under test (the window holds
    # no requests from the previous release, whose canary was scaled down more than 6s before).
    obj = app.canary(provider, "threshold", 3.0, namespace, git=False)
    analysis = obj["spec"]["analysis"]
    analysis.update(threshold=2, metrics=[{"name": "request-success-rate", "interval": "6s",
                                           "thresholdRange": {"min": 95}}])
    if provider == "kubernetes":
        analysis["iterations"] = 3
    else:
        analysis.update(stepWeight=25, maxWeight=50)
    return obj


def create_edge(api: client.ApiClient, namespace: str, obj: dict[str, Any]) -> None:
    """The object clients enter through: an Ingress, or a proxy's custom resource (an IngressRoute, an
    ApisixRoute)."""
    if obj["kind"] == "Ingress":
        client.NetworkingV1Api(api).create_namespaced_ingress(namespace, obj)
        return
    group, version = obj["apiVersion"].split("/")
    plural = obj["kind"].lower() + "s"
    client.CustomObjectsApi(api).create_namespaced_custom_object(group, version, namespace, plural, obj)


@pytest.fixture(scope="module")
def outcomes(world: tuple[client.ApiClient, OperatorProcess]) -> dict[str, dict[str, Any]]:
    """Each provider's namespace: v1 initialized, v2 (healthy) released, then v3 (20% errors)."""
    api, operator = world
    apps = client.AppsV1Api(api)
    names = {p: f"dp-{p[:8]}-{uuid.uuid4().hex[:4]}" for p in PROVIDERS}
    for provider, ns in names.items():
        client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
        if provider == "knative":  # the target is a Knative Service; the sandbox's Knative makes its Revisions
            client.CustomObjectsApi(api).create_namespaced_custom_object(*KNATIVE, ns, "services",
                                                                         app.knative_service(app.VERSIONS[1], ns))
        else:
            apps.create_namespaced_deployment(ns, app.deployment(app.VERSIONS[1], ns))
        if provider == "nginx":
            client.NetworkingV1Api(api).create_namespaced_ingress(ns, app.ingress(ns))
        if provider == "gatewayapi":
            client.CustomObjectsApi(api).create_namespaced_custom_object(
                "gateway.networking.k8s.io", "v1", ns, "gateways", app.gateway(ns))
        if provider == "contour":  # clients come through the root HTTPProxy that includes the router's
            client.CustomObjectsApi(api).create_namespaced_custom_object(
                "projectcontour.io", "v1", ns, "httpproxies", app.root_httpproxy(ns))
        if provider == "gloo":  # clients come through the Gloo VirtualService delegating to its RouteTable
            client.CustomObjectsApi(api).create_namespaced_custom_object(
                "gateway.solo.io", "v1", ns, "virtualservices", app.gloo_virtualservice(ns))
        if provider in ("traefik", "apisix", "skipper"):
            [edge] = app.edge_objects(provider, ns)
            create_edge(api, ns, edge)
        create_release(api, canary(provider, ns))

    def phases(*wanted: str) -> bool:
        return all(release_status(api, ns, app.APP).get("phase") in wanted for ns in names.values())

    wait_for("every Canary initialized", lambda: phases("Initialized"), timeout=60)
    results: dict[str, dict[str, Any]] = {p: {} for p in PROVIDERS}
    for version, done in ((GOOD, ("Succeeded", "Failed")), (BAD, ("Failed", "Succeeded"))):
        for provider, ns in names.items():
            template = {"spec": {"template": app.workload(provider, version, ns)["spec"]["template"]}}
            if provider == "knative":
                client.CustomObjectsApi(api).patch_namespaced_custom_object(*KNATIVE, ns, "services", app.APP, template)
            else:
                apps.patch_namespaced_deployment(app.APP, ns, template)
        wait_for("every release started", lambda: not phases("Initialized", "Succeeded"), timeout=30)
        wait_for(f"every v{version.number} release finished", lambda d=done: phases(*d), timeout=120)  # type: ignore[misc]
        for provider, ns in names.items():
            status = release_status(api, ns, app.APP)
            primary = primary_image(api, provider, ns)
            results[provider][f"v{version.number}"] = {"phase": status["phase"], "primary": primary,
                                                       "weight": status.get("canaryWeight"),
                                                       "analysis": status.get("analysis"),
                                                       "conditions": status.get("conditions")}
    assert operator.process is not None and operator.process.poll() is None, operator.output()
    return results


def primary_image(api: client.ApiClient, provider: str, ns: str) -> str:
    """The image the primary runs: `<app>-primary`'s, or for knative the Revision the Service names as primary."""
    if provider != "knative":
        return str(client.AppsV1Api(api).read_namespaced_deployment(f"{app.APP}-primary", ns)
                   .spec.template.spec.containers[0].image)
    custom = client.CustomObjectsApi(api)
    service: Any = custom.get_namespaced_custom_object(*KNATIVE, ns, "services", app.APP)
    revision: Any = custom.get_namespaced_custom_object(
        *KNATIVE, ns, "revisions", service["metadata"]["annotations"]["flagger.app/primary-revision"])
    return str(revision["spec"]["containers"][0]["image"])


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_good_release_is_promoted_and_a_bad_one_rolled_back(outcomes: dict[str, dict[str, Any]],
                                                              provider: str) -> None:
    good, bad = outcomes[provider]["v2"], outcomes[provider]["v3"]
    assert good["phase"] == "Succeeded" and good["primary"] == GOOD.image, good
    assert bad["phase"] == "Failed" and bad["weight"] == 0 and bad["primary"] == GOOD.image, bad
    metric = next(m for m in bad["analysis"]["metrics"] if m["name"] == "request-success-rate")
    assert metric["verdict"] == "fail" and metric["value"] < 95  # the canary's own requests failed
    assert metric["primary"] is None or metric["primary"] > 99  # while the primary's did not
