"""The mesh provider default and releases that cannot route, end to end: `rollout run` as a real
process on a sandbox that, like a cluster without Istio, does not serve Istio's kinds.

A Canary without `spec.provider` is an Istio Canary under the default (Flagger's), and with no
Istio it fails at its progress deadline instead of hanging at 0%; under `--mesh-provider
gatewayapi` the same Canary is released through an HTTPRoute; a route whose Gateway went missing
fails the release at the deadline with all traffic on the primary."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kubernetes import client

from rollout.api.kinds import GROUP, VERSION
from sandbox import Sandbox
from sandbox.demo.app import gateway
from tests.e2e.conftest import (
    OperatorProcess,
    create_deployment,
    create_release,
    image_of,
    release_status,
    set_image,
    wait_phase,
)
from tests.gitrepo import GitRemote, deployment_yaml
from tests.tools import wait_for

pytestmark = pytest.mark.e2e

ISTIO = ("virtualservices.networking.istio.io", "destinationrules.networking.istio.io")
OLD, NEW = "ghcr.io/stefanprodan/podinfo:6.0.0", "ghcr.io/stefanprodan/podinfo:6.0.1"
DEADLINE = 6
GATEWAYS = ("gateway.networking.k8s.io", "v1")


class World:
    def __init__(self, api: client.ApiClient, default: str, gatewayapi: str, operators: list[OperatorProcess]):
        self.api = api
        self.default = default  # watched by an operator with the default mesh provider
        self.gatewayapi = gatewayapi  # watched by one started with --mesh-provider gatewayapi
        self.operators = operators

    def output(self) -> str:
        return "\n".join(o.output() for o in self.operators)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("mesh")
    with Sandbox(without_kinds=ISTIO) as sb:
        kubeconfig = sb.write_kubeconfig(root / "kubeconfig")
        api: client.ApiClient = kubernetes.config.new_client_from_config(str(kubeconfig))  # type: ignore[no-untyped-call]
        names = [f"mesh-{uuid.uuid4().hex[:6]}" for _ in range(2)]
        for name in names:
            client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        operators = []
        for i, (name, extra) in enumerate(((names[0], []), (names[1], ["--mesh-provider", "gatewayapi"]))):
            op = OperatorProcess(kubeconfig, "http://127.0.0.1:9", root / f"reports{i}", root / f"operator{i}.log")
            op.args += ["-n", name, "--error-backoff", "1", "--invalid-recheck", "1", *extra]
            op.start()
            operators.append(op)
        try:
            yield World(api, names[0], names[1], operators)
        finally:
            for op in operators:
                op.stop()
            api.close()  # type: ignore[no-untyped-call]


def canary(name: str, namespace: str, **service: Any) -> dict[str, Any]:
    """A Canary as Flagger's docs write many: no spec.provider. No metrics: each step passes."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Canary", "metadata": {"name": name, "namespace": namespace},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                 "progressDeadlineSeconds": DEADLINE,
                 "service": {"port": 9898, **service},
                 "analysis": {"interval": "1s", "threshold": 2, "maxWeight": 50, "stepWeight": 25}},
    }


def route_weights(api: client.ApiClient, namespace: str, name: str) -> dict[str, int]:
    route: Any = client.CustomObjectsApi(api).get_namespaced_custom_object(*GATEWAYS, namespace, "httproutes", name)
    return {b["name"]: b["weight"] for b in route["spec"]["rules"][-1]["backendRefs"]}


def events(api: client.ApiClient, namespace: str, name: str, reason: str) -> list[str]:
    found = client.CoreV1Api(api).list_namespaced_event(namespace).items
    return [e.message for e in found if e.reason == reason and e.involved_object.name == name]


def promoted(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status.get("conditions") or [] if c["type"] == "Promoted")


def test_without_provider_a_canary_is_istio_and_without_istio_it_fails_at_the_deadline(world: World) -> None:
    api, ns, name = world.api, world.default, "podinfo"
    create_deployment(api, name, ns)
    create_release(api, canary(name, ns))
    status = wait_phase(api, ns, name, "Failed", timeout=60)
    assert status["provider"] == "istio", world.output()
    message = promoted(status)["message"]
    assert message.startswith(f"traffic cannot be routed within progressDeadlineSeconds ({DEADLINE}s): ")
    assert "VirtualService" in message and "installed" in message
    # The Event follows the status that records the failure.
    wait_for("the Failed Event", lambda: any("VirtualService" in m for m in events(api, ns, name, "Failed")),
             timeout=15)
    # Nothing was released: the apex Service sends everything to the primary.
    core = client.CoreV1Api(api)
    assert core.read_namespaced_service(name, ns).spec.selector == \
        core.read_namespaced_service(f"{name}-primary", ns).spec.selector
    assert status["canaryWeight"] == 0
    # Failed stays failed, quietly: no new Events while nothing changes.
    before = len(events(api, ns, name, "Failed"))
    wait_phase(api, ns, name, "Failed")
    assert len(events(api, ns, name, "Failed")) == before
    # Deleting it completes at once: with no route kind there is no route to hand back.
    client.CustomObjectsApi(api).delete_namespaced_custom_object(GROUP, VERSION, ns, "canaries", name)

    def gone() -> bool | None:
        try:
            client.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, ns, "canaries", name)
        except client.exceptions.ApiException as e:
            return e.status == 404 or None
        return None

    wait_for("the Canary deleted, finalizer and all", gone, timeout=10)
    assert events(api, ns, name, "FinalizeFailed") == []  # not let go after retries: nothing failed


