"""Every router against the sandbox API through the official client: objects are created owned by a
real release, weights written are read back, conflicts are retried, finalize hands everything to the
primary, and deleting the release garbage-collects what the router made."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rollout.api.kinds import GROUP, VERSION
from rollout.api.parse import parse_canary
from rollout.api.spec import Canary, ObjectRef
from rollout.routers import RouterError, contour, gloo, router_for
from rollout.routers.gatewayapi import GatewayAPIRouter
from rollout.routers.knative import weights_of
from rollout.routers.objects import Kind, Obj, Objects
from rollout.settings import Settings
from rollout.workloads.knative import KnativeServices
from sandbox import Sandbox
from sandbox.demo.app import VERSIONS, gateway, knative_service
from sandbox.demo.app import canary as demo_canary
from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.e2e

TARGET = "podinfo"
HEADER_MATCH = {"headers": {"x-canary": {"exact": "insider"}}}
COOKIE_MATCH = {"headers": {"cookie": {"exact": "canary"}}}
KNATIVE = ("serving.knative.dev", "v1")

# What each router owns, as (apiVersion, plural, name); the kubernetes router owns nothing.
OWNED: dict[str, list[tuple[str, str, str]]] = {
    "gatewayapi": [("gateway.networking.k8s.io/v1", "httproutes", TARGET)],
    "istio": [("networking.istio.io/v1beta1", "virtualservices", TARGET),
              ("networking.istio.io/v1beta1", "destinationrules", f"{TARGET}-primary"),
              ("networking.istio.io/v1beta1", "destinationrules", f"{TARGET}-canary")],
    "smi": [("split.smi-spec.io/v1alpha2", "trafficsplits", TARGET)],
    "osm": [("split.smi-spec.io/v1alpha2", "trafficsplits", TARGET)],
    "linkerd": [("split.smi-spec.io/v1alpha2", "trafficsplits", TARGET)],
    "nginx": [("networking.k8s.io/v1", "ingresses", "web-canary")],
    "kubernetes": [],
    "appmesh": [("appmesh.k8s.aws/v1beta2", "virtualnodes", f"{TARGET}-primary"),
                ("appmesh.k8s.aws/v1beta2", "virtualnodes", f"{TARGET}-canary"),
                ("appmesh.k8s.aws/v1beta2", "virtualrouters", TARGET),
                ("appmesh.k8s.aws/v1beta2", "virtualrouters", f"{TARGET}-canary"),
                ("appmesh.k8s.aws/v1beta2", "virtualservices", TARGET),
                ("appmesh.k8s.aws/v1beta2", "virtualservices", f"{TARGET}-canary")],
    "contour": [("projectcontour.io/v1", "httpproxies", TARGET)],
    "gloo": [("gateway.solo.io/v1", "routetables", TARGET),
             ("gloo.solo.io/v1", "upstreams", "{ns}-podinfo-primaryupstream-9898"),
             ("gloo.solo.io/v1", "upstreams", "{ns}-podinfo-canaryupstream-9898")],
    "knative": [],  # the Knative Service is the user's target: its spec.traffic is written, nothing owned
    "traefik": [("traefik.io/v1alpha1", "traefikservices", TARGET)],
    "apisix": [("apisix.apache.org/v2", "apisixroutes", f"web-{TARGET}-canary")],
    "skipper": [("networking.k8s.io/v1", "ingresses", "web-canary")],
}
# Providers whose router clones the user's object (`ingressRef`, `routeRef`) and deletes the clone when done.
CLONING = ("nginx", "apisix", "skipper")

LINKERD_HTTPROUTE_CRD: Any = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "httproutes.policy.linkerd.io"},
    "spec": {"group": "policy.linkerd.io", "scope": "Namespaced",
             "names": {"plural": "httproutes", "singular": "httproute", "kind": "HTTPRoute",
                       "listKind": "HTTPRouteList"},
             "versions": [{"name": "v1beta2", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {"type": "object",
                                                          "x-kubernetes-preserve-unknown-fields": True}}}]},
}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[client.ApiClient]:
    with Sandbox() as sb:
        path = sb.write_kubeconfig(tmp_path_factory.mktemp("routers") / "kubeconfig")
        api: client.ApiClient = kubernetes.config.new_client_from_config(str(path))  # type: ignore[no-untyped-call]
        try:
            client.ApiextensionsV1Api(api).create_custom_resource_definition(LINKERD_HTTPROUTE_CRD,
                                                                             _request_timeout=10)
            yield api
        finally:
            api.close()  # type: ignore[no-untyped-call]


@pytest.fixture
def namespace(api: client.ApiClient) -> str:
    name = f"routers-{uuid.uuid4().hex[:6]}"
    body: Any = {"metadata": {"name": name}}
    client.CoreV1Api(api).create_namespace(body, _request_timeout=10)
    return name


def service(name: str, namespace: str, app: str) -> Any:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 9898, "targetPort": 9898}]}}


def ingress(namespace: str) -> Any:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "web", "namespace": namespace, "annotations": {"team": "web"}},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": "app.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": TARGET, "port": {"number": 9898}}}}]}}]}}


def apisixroute(namespace: str) -> Any:
    """The user's ApisixRoute (Flagger's apisix tutorial's), which the apisix router clones."""
    return {"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {"http": [{"name": "method", "match": {"hosts": ["app.example.com"], "paths": ["/*"]},
                               "backends": [{"serviceName": TARGET, "servicePort": 9898}]}]}}


def setup_release(api: client.ApiClient, namespace: str, provider: str,
                  match: list[Obj] | None = None) -> Canary:
    """What the workloads module and the user provide (Services, Ingress), and the Canary itself."""
    core = client.CoreV1Api(api)
    for name, app in ((TARGET, f"{TARGET}-primary"), (f"{TARGET}-primary", f"{TARGET}-primary"),
                      (f"{TARGET}-canary", TARGET)):
        core.create_namespaced_service(namespace, service(name, namespace, app), _request_timeout=10)
    if provider in ("nginx", "skipper"):
        client.NetworkingV1Api(api).create_namespaced_ingress(namespace, ingress(namespace), _request_timeout=10)
    if provider == "knative":
        return knative_release(api, namespace)
    if provider == "apisix":
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            "apisix.apache.org", "v2", namespace, "apisixroutes", apisixroute(namespace), _request_timeout=10)
    analysis: Obj = {"interval": "1m", "threshold": 2}
    if match:
        analysis.update(iterations=3, match=match)
    elif provider == "kubernetes":
        analysis.update(iterations=3)  # blue/green: a Service selector switches all traffic at once
    else:
        analysis.update(maxWeight=50, stepWeight=10)
    spec: Obj = {"provider": provider, "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": TARGET},
                 "service": {"port": 9898}, "analysis": analysis}
    if provider == "gatewayapi":
        spec["service"]["gatewayRefs"] = [{"name": "public", "namespace": namespace}]
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", namespace, "gateways", gateway(namespace), _request_timeout=10)
    if provider in ("nginx", "skipper"):
        spec["ingressRef"] = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "web"}
    if provider == "apisix":
        spec["routeRef"] = {"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute", "name": "web"}
    obj: Any = client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "canaries",
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Canary", "metadata": {"name": TARGET}, "spec": spec},
        _request_timeout=10)
    release = parse_canary(obj)
    assert release.metadata.uid
    return release


def knative_release(api: client.ApiClient, namespace: str) -> Canary:
    """A Knative Service (the sandbox's Knative makes its first Revision) and a knative Canary on it,
    initialized as the operator initializes it: the latest Revision recorded as the primary."""
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        *KNATIVE, namespace, "services", knative_service(VERSIONS[1], namespace), _request_timeout=10)
    obj: Any = client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "canaries", demo_canary("knative", "threshold", 60.0, namespace, git=False),
        _request_timeout=10)
    release = parse_canary(obj)
    services = KnativeServices(api, Settings())
    wait_for("the first Revision ready", lambda: services.observe(release)[0].ready or None)
    services.initialize(release)
    return release


def read(api: client.ApiClient, namespace: str, api_version: str, plural: str, name: str) -> Obj | None:
    kinds = {"ingresses": "Ingress", "services": "Service"}
    kind = Kind(api_version, kinds.get(plural, plural), plural)
    return Objects(api, Settings().api_timeout).get(kind, namespace, name.replace("{ns}", namespace))


def resource_versions(api: client.ApiClient, namespace: str, provider: str) -> list[str]:
    out = []
    for api_version, plural, name in OWNED[provider]:
        obj = read(api, namespace, api_version, plural, name)
        assert obj is not None, f"{plural}/{name} missing"
        out.append(str(obj["metadata"]["resourceVersion"]))
    return out


@pytest.mark.parametrize("provider", ["gatewayapi", "istio", "smi", "osm", "linkerd", "nginx", "kubernetes",
                                      "appmesh", "contour", "gloo", "knative",
                                      "traefik", "apisix", "skipper"])
def test_router_lifecycle(api: client.ApiClient, namespace: str, provider: str) -> None:
    release = setup_release(api, namespace, provider)
    router = router_for(provider, api, Settings())

    router.reconcile(release)
    assert router.verify_weight(release) == (100, 0)
    for api_version, plural, name in OWNED[provider]:
        obj = read(api, namespace, api_version, plural, name)
        assert obj is not None
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "rollout"
        [ref] = obj["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == ("Canary", TARGET, release.metadata.uid,
                                                                             True)
    before = resource_versions(api, namespace, provider)
    router.reconcile(release)  # idempotent: nothing is written again
    assert resource_versions(api, namespace, provider) == before

    if provider == "kubernetes":
        with pytest.raises(RouterError, match="mesh or gateway provider") as e:
            router.set_weight(release, 90, 10)
        assert not e.value.temporary
        assert router.verify_weight(release) == (100, 0)
    else:
        router.set_weight(release, 90, 10)
        assert router.verify_weight(release) == (90, 10)
        router.reconcile(release)  # an existing object keeps its weights
        assert router.verify_weight(release) == (90, 10)

    router.set_weight(release, 0, 100)
    assert router.verify_weight(release) == (0, 100)
    if provider == "kubernetes":
        live = read(api, namespace, "v1", "services", TARGET)
        assert live is not None and live["spec"]["selector"] == {"app": TARGET}

    router.finalize(release)
    if provider in ("nginx", "skipper"):
        assert router.verify_weight(release) is None  # the canary Ingress is gone
        assert read(api, namespace, "networking.k8s.io/v1", "ingresses", "web-canary") is None
        user = read(api, namespace, "networking.k8s.io/v1", "ingresses", "web")
        assert user is not None
        assert user["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == TARGET
        assert user["metadata"]["annotations"] == {"team": "web"}
    elif provider == "apisix":
        assert router.verify_weight(release) is None  # the canary ApisixRoute is gone, the user's is as it was
        assert read(api, namespace, "apisix.apache.org/v2", "apisixroutes", f"web-{TARGET}-canary") is None
        user = read(api, namespace, "apisix.apache.org/v2", "apisixroutes", "web")
        assert user is not None and user["spec"] == apisixroute(namespace)["spec"]
    else:
        assert router.verify_weight(release) == (100, 0)
    router.finalize(release)  # finalizing twice is harmless

    if provider not in CLONING:
        router.reconcile(release)  # bring the objects back, then let the garbage collector take them
        owned = OWNED[provider]
        client.CustomObjectsApi(api).delete_namespaced_custom_object(GROUP, VERSION, namespace, "canaries", TARGET,
                                                                     _request_timeout=10)
        wait_for("owned objects collected",
                 lambda: all(read(api, namespace, v, p, n) is None for v, p, n in owned) or None)
        if provider == "kubernetes":  # the Service is the workloads', not ours: it stays
            assert read(api, namespace, "v1", "services", TARGET) is not None
        if provider == "knative":  # the user's Knative Service stays, its split parked on the primary
            live = read(api, namespace, "serving.knative.dev/v1", "services", TARGET)
            assert live is not None and weights_of(live) == (100, 0)


@pytest.mark.parametrize("provider, match", [
    ("gatewayapi", [HEADER_MATCH]),
    ("istio", [HEADER_MATCH]),
    ("linkerd", [HEADER_MATCH]),
    ("nginx", [HEADER_MATCH, COOKIE_MATCH]),
    ("appmesh", [HEADER_MATCH]),
    ("contour", [HEADER_MATCH]),
    ("gloo", [HEADER_MATCH]),
])
def test_ab_routing(api: client.ApiClient, namespace: str, provider: str, match: list[Obj]) -> None:
    release = setup_release(api, namespace, provider, match=match)
    router = router_for(provider, api, Settings())
    router.reconcile(release)
    router.set_weight(release, 100, 0, match=True)
    assert router.verify_weight(release) == (100, 0)
    router.reconcile(release)  # the A/B route survives a reconcile
    if provider == "linkerd":
        route = read(api, namespace, "policy.linkerd.io/v1beta2", "httproutes", TARGET)
        assert route is not None and route["spec"]["rules"][0]["backendRefs"][0]["name"] == f"{TARGET}-canary"
        assert read(api, namespace, "split.smi-spec.io/v1alpha2", "trafficsplits", TARGET) is None
    elif provider == "nginx":
        canary = read(api, namespace, "networking.k8s.io/v1", "ingresses", "web-canary")
        assert canary is not None
        annotations = canary["metadata"]["annotations"]
        assert annotations["nginx.ingress.kubernetes.io/canary-by-header"] == "x-canary"
        assert annotations["nginx.ingress.kubernetes.io/canary-by-cookie"] == "canary"
    elif provider == "appmesh":
        vr = read(api, namespace, "appmesh.k8s.aws/v1beta2", "virtualrouters", TARGET)
        assert vr is not None
        assert [(r["name"], r.get("priority")) for r in vr["spec"]["routes"]] == [
            (f"{TARGET}-a", 10), (f"{TARGET}-b", 20)]
    elif provider in ("contour", "gloo"):
        version, plural = OWNED[provider][0][:2]
        obj = read(api, namespace, version, plural, TARGET)
        assert obj is not None and len(obj["spec"]["routes"]) == 2  # the A/B route, then the weighted one
        assert (contour.is_matched if provider == "contour" else gloo.is_matched)(obj)
    else:
        plural, version = ("httproutes", "gateway.networking.k8s.io/v1") if provider == "gatewayapi" else (
            "virtualservices", "networking.istio.io/v1beta1")
        obj = read(api, namespace, version, plural, TARGET)
        assert obj is not None
        rules = obj["spec"]["rules" if provider == "gatewayapi" else "http"]
        assert len(rules) == 2
    router.set_weight(release, 100, 0)  # rollback: A/B route removed, all to the primary
    router.finalize(release)
    assert router.verify_weight(release) in ((100, 0), None)


def test_kuma_trafficroute_lifecycle(api: client.ApiClient, namespace: str) -> None:
    """Kuma's TrafficRoute is cluster-scoped: written without an owner, claimed by its destination
    tag (a release of the same apex name in another namespace is refused), deleted on finalize."""
    release = setup_release(api, namespace, "kuma")
    router = router_for("kuma", api, Settings())
    custom = client.CustomObjectsApi(api)

    def live() -> Any:
        try:
            return custom.get_cluster_custom_object("kuma.io", "v1alpha1", "trafficroutes", TARGET,
                                                    _request_timeout=10)
        except ApiException as e:
            assert e.status == 404
            return None

    router.reconcile(release)
    assert router.verify_weight(release) == (100, 0)
    route = live()
    assert route["mesh"] == "default" and "namespace" not in route["metadata"]
    assert "ownerReferences" not in route["metadata"]
    assert route["spec"]["destinations"] == [{"match": {"kuma.io/service": f"{TARGET}_{namespace}_svc_9898"}}]
    version = route["metadata"]["resourceVersion"]
    router.reconcile(release)  # idempotent
    assert live()["metadata"]["resourceVersion"] == version
    router.set_weight(release, 90, 10)
    router.reconcile(release)  # keeps the weights
    assert router.verify_weight(release) == (90, 10)
    assert [s["weight"] for s in live()["spec"]["conf"]["split"]] == [90, 10]

    other_ns = f"routers-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": other_ns}}, _request_timeout=10)  # type: ignore[arg-type]
    other = setup_release(api, other_ns, "kuma")
    with pytest.raises(RouterError, match="cluster-scoped") as e:
        router.set_weight(other, 50, 50)
    assert not e.value.temporary
    assert router.verify_weight(other) is None
    router.finalize(other)  # not its route: left alone
    assert router.verify_weight(release) == (90, 10)

    router.finalize(release)
    assert live() is None and router.verify_weight(release) is None
    router.finalize(release)  # finalizing twice is harmless


def test_conflicting_write_is_retried(api: client.ApiClient, namespace: str) -> None:
    """Someone writes the route between our read and our write: the 409 is retried on a fresh read,
    and their change survives ours."""
    release = setup_release(api, namespace, "gatewayapi")
    router = GatewayAPIRouter(api, Settings())
    router.reconcile(release)
    custom = client.CustomObjectsApi(api)
    args = ("gateway.networking.k8s.io", "v1", namespace, "httproutes", TARGET)
    stale: dict[str, Any] = {}

    original_get = router.objects.get

    def get_then_interfere(kind: Kind, ns: str, name: str) -> Obj | None:
        live = original_get(kind, ns, name)
        if not stale and live is not None:  # the first read: another writer gets in right after it
            stale["seen"] = live["metadata"]["resourceVersion"]
            custom.patch_namespaced_custom_object(*args, {"metadata": {"labels": {"team": "web"}}},
                                                  _request_timeout=10)
        return live

    router.objects.get = get_then_interfere  # type: ignore[method-assign,assignment]
    router.set_weight(release, 70, 30)
    route: Any = custom.get_namespaced_custom_object(*args, _request_timeout=10)
    assert route["metadata"]["resourceVersion"] != stale["seen"]
    assert route["metadata"]["labels"]["team"] == "web"
    assert router.verify_weight(release) == (70, 30)


def test_missing_pieces_are_reported(api: client.ApiClient, namespace: str, tmp_path: Path) -> None:
    """A Service the workloads have not made yet is a temporary error; a kind nobody serves says so."""
    custom = client.CustomObjectsApi(api)
    obj: Any = custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "canaries",
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Canary", "metadata": {"name": TARGET},
         "spec": {"provider": "kubernetes", "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                                          "name": TARGET},
                  "service": {"port": 9898}, "analysis": {"interval": "1m", "iterations": 2}}},
        _request_timeout=10)
    release = parse_canary(obj)
    router = router_for("kubernetes", api, Settings())
    with pytest.raises(RouterError, match="the workloads create") as e:
        router.reconcile(release)
    assert e.value.temporary and not e.value.kind_missing
    assert router.verify_weight(release) is None
    router.finalize(release)  # nothing to hand back: no error
    with pytest.raises(RouterError, match="installed") as e2:
        Objects(api, Settings().api_timeout).get(Kind("example.com/v1", "Nothing", "nothings"), namespace, "x")
    assert e2.value.temporary and e2.value.kind_missing
    with pytest.raises(ApiException):
        custom.get_namespaced_custom_object("example.com", "v1", namespace, "nothings", "x", _request_timeout=10)


def test_gloo_upstreams_copy_the_upstream_ref_and_need_it(api: client.ApiClient, namespace: str) -> None:
    """Flagger's `upstreamRef`: the router's Upstreams carry the named Upstream's settings; while it is
    missing, reconciling waits (a temporary error naming the field)."""
    release = setup_release(api, namespace, "gloo")
    ref = ObjectRef(api_version="gloo.solo.io/v1", kind="Upstream", name="podinfo-config", namespace=namespace)
    release = replace(release, spec=replace(release.spec, upstream_ref=ref))
    router = router_for("gloo", api, Settings())
    with pytest.raises(RouterError, match=r"spec\.upstreamRef") as e:
        router.reconcile(release)
    assert e.value.temporary
    config = {"apiVersion": "gloo.solo.io/v1", "kind": "Upstream", "metadata": {"name": "podinfo-config"},
              "spec": {"circuitBreakers": {"maxConnections": 10}, "kube": {"serviceName": "podinfo",
                                                                           "serviceNamespace": namespace,
                                                                           "servicePort": 9898}}}
    client.CustomObjectsApi(api).create_namespaced_custom_object("gloo.solo.io", "v1", namespace, "upstreams", config,
                                                                 _request_timeout=10)
    router.reconcile(release)
    upstream = read(api, namespace, "gloo.solo.io/v1", "upstreams", "{ns}-podinfo-canaryupstream-9898")
    assert upstream is not None and upstream["spec"]["circuitBreakers"] == {"maxConnections": 10}
    assert upstream["spec"]["kube"] == {"serviceName": f"{TARGET}-canary", "serviceNamespace": namespace,
                                        "servicePort": 9898, "selector": {"app": TARGET}}
    assert router.verify_weight(release) == (100, 0)


def test_knative_service_target(api: client.ApiClient, namespace: str) -> None:
    """The Knative Service as a release's target, against the sandbox's Knative: a new template is a
    new Revision (the canary), promotion makes it the primary, a template back at the primary's is the
    promoted spec however many Revisions it took, and deletion hands the Service back to Knative."""
    release = knative_release(api, namespace)
    services, router = KnativeServices(api, Settings()), router_for("knative", api, Settings())
    router.reconcile(release)
    target, primary = services.observe(release)
    assert primary.ready and target.spec_hash == primary.spec_hash
    assert services.routes(release) == {"canary": f"{TARGET}-00001", "primary": f"{TARGET}-00001"}

    custom = client.CustomObjectsApi(api)
    v2 = {"spec": {"template": knative_service(VERSIONS[2], namespace)["spec"]["template"]}}
    custom.patch_namespaced_custom_object(*KNATIVE, namespace, "services", TARGET, v2, _request_timeout=10)
    wait_for("the v2 Revision ready", lambda: services.observe(release)[0].ready or None)
    target, primary = services.observe(release)
    assert target.spec_hash != primary.spec_hash
    assert services.routes(release) == {"canary": f"{TARGET}-00002", "primary": f"{TARGET}-00001"}
    router.set_weight(release, 70, 30)
    live: Any = custom.get_namespaced_custom_object(*KNATIVE, namespace, "services", TARGET, _request_timeout=10)
    wait_for("Knative applying the split", lambda: custom.get_namespaced_custom_object(
        *KNATIVE, namespace, "services", TARGET, _request_timeout=10)["status"].get("traffic") == [
        {"latestRevision": True, "percent": 30, "revisionName": f"{TARGET}-00002"},
        {"latestRevision": False, "percent": 70, "revisionName": f"{TARGET}-00001"}] or None)
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == VERSIONS[2].image  # only traffic changed

    services.promote(release)
    target, primary = services.observe(release)
    assert primary.ready and primary.spec_hash == target.spec_hash
    assert services.routes(release)["primary"] == f"{TARGET}-00002"
    router.set_weight(release, 100, 0)
    assert router.verify_weight(release) == (100, 0)

    # v3 and back to v2 (a revert in Git): Knative makes Revisions 3 and 4; the 4th is the promoted spec
    for version in (3, 2):
        body = {"spec": {"template": knative_service(VERSIONS[version], namespace)["spec"]["template"]}}
        custom.patch_namespaced_custom_object(*KNATIVE, namespace, "services", TARGET, body, _request_timeout=10)
        wait_for(f"the v{version} Revision ready", lambda: services.observe(release)[0].ready or None)
    target, primary = services.observe(release)
    assert services.routes(release) == {"canary": f"{TARGET}-00004", "primary": f"{TARGET}-00002"}
    assert target.spec_hash == primary.spec_hash

    router.finalize(release)
    services.finalize(release)  # nothing in flight: Knative's default split, no annotations of ours
    live = custom.get_namespaced_custom_object(*KNATIVE, namespace, "services", TARGET, _request_timeout=10)
    assert live["spec"]["traffic"] == [{"latestRevision": True, "percent": 100}]
    assert "flagger.app/primary-revision" not in (live["metadata"].get("annotations") or {})
