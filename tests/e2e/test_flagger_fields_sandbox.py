"""Flagger's service and webhook fields on the sandbox with the real operator: the generated
Services carry the discovered ports and the labels and annotations asked for, a webhook is
retried after a failing answer, and a Flagger field rollout does not support is refused by name
in the Canary's condition instead of being dropped.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.e2e.conftest import (
    GROUP,
    VERSION,
    OperatorProcess,
    create_release,
    image_of,
    release_status,
    set_image,
    wait_for,
    wait_phase,
)
from tests.e2e.conftest import deployment as base_deployment
from tests.e2e.exporter import Exporter

pytestmark = pytest.mark.e2e

OLD, NEW = "ghcr.io/stefanprodan/podinfo:6.0.0", "ghcr.io/stefanprodan/podinfo:6.0.1"


def canary(name: str, namespace: str, service: dict[str, Any], **analysis: Any) -> dict[str, Any]:
    spec_analysis: dict[str, Any] = {"interval": "1s", "threshold": 2, "maxWeight": 50, "stepWeight": 25,
                                     "metrics": [{"name": "request-success-rate", "interval": "10s",
                                                  "thresholdRange": {"min": 99}}]}
    spec_analysis.update(analysis)
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"provider": "istio", "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                 "progressDeadlineSeconds": 60, "service": service, "analysis": spec_analysis},
    }


def create_target(api: client.ApiClient, name: str, namespace: str) -> None:
    obj = base_deployment(name, namespace, image=OLD)
    obj["spec"]["template"]["spec"]["containers"][0]["ports"] = [
        {"name": "http", "containerPort": 9898}, {"name": "http-metrics", "containerPort": 9797},
        {"containerPort": 9999}]
    client.AppsV1Api(api).create_namespaced_deployment(namespace, obj)


def healthy(exporter: Exporter, namespace: str, name: str) -> None:
    exporter.set(namespace, name, rps=50, error_ratio=0.0)
    exporter.set(namespace, f"{name}-primary", rps=50, error_ratio=0.0)


def test_generated_services_get_discovered_ports_labels_and_annotations(
    api: client.ApiClient, operator: OperatorProcess, exporter: Exporter, namespace: str
) -> None:
    service = {"port": 80, "targetPort": 9898, "portDiscovery": True,
               "apex": {"labels": {"tier": "edge"}, "annotations": {"example.com/owner": "web"}},
               "primary": {"labels": {"role": "stable"}},
               "canary": {"annotations": {"example.com/purpose": "canary"}}}
    create_target(api, "web", namespace)
    healthy(exporter, namespace, "web")
    create_release(api, canary("web", namespace, service))
    wait_phase(api, namespace, "web", "Initialized")
    core = client.CoreV1Api(api)
    svc = {role: core.read_namespaced_service(name, namespace)
           for role, name in (("apex", "web"), ("primary", "web-primary"), ("canary", "web-canary"))}
    for role, s in svc.items():
        ports = sorted((p.name, p.port, p.target_port) for p in s.spec.ports)
        assert ports == [("http", 80, 9898), ("http-metrics", 9797, 9797), ("tcp-app-2", 9999, 9999)], role
    assert svc["apex"].metadata.labels["tier"] == "edge"
    assert svc["apex"].metadata.annotations["example.com/owner"] == "web"
    assert svc["primary"].metadata.labels["role"] == "stable"
    assert "example.com/owner" not in (svc["primary"].metadata.annotations or {})
    assert svc["canary"].metadata.annotations["example.com/purpose"] == "canary"
    assert "tier" not in (svc["canary"].metadata.labels or {})
    # A new version runs through with the Services in place.
    set_image(api, "web", namespace, NEW)
    assert wait_phase(api, namespace, "web", "Succeeded", "Failed", timeout=90)["phase"] == "Succeeded"
    assert image_of(api, "web-primary", namespace) == NEW


class FlakyHook:
    """Answers 500 to its first call and 200 after; records when each call came."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hook.calls.append(time.monotonic())
                self.send_response(500 if len(hook.calls) == 1 else 200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/pre"


@pytest.fixture
def flaky() -> Iterator[FlakyHook]:
    h = FlakyHook()
    yield h
    h.server.shutdown()
    h.server.server_close()


def test_a_webhook_is_retried_after_a_failing_answer(
    api: client.ApiClient, operator: OperatorProcess, exporter: Exporter, namespace: str, flaky: FlakyHook
) -> None:
    # A 10s interval: without retries the failed pre-rollout hook would be asked again only at the next tick.
    obj = canary("gate", namespace, {"port": 9898}, interval="10s",
                 webhooks=[{"name": "smoke", "type": "pre-rollout", "url": flaky.url, "timeout": "2s",
                            "retries": 2}])
    create_target(api, "gate", namespace)
    healthy(exporter, namespace, "gate")
    create_release(api, obj)
    wait_phase(api, namespace, "gate", "Initialized")
    set_image(api, "gate", namespace, NEW)
    wait_for("the retried pre-rollout hook", lambda: len(flaky.calls) >= 2, timeout=60)
    gap = flaky.calls[1] - flaky.calls[0]
    assert 0.9 <= gap < 5, f"the retry came {gap:.1f}s after the failure: {operator.output()}"
    wait_for("the canary to progress", lambda: release_status(api, namespace, "gate").get("canaryWeight", 0) > 0,
             timeout=60)
    assert release_status(api, namespace, "gate").get("failedChecks", 0) == 0


def test_a_flagger_field_not_supported_is_refused_by_name(
    api: client.ApiClient, operator: OperatorProcess, namespace: str
) -> None:
    obj = canary("headless", namespace, {"port": 9898, "headless": True})
    create_target(api, "headless", namespace)
    create_release(api, obj)

    def invalid() -> dict[str, Any] | None:
        conditions = release_status(api, namespace, "headless").get("conditions") or []
        return next((c for c in conditions if c["type"] == "Ready" and c["reason"] == "InvalidSpec"), None)

    condition = wait_for("the InvalidSpec condition", invalid, timeout=30)
    assert "spec.service.headless: Flagger's field is not supported by rollout; remove it" in condition["message"]
    events = client.CoreV1Api(api).list_namespaced_event(namespace).items
    assert any(e.reason == "InvalidSpec" and "spec.service.headless" in (e.message or "") for e in events)