def test_under_mesh_provider_gatewayapi_a_canary_without_provider_progresses_and_promotes(world: World) -> None:
    api, ns, name = world.api, world.gatewayapi, "web"
    client.CustomObjectsApi(api).create_namespaced_custom_object(*GATEWAYS, ns, "gateways", gateway(ns))
    create_deployment(api, name, ns)
    create_release(api, canary(name, ns, gatewayRefs=[{"name": "public"}]))
    status = wait_phase(api, ns, name, "Initialized", timeout=60)
    assert status["provider"] == "gatewayapi", world.output()
    set_image(api, name, ns, NEW)
    seen: set[int] = set()

    def done() -> dict[str, Any] | None:
        status = release_status(api, ns, name)
        seen.add(route_weights(api, ns, name)[f"{name}-canary"])
        return status if status.get("phase") in ("Succeeded", "Failed") else None

    status = wait_for("the release to end", done, timeout=90)
    assert status["phase"] == "Succeeded", world.output()
    assert {25, 50} <= seen
    assert route_weights(api, ns, name) == {f"{name}-primary": 100, f"{name}-canary": 0}


def test_a_release_whose_gateway_is_gone_fails_at_the_deadline_with_traffic_on_the_primary(world: World) -> None:
    api, ns, name = world.api, world.gatewayapi, "shop"
    custom = client.CustomObjectsApi(api)
    mine = {**gateway(ns), "metadata": {"name": "shop-gateway", "namespace": ns}}
    custom.create_namespaced_custom_object(*GATEWAYS, ns, "gateways", mine)
    create_deployment(api, name, ns)
    create_release(api, canary(name, ns, gatewayRefs=[{"name": "shop-gateway"}]))
    wait_phase(api, ns, name, "Initialized", timeout=60)
    custom.delete_namespaced_custom_object(*GATEWAYS, ns, "gateways", "shop-gateway")
    set_image(api, name, ns, NEW)
    wait_phase(api, ns, name, "Progressing", timeout=30)
    status = wait_phase(api, ns, name, "Failed", timeout=60)
    message = promoted(status)["message"]
    assert message == (f"traffic cannot be routed within progressDeadlineSeconds ({DEADLINE}s): "
                       f"Gateway {ns}/shop-gateway (spec.service.gatewayRefs[0]) not found"), world.output()
    assert route_weights(api, ns, name) == {f"{name}-primary": 100, f"{name}-canary": 0}
    assert status["canaryWeight"] == 0
    wait_for("the canary scaled to zero",
             lambda: client.AppsV1Api(api).read_namespaced_deployment(name, ns).spec.replicas == 0 or None,
             timeout=30)


def test_with_git_a_release_that_cannot_route_is_reverted(world: World, tmp_path: Path) -> None:
    """The Gateway is gone when a new version is committed: the release fails at its deadline and,
    as for any failed release with spec.git, the commit is reverted and the revert applied."""
    api, ns, name = world.api, world.gatewayapi, "cart"
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(*GATEWAYS, ns, "gateways", {**gateway(ns), "metadata": {
        "name": "cart-gateway", "namespace": ns}})
    obj = canary(name, ns, gatewayRefs=[{"name": "cart-gateway"}])
    obj["spec"]["git"] = {"source": "cart", "author": {"name": "rollout-bot", "email": "rollout-bot@example.com"}}
    remote = GitRemote(tmp_path / "git")
    remote.commit({"apps/deployment.yaml": deployment_yaml(name, OLD, namespace=ns),
                   "apps/canary.yaml": yaml.safe_dump(obj)}, "feat(cart): podinfo 6.0.0")
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, "gitsources", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "GitSource", "metadata": {"name": "cart", "namespace": ns},
        "spec": {"url": remote.url, "branch": "main", "path": "./apps", "interval": "2s"}})
    wait_phase(api, ns, name, "Initialized", timeout=60)
    custom.delete_namespaced_custom_object(*GATEWAYS, ns, "gateways", "cart-gateway")
    bad = remote.commit({"apps/deployment.yaml": deployment_yaml(name, NEW, namespace=ns)}, "feat(cart): podinfo 6.0.1")
    status = wait_phase(api, ns, name, "Reverted", timeout=90)
    assert promoted(status)["message"].startswith(
        f"traffic cannot be routed within progressDeadlineSeconds ({DEADLINE}s): Gateway {ns}/cart-gateway"), \
        world.output()
    assert remote.log("-1")[0] == f"revert(cart): roll back {NEW} after failed canary"
    assert status["revert"]["reverts"] == [bad] and status["revert"]["state"] == "Applied"
    assert image_of(api, name, ns) == OLD and image_of(api, f"{name}-primary", ns) == OLD
    assert route_weights(api, ns, name) == {f"{name}-primary": 100, f"{name}-canary": 0}
