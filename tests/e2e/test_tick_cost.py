"""What one tick costs the API server, counted by the sandbox: a guard on the operator's load.

The operator's reconcile runs in-process here (no kopf), so every request counted is its own.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from rollout.engine.cache import CachingApiClient
from rollout.engine.kube import api_client
from rollout.engine.operator import Operator
from rollout.settings import Settings
from sandbox import Sandbox
from sandbox.apiserver import REQUESTS_PATH
from tests.e2e.conftest import create_deployment, create_release, set_image, wait_for
from tests.e2e.test_operator import canary

pytestmark = pytest.mark.e2e

# The collections the watch-fed cache lists and watches (a list and a watch are served on one path).
_WATCHED = ("/deployments", "/services", "/canaries", "/virtualservices", "/destinationrules", "/configmaps",
            "/secrets")


@pytest.mark.parametrize("cached", [False, True], ids=["direct", "watch-cache"])
def test_requests_per_tick(tmp_path: Path, cached: bool) -> None:
    with Sandbox(deployment_ready_delay=0.1) as sb:
        api = api_client(sb.write_kubeconfig(tmp_path / "kubeconfig"))
        client.CoreV1Api(api).create_namespace({"metadata": {"name": "cost"}})
        create_deployment(api, "app", "cost")
        create_release(api, canary("app", "cost", "istio", metrics=[], stepWeight=50, interval="1s"))
        settings = Settings(prometheus="http://127.0.0.1:9")
        ticking = CachingApiClient(api.configuration, settings) if cached else api
        operator = Operator(ticking, settings=settings)
        assert sb.api is not None
        served = sb.api.served
        writes: list[int] = []

        def tick() -> int:
            before = served.copy()
            operator.reconcile("Canary", "cost", "app")
            # Watch streams (opened once per kind, then kept) are not a tick's cost.
            spent = {k: n for k, n in (served - before).items() if not k.endswith(_WATCHED)}
            writes.append(sum(n for k, n in spent.items() if not k.startswith("GET ")))
            return sum(spent.values())

        def phase() -> str:
            obj = client.CustomObjectsApi(api).get_namespaced_custom_object(
                "rollout.gitops.dev", "v1alpha1", "cost", "canaries", "app")
            return str((obj.get("status") or {}).get("phase"))

        costs: dict[str, list[int]] = {}
        for _ in range(40):
            name = phase()
            costs.setdefault(name, []).append(tick())
            if name == "Initialized" and len(costs["Initialized"]) == 3:
                set_image(api, "app", "cost", "x:2")
            if name == "Succeeded":
                break
            time.sleep(0.6)
        wait_for("Succeeded", lambda: phase() == "Succeeded", timeout=10)
        if isinstance(ticking, CachingApiClient):
            ticking.close()
        idle = min(costs["Initialized"])
        busy = max(costs["Progressing"])
        print(f"\nAPI requests per tick ({'watch-fed cache' if cached else 'direct reads'}): idle {idle}, "
              f"progressing up to {busy}, writes up to {max(writes)}; by phase {costs}")
        if cached:
            # Every read from memory; the writes: the intent, the status, an Event, the route or the workload.
            assert costs["Initialized"][1:3] == [0, 0]  # the ticks before the image changed
            assert busy <= 4 and max(writes) <= 4
        else:
            # One GET of the release, two of the Deployments, one of the route; writes only on change.
            assert idle <= 4
            assert busy <= 12


def test_prometheus_down_holds_the_release_without_failing_it(tmp_path: Path) -> None:
    """Metrics that cannot be read are "no data": the release holds (and would fail only at the
    progress deadline); the operator neither crashes nor counts a failed check."""
    with Sandbox(deployment_ready_delay=0.1) as sb:
        api = api_client(sb.write_kubeconfig(tmp_path / "kubeconfig"))
        client.CoreV1Api(api).create_namespace({"metadata": {"name": "down"}})
        create_deployment(api, "app", "down")
        create_release(api, canary("app", "down", "istio", interval="1s"))
        operator = Operator(api, settings=Settings(prometheus="http://127.0.0.1:9"))

        def status() -> dict[str, Any]:
            obj = client.CustomObjectsApi(api).get_namespaced_custom_object(
                "rollout.gitops.dev", "v1alpha1", "down", "canaries", "app")
            return dict(obj.get("status") or {})

        for _ in range(60):
            operator.reconcile("Canary", "down", "app")
            if status().get("phase") == "Initialized":
                set_image(api, "app", "down", "x:2")
            if (status().get("analysis") or {}).get("verdict") == "no-data":
                break
            time.sleep(0.5)
        final = status()
        assert final["phase"] == "Progressing" and final["failedChecks"] == 0
        assert "Prometheus unavailable" in final["analysis"]["metrics"][0]["reason"]


def test_the_sandbox_counts_requests_by_client_and_watches_apart(tmp_path: Path) -> None:
    """What a process outside reads (the scale benchmark): each client's requests by User-Agent, a
    watch as "WATCH path" once when opened; reading the counts is not itself counted."""
    with Sandbox() as sb:
        api = api_client(sb.write_kubeconfig(tmp_path / "kubeconfig"))
        api.user_agent = "counted-client"
        core = client.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": "counted"}})
        core.list_namespaced_config_map("counted")
        core.list_namespaced_config_map("counted", watch=True, timeout_seconds=1, _preload_content=False).read()

        def counts() -> dict[str, dict[str, int]]:
            with urllib.request.urlopen(sb.url + REQUESTS_PATH, timeout=5) as answer:
                return dict(json.loads(answer.read())["agents"])

        first = counts()
        mine = first["counted-client"]
        path = "/api/v1/namespaces/counted/configmaps"
        assert mine["POST /api/v1/namespaces"] == 1
        assert mine[f"GET {path}"] == 1 and mine[f"WATCH {path}"] == 1
        assert counts() == first


def test_a_write_to_one_deployment_costs_the_sandbox_that_one_not_all(tmp_path: Path) -> None:
    """The simulated Deployment controller looks at the Deployments written to (and those due to
    become ready), not at every Deployment after every write; their status is still kept."""
    with Sandbox(deployment_ready_delay=0.2) as sb:
        api = api_client(sb.write_kubeconfig(tmp_path / "kubeconfig"))
        client.CoreV1Api(api).create_namespace({"metadata": {"name": "many"}})
        for i in range(30):
            create_deployment(api, f"app-{i}", "many")
        apps = client.AppsV1Api(api)

        def available(name: str) -> bool:
            d = apps.read_namespaced_deployment(name, "many")
            return bool(d.status.ready_replicas == d.spec.replicas and d.status.updated_replicas == d.spec.replicas
                        and d.status.observed_generation == d.metadata.generation and not
                        (d.status.replicas or 0) > d.spec.replicas)

        wait_for("every Deployment available", lambda: all(available(f"app-{i}") for i in range(30)), timeout=20)
        time.sleep(0.5)  # the last status writes looked at once more
        controller = sb.deployments
        assert controller is not None
        looked_at: list[str] = []
        original = controller._reconcile_one

        def counting(spec: Any, obj: dict[str, Any], now: float) -> float | None:
            looked_at.append(obj["metadata"]["name"])
            return original(spec, obj, now)

        sb.call(lambda: setattr(controller, "_reconcile_one", counting))
        set_image(api, "app-7", "many", "x:2")
        wait_for("the changed Deployment rolled out", lambda: available("app-7") and image_is(apps, "app-7", "x:2"),
                 timeout=20)
        time.sleep(0.5)
        assert set(looked_at) == {"app-7"}
        assert len(looked_at) <= 10


def image_is(apps: client.AppsV1Api, name: str, image: str) -> bool:
    return str(apps.read_namespaced_deployment(name, "many").spec.template.spec.containers[0].image) == image
