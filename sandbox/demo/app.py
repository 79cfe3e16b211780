"""The demo's example app as it sits in Git: podinfo, its Canary, and what its provider needs.

Three versions: v1 is what runs when the demo starts, v2 is healthy, v3 fails 10% of requests.
How a version behaves is written in its pod template annotations, which the sandbox's simulated
data plane reads: the same manifest a user would commit, with the traffic it would see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from rollout.api.kinds import API_VERSION
from sandbox import ERROR_RATE_ANNOTATION, LATENCY_MEDIAN_ANNOTATION, LATENCY_P99_ANNOTATION

NAMESPACE = "demo"
APP = "podinfo"
PORT = 9898
FOLDER = "apps/podinfo"
PROVIDERS: tuple[str, ...] = ("gatewayapi", "istio", "linkerd", "nginx", "smi", "kubernetes")
PROVIDERS += ("kuma", "appmesh")
PROVIDERS += ("contour", "gloo")
PROVIDERS += ("knative",)
PROVIDERS += ("traefik", "apisix", "skipper")  # edge proxies the clients enter through
JUDGES = ("threshold", "compare", "sequential")


@dataclass(frozen=True)
class Version:
    number: int
    image: str
    error_rate: float
    latency_median_ms: float = 20.0
    latency_p99_ms: float = 80.0


VERSIONS = {
    1: Version(1, "ghcr.io/stefanprodan/podinfo:6.0.0", 0.0),
    2: Version(2, "ghcr.io/stefanprodan/podinfo:6.0.1", 0.0),
    3: Version(3, "ghcr.io/stefanprodan/podinfo:6.0.2", 0.1),
}


def deployment(version: Version, namespace: str = NAMESPACE) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": APP, "namespace": namespace, "labels": {"app": APP}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": APP}},
            "template": {
                "metadata": {
                    "labels": {"app": APP},
                    "annotations": {
                        ERROR_RATE_ANNOTATION: str(version.error_rate),
                        LATENCY_MEDIAN_ANNOTATION: str(version.latency_median_ms),
                        LATENCY_P99_ANNOTATION: str(version.latency_p99_ms),
                    },
                },
                "spec": {"containers": [{"name": "podinfod", "image": version.image,
                                         "ports": [{"name": "http", "containerPort": PORT}]}]},
            },
        },
    }


def knative_service(version: Version, namespace: str = NAMESPACE) -> dict[str, Any]:
    """podinfo as the Knative Service of Flagger's knative tutorial (Knative runs each template as a Revision)."""
    return {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": APP, "namespace": namespace},
        "spec": {"template": {
            "metadata": {"annotations": {
                ERROR_RATE_ANNOTATION: str(version.error_rate),
                LATENCY_MEDIAN_ANNOTATION: str(version.latency_median_ms),
                LATENCY_P99_ANNOTATION: str(version.latency_p99_ms),
            }},
            "spec": {"containers": [{"image": version.image, "ports": [{"containerPort": PORT, "protocol": "TCP"}]}]},
        }},
    }


def workload(provider: str, version: Version, namespace: str = NAMESPACE) -> dict[str, Any]:
    """The target the provider releases: a Knative Service for knative, a Deployment otherwise."""
    return knative_service(version, namespace) if provider == "knative" else deployment(version, namespace)


def _metrics(judge: str, interval: float) -> list[dict[str, Any]]:
    # Each check looks back three intervals: enough requests at a 10% weight, and little left of the
    # previous release's requests, which the same workload served (Flagger's guides use one interval
    # of a minute; the demo's intervals are seconds).
    window = f"{max(3 * interval, 6.0):g}s"
    if judge == "threshold":
        return [{"name": "request-success-rate", "interval": window, "thresholdRange": {"min": 99}},
                {"name": "request-duration", "interval": window, "thresholdRange": {"max": 500}}]
    # The compare judge reads three intervals of samples itself; rates over one interval overlap less,
    # so its correction for serial correlation leaves it enough evidence.
    own = f"{max(interval, 3.0):g}s"
    return [{"name": "request-success-rate", "interval": own,
             "compare": {"direction": "decrease", "tolerance": 0.5}},
            {"name": "request-duration", "interval": own, "compare": {"direction": "increase", "tolerance": 0.2}}]


def canary(provider: str, judge: str, interval: float, namespace: str = NAMESPACE, *, git: bool = True,
           mirror: bool = False) -> dict[str, Any]:
    analysis: dict[str, Any] = {"interval": f"{interval:g}s", "threshold": 2, "metrics": _metrics(judge, interval)}
    if mirror:
        # Flagger's blue/green with traffic mirroring: users stay on the primary while a copy of
        # each request goes to the canary, whose answers are dropped but whose metrics are judged
        analysis.update({"iterations": 5, "mirror": True})
    elif provider == "kubernetes":
        analysis["iterations"] = 5  # no traffic split without a mesh: the canary is judged in place
    else:
        analysis.update({"maxWeight": 50, "stepWeight": 10})
    if judge != "threshold":
        analysis["judge"] = judge
    spec: dict[str, Any] = {
        "provider": provider,
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
        "progressDeadlineSeconds": 120,
        "service": {"port": PORT, "targetPort": PORT},
        "analysis": analysis,
    }
    if git:
        spec["git"] = {"source": APP, "revert": "auto", "author": {"name": "rollout", "email": "rollout@demo.local"}}
    if provider == "gatewayapi":
        spec["service"]["gatewayRefs"] = [{"name": "public", "namespace": namespace}]
        spec["service"]["hosts"] = ["podinfo.demo.local"]
    if provider == "nginx":
        spec["ingressRef"] = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": APP}
    if provider == "knative":
        # Flagger's knative tutorial: the Knative Service is the target, and it needs no service block
        spec["targetRef"] = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": APP}
        del spec["service"]
    if provider == "skipper":
        spec["ingressRef"] = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": APP}
    if provider == "apisix":
        spec["routeRef"] = {"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute", "name": APP}
    return {"apiVersion": API_VERSION, "kind": "Canary",
            "metadata": {"name": APP, "namespace": namespace}, "spec": spec}


