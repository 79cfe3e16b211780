"""A MetricTemplate's metrics are asked of the template's own provider, with the credentials of its Secret.

The operator runs against the session's Prometheus (its `--prometheus`). A second real Prometheus,
behind basic auth, scrapes an exporter of its own: only it holds the traffic of the workloads
here. A Canary whose one metric comes from a template with `provider.address` at the second
Prometheus and `secretRef` naming a Secret with the user and password is promoted on numbers that
the operator-wide Prometheus does not have. With a wrong password the check says the provider
refused the credentials, naming the template, and the release fails without the operator crashing.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from rollout.api.kinds import GROUP, VERSION
from tests.e2e.conftest import OperatorProcess, release_status, set_image, wait_for, wait_phase
from tests.e2e.exporter import Exporter
from tests.e2e.test_operator import NEW, canary, start
from tests.prom import BASIC_AUTH, RunningPrometheus, running_prometheus

pytestmark = pytest.mark.e2e

REQUESTS = ('sum(rate(istio_requests_total{destination_workload_namespace="{{ namespace }}",'
            'destination_workload="{{ target }}"}[{{ interval }}]))')


@pytest.fixture(scope="module")
def own_exporter() -> Iterator[Exporter]:
    e = Exporter().start()
    yield e
    e.stop()


@pytest.fixture(scope="module")
def guarded(own_exporter: Exporter) -> Iterator[RunningPrometheus]:
    with running_prometheus(scrape_target=own_exporter.url, scrape_interval="1s", basic_auth=True) as prom:
        yield prom


def query(prom: RunningPrometheus, promql: str, auth: tuple[str, str] | None = None) -> float | None:
    request = urllib.request.Request(f"{prom.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    with urllib.request.urlopen(request, timeout=10) as response:
        result = json.load(response)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def secret(api: client.ApiClient, namespace: str, name: str, username: str, password: str) -> None:
    client.CoreV1Api(api).create_namespaced_secret(namespace, {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
        "data": {"username": base64.b64encode(username.encode()).decode(),
                 "password": base64.b64encode(password.encode()).decode()}})


def template(api: client.ApiClient, namespace: str, name: str, address: str, secret_name: str) -> None:
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "metrictemplates", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "MetricTemplate",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"provider": {"type": "prometheus", "address": address, "secretRef": {"name": secret_name}},
                 "query": REQUESTS}})


def with_template(name: str, namespace: str, template_name: str) -> dict[str, Any]:
    return canary(name, namespace, metrics=[{"name": "requests-per-second", "interval": "10s",
                                             "templateRef": {"name": template_name},
                                             "thresholdRange": {"min": 1}}])


def metric_status(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    metrics = (release_status(api, namespace, name).get("analysis") or {}).get("metrics") or []
    return metrics[0] if metrics else None


def traffic(exporter: Exporter, namespace: str, name: str) -> None:
    exporter.set(namespace, name, rps=50)
    exporter.set(namespace, f"{name}-primary", rps=50)


def test_the_templates_prometheus_is_asked_with_its_secrets_credentials(
        api: client.ApiClient, operator: OperatorProcess, prometheus: RunningPrometheus, guarded: RunningPrometheus,
        own_exporter: Exporter, namespace: str) -> None:
    traffic(own_exporter, namespace, "podinfo")  # only the second Prometheus sees this traffic
    secret(api, namespace, "prom-auth", *BASIC_AUTH)
    template(api, namespace, "requests", guarded.url, "prom-auth")
    selector = f'istio_requests_total{{destination_workload_namespace="{namespace}",destination_workload="podinfo"}}'
    wait_for("the second Prometheus to scrape the traffic",
             lambda: (query(guarded, f"sum(rate({selector}[10s]))", BASIC_AUTH) or 0) > 1, timeout=30)
    assert query(prometheus, f"sum({selector})") is None  # the operator-wide Prometheus has none of it

    start(api, with_template("podinfo", namespace, "requests"))
    set_image(api, "podinfo", namespace, NEW)
    checked = wait_for("a check of the template's metric",
                       lambda: m if (m := metric_status(api, namespace, "podinfo")) and m.get("value") else None,
                       timeout=60)
    assert checked["verdict"] == "pass" and 1 < checked["value"] <= 60, checked
    status = wait_phase(api, namespace, "podinfo", "Succeeded", "Failed", timeout=120)
    assert status["phase"] == "Succeeded", operator.output()


def test_a_wrong_password_is_a_readable_reason_not_a_crash(
        api: client.ApiClient, operator: OperatorProcess, guarded: RunningPrometheus, own_exporter: Exporter,
        namespace: str) -> None:
    traffic(own_exporter, namespace, "web")
    secret(api, namespace, "bad-auth", BASIC_AUTH[0], "not-the-password")
    template(api, namespace, "requests", guarded.url, "bad-auth")
    start(api, with_template("web", namespace, "requests"))
    set_image(api, "web", namespace, NEW)
    refused = wait_for("the check's reason",
                       lambda: m if (m := metric_status(api, namespace, "web")) and m.get("reason") else None,
                       timeout=60)
    assert refused["verdict"] == "fail"
    assert refused["reason"].startswith(f"cannot be checked: MetricTemplate {namespace}/requests (prometheus): "
                                        f"Prometheus at {guarded.url} refused the credentials (401)"), refused
    assert "not-the-password" not in json.dumps(release_status(api, namespace, "web"))
    status = wait_phase(api, namespace, "web", "Failed", "Succeeded", timeout=120)
    assert status["phase"] == "Failed"
    assert operator.process is not None and operator.process.poll() is None  # still running
    assert "Traceback" not in operator.output()
