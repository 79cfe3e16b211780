"""The operator end to end: the sandbox API, a real Prometheus scraping a test-controlled exporter,
and `rollout run` as a real process (the kopf runtime and the official client), stopped by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from rollout.api.kinds import GROUP, VERSION
from rollout.engine.kube import api_client
from rollout.engine.leader import LEASE_NAME
from tests.e2e.exporter import Exporter
from tests.prom import RunningPrometheus, free_port, running_prometheus
from tests.tools import wait_for

T = TypeVar("T")


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`rollout sandbox up` in its own process (as a user runs it), so the API server does not
    share an interpreter with the tests' polling; yields its kubeconfig."""
    root = tmp_path_factory.mktemp("kube")
    kubeconfig, log = root / "kubeconfig", root / "sandbox.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(Path(sys.executable).parent / "rollout"), "sandbox", "up", "--kubeconfig",
                                    str(kubeconfig)], stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for("the sandbox", lambda: kubeconfig.exists() and "kubeconfig:" in log.read_text(), timeout=30)
        yield kubeconfig
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def api(sandbox: Path) -> client.ApiClient:
    return api_client(sandbox)


@pytest.fixture(scope="session")
def exporter() -> Iterator[Exporter]:
    e = Exporter().start()
    yield e
    e.stop()


@pytest.fixture(scope="session")
def prometheus(exporter: Exporter) -> Iterator[RunningPrometheus]:
    with running_prometheus(scrape_target=exporter.url, scrape_interval="1s") as prom:
        yield prom


class OperatorProcess:
    """`rollout run` in its own process; `kill()` is SIGKILL, as a crashed pod would die."""

    def __init__(self, kubeconfig: Path, prometheus: str, reports: Path, log: Path) -> None:
        # Its own port for /metrics, /healthz and /readyz: several operators run at once in the tests.
        self.metrics_port = free_port()
        self.webhook_port = free_port()  # the GitSources' push webhooks
        self.args = [str(Path(sys.executable).parent / "rollout"), "run", "--kubeconfig", str(kubeconfig),
                     "--prometheus", prometheus, "--reports", str(reports), "--git-cache", str(reports.parent / "git"),
                     "--metrics-addr", f"127.0.0.1:{self.metrics_port}",
                     "--webhook-addr", f"127.0.0.1:{self.webhook_port}"]
        self.log = log
        self.reports = reports
        self.dashboard_port: int | None = None
        self.env: dict[str, str] = {}  # e.g. POD_NAME, the identity of a leader election candidate
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT,
                                            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env})

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def metrics_url(self) -> str:
        """Where it serves /metrics, /healthz and /readyz."""
        return f"http://127.0.0.1:{self.metrics_port}"

    @property
    def dashboard_url(self) -> str:
        """Where it serves the dashboard (`--dashboard-addr`), when it does."""
        assert self.dashboard_port is not None, "this operator serves no dashboard"
        return f"http://127.0.0.1:{self.dashboard_port}"

    def sample(self, metric: str, /, **labels: str) -> float | None:
        """One sample of its /metrics now, None when it has no such series."""
        with urllib.request.urlopen(f"{self.metrics_url}/metrics", timeout=10) as response:
            text = response.read().decode()
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == metric and s.labels == labels:
                    return float(s.value)
        return None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]


@pytest.fixture(scope="session")
def operator(sandbox: Path, prometheus: RunningPrometheus,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    root = tmp_path_factory.mktemp("operator")
    process = OperatorProcess(sandbox, prometheus.url, root / "reports", root / "operator.log")
    # The shared operator serves the dashboard too, which the browser test drives.
    process.dashboard_port = free_port()
    process.args += ["--dashboard-addr", f"127.0.0.1:{process.dashboard_port}"]
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    """A namespace per test, deleted afterwards so finished releases stop costing the shared operator."""
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def deployment(name: str, namespace: str, image: str = "ghcr.io/stefanprodan/podinfo:6.0.0", replicas: int = 2,
               ) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image, "ports": [{"name": "http",
                                                                                     "containerPort": 9898}]}]},
            },
        },
    }


def create_deployment(api: client.ApiClient, name: str, namespace: str, **kwargs: Any) -> None:
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment(name, namespace, **kwargs))


def set_image(api: client.ApiClient, name: str, namespace: str, image: str) -> None:
    client.AppsV1Api(api).patch_namespaced_deployment(
        name, namespace, {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}},
        _content_type="application/strategic-merge-patch+json",
    )


def image_of(api: client.ApiClient, name: str, namespace: str) -> str:
    d = client.AppsV1Api(api).read_namespaced_deployment(name, namespace)
    return str(d.spec.template.spec.containers[0].image)


def create_release(api: client.ApiClient, obj: dict[str, Any]) -> None:
    plural = "canaries" if obj["kind"] == "Canary" else "bluegreens"
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, obj["metadata"]["namespace"],
                                                                 plural, obj)


def release_status(api: client.ApiClient, namespace: str, name: str, kind: str = "Canary") -> dict[str, Any]:
    plural = "canaries" if kind == "Canary" else "bluegreens"
    with contextlib.suppress(client.exceptions.ApiException):
        obj = client.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
        return dict(obj.get("status") or {})
    return {}


def wait_phase(api: client.ApiClient, namespace: str, name: str, *phases: str, kind: str = "Canary",
               timeout: float = 90.0) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        status = release_status(api, namespace, name, kind)
        return status if status.get("phase") in phases else None

    return wait_for(f"{kind} {namespace}/{name} in {phases}", probe, timeout)


def lease_holder(api: client.ApiClient, namespace: str) -> str | None:
    """The leader election Lease's holder ("" when released), None while there is no Lease."""
    try:
        lease: Any = client.CoordinationV1Api(api).read_namespaced_lease(LEASE_NAME, namespace)
    except client.exceptions.ApiException:
        return None
    return str(lease.spec.holder_identity or "")