def gateway(namespace: str = NAMESPACE) -> dict[str, Any]:
    """The Gateway the gatewayapi provider's HTTPRoute attaches to (the router checks it exists)."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "public", "namespace": namespace},
        "spec": {"gatewayClassName": "sandbox", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
    }


def ingress(namespace: str = NAMESPACE, ingress_class: str = "nginx") -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": APP, "namespace": namespace},
        "spec": {"ingressClassName": ingress_class, "rules": [{"host": "podinfo.demo.local", "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": APP, "port": {"number": PORT}}}}]}}]},
    }


def root_httpproxy(namespace: str = NAMESPACE) -> dict[str, Any]:
    """The root HTTPProxy clients reach, including the one the contour router makes (Flagger's Contour
    guide)."""
    return {
        "apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy",
        "metadata": {"name": f"{APP}-ingress", "namespace": namespace},
        "spec": {"virtualhost": {"fqdn": "podinfo.demo.local"},
                 "includes": [{"name": APP, "namespace": namespace, "conditions": [{"prefix": "/"}]}]},
    }


def gloo_virtualservice(namespace: str = NAMESPACE) -> dict[str, Any]:
    """The Gloo VirtualService clients reach, delegating to the RouteTable the gloo router makes
    (Flagger's Gloo guide)."""
    return {
        "apiVersion": "gateway.solo.io/v1", "kind": "VirtualService",
        "metadata": {"name": APP, "namespace": namespace},
        "spec": {"virtualHost": {"domains": ["podinfo.demo.local"], "routes": [
            {"matchers": [{"prefix": "/"}], "delegateAction": {"ref": {"name": APP, "namespace": namespace}}}]}},
    }


def ingressroute(namespace: str = NAMESPACE) -> dict[str, Any]:
    """The Traefik IngressRoute clients come in through; it names the TraefikService the traefik
    provider writes (Flagger's traefik tutorial)."""
    return {
        "apiVersion": "traefik.io/v1alpha1", "kind": "IngressRoute",
        "metadata": {"name": APP, "namespace": namespace},
        "spec": {"entryPoints": ["web"], "routes": [{
            "match": "Host(`podinfo.demo.local`)", "kind": "Rule",
            "services": [{"name": APP, "kind": "TraefikService", "port": PORT}]}]},
    }


def apisixroute(namespace: str = NAMESPACE) -> dict[str, Any]:
    """The ApisixRoute clients come in through, with the prometheus plugin on (Flagger's apisix tutorial);
    the apisix provider clones it into the canary route."""
    return {
        "apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute",
        "metadata": {"name": APP, "namespace": namespace},
        "spec": {"http": [{
            "name": "method",
            "match": {"hosts": ["podinfo.demo.local"], "methods": ["GET"], "paths": ["/*"]},
            "backends": [{"serviceName": APP, "servicePort": PORT}],
            "plugins": [{"name": "prometheus", "enable": True,
                         "config": {"disable": False, "prefer_name": True}}]}]},
    }


def edge_objects(provider: str, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """What the user provides for an edge provider besides the app: the object clients enter through."""
    if provider == "nginx":
        return [ingress(namespace)]
    if provider == "skipper":
        return [ingress(namespace, "skipper")]
    if provider == "traefik":
        return [ingressroute(namespace)]
    if provider == "apisix":
        return [apisixroute(namespace)]
    if provider == "gatewayapi":
        return [gateway(namespace)]
    return []


def files(version: int, provider: str, judge: str, interval: float, *, mirror: bool = False) -> dict[str, str]:
    """The app's folder in Git at `version`: path -> YAML."""
    out = {
        f"{FOLDER}/{'service' if provider == 'knative' else 'deployment'}.yaml": yaml.safe_dump(
            workload(provider, VERSIONS[version]), sort_keys=False),
        f"{FOLDER}/canary.yaml": yaml.safe_dump(canary(provider, judge, interval, mirror=mirror), sort_keys=False),
    }
    if provider == "nginx":
        out[f"{FOLDER}/ingress.yaml"] = yaml.safe_dump(ingress(), sort_keys=False)
    if provider in ("traefik", "apisix", "skipper"):
        [edge] = edge_objects(provider)
        out[f"{FOLDER}/{edge['kind'].lower()}.yaml"] = yaml.safe_dump(edge, sort_keys=False)
    if provider == "gatewayapi":
        out[f"{FOLDER}/gateway.yaml"] = yaml.safe_dump(gateway(), sort_keys=False)
    if provider == "contour":
        out[f"{FOLDER}/httpproxy.yaml"] = yaml.safe_dump(root_httpproxy(), sort_keys=False)
    if provider == "gloo":
        out[f"{FOLDER}/virtualservice.yaml"] = yaml.safe_dump(gloo_virtualservice(), sort_keys=False)
    return out


def gitsource(url: str) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "GitSource",
            "metadata": {"name": APP, "namespace": NAMESPACE},
            "spec": {"url": url, "branch": "main", "path": f"./{FOLDER}", "interval": "2s"}}
