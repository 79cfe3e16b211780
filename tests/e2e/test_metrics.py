"""The operator's own metrics, as a platform team reads them: a real Prometheus scrapes `rollout run`'s
/metrics every second during a release on the sandbox, and the figures are queried back through
Prometheus' HTTP API (Flagger's names and labels, so Flagger's dashboards and alerts keep working).
The probes are read over HTTP like a kubelet does."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.e2e.conftest import OperatorProcess, release_status, set_image, wait_for, wait_phase
from tests.e2e.exporter import Exporter
from tests.e2e.test_operator import NEW, canary, healthy, start
from tests.prom import RunningPrometheus, running_prometheus

pytestmark = pytest.mark.e2e


@pytest.fixture
def scraper(operator: OperatorProcess) -> Iterator[RunningPrometheus]:
    """A Prometheus of its own that scrapes the operator (the session's scrapes the test exporter)."""
    with running_prometheus(scrape_target=f"{operator.metrics_url}/metrics", scrape_interval="1s") as prom:
        yield prom


def query(prom: RunningPrometheus, promql: str) -> float | None:
    """The single value of an instant query, None when it has no series."""
    url = f"{prom.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    result = body["data"]["result"]
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else None


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def test_prometheus_scrapes_the_release_figures(api: client.ApiClient, operator: OperatorProcess,
                                               exporter: Exporter, scraper: RunningPrometheus,
                                               namespace: str) -> None:
    obj = canary("podinfo", namespace, interval="2s")
    healthy(exporter, namespace, "podinfo")
    start(api, obj)
    wait_for("Prometheus to scrape the operator",
             lambda: query(scraper, "max(up)") == 1, timeout=30)
    labels = f'namespace="{namespace}"'
    wait_for("flagger_canary_status 1 (Initialized)",
             lambda: query(scraper, f'flagger_canary_status{{name="podinfo",{labels}}}') == 1, timeout=30)
    assert query(scraper, f"flagger_canary_total{{{labels}}}") == 1

    set_image(api, "podinfo", namespace, NEW)
    wait_for("the canary to take traffic", lambda: release_status(api, namespace, "podinfo").get("canaryWeight", 0) > 0,
             timeout=60)
    wait_for("flagger_canary_weight above 0 in Prometheus",
             lambda: (query(scraper, f'flagger_canary_weight{{workload="podinfo",{labels}}}') or 0) > 0, timeout=30)
    assert query(scraper, f'flagger_canary_status{{name="podinfo",{labels}}}') == 0  # running
    # The primary holds the rest of the traffic.
    assert (query(scraper, f'flagger_canary_weight{{workload="podinfo-primary",{labels}}}') or 0) < 100

    status = wait_phase(api, namespace, "podinfo", "Succeeded", "Failed", timeout=120)
    assert status["phase"] == "Succeeded", operator.output()
    wait_for("flagger_canary_status 1 after promotion",
             lambda: query(scraper, f'flagger_canary_status{{name="podinfo",{labels}}}') == 1, timeout=30)
    success = (f'flagger_canary_successes_total{{name="podinfo",{labels},deployment_strategy="canary",'
               'analysis_status="completed"}')
    wait_for("one success counted", lambda: query(scraper, success) == 1, timeout=30)
    assert query(scraper, f'flagger_canary_weight{{workload="podinfo",{labels}}}') == 0
    assert query(scraper, f'flagger_canary_weight{{workload="podinfo-primary",{labels}}}') == 100
    assert query(scraper, f"flagger_canary_failures_total{{{labels}}}") is None
    # The highest weight the canary had during the run, over Prometheus' own history (maxWeight 50).
    highest = query(scraper, f'max_over_time(flagger_canary_weight{{workload="podinfo",{labels}}}[5m])')
    assert highest is not None and 0 < highest <= 50
    rate = query(scraper, f'flagger_canary_metric_analysis{{name="podinfo",{labels},metric="request-success-rate"}}')
    assert rate is not None and rate > 99
    assert (query(scraper, f'flagger_canary_duration_seconds_count{{name="podinfo",{labels}}}') or 0) > 0
    assert (query(scraper, 'rollout_reconcile_duration_seconds_count{kind="Canary"}') or 0) > 0
    assert query(scraper, 'rollout_tick_lag_seconds_count{kind="Canary"}') is not None
    assert query(scraper, 'flagger_info{mesh_provider="istio"}') == 1
    assert query(scraper, "rollout_leader") == 1  # no leader election: the only replica acts
    # DORA: the promoted run counts as one deployment (this release has no Git revision, so no lead time).
    wait_for("one deployment in the DORA figures",
             lambda: query(scraper, f'rollout_dora_deployments_total{{name="podinfo",{labels}}}') == 1, timeout=30)
    assert query(scraper, f'rollout_dora_change_failures_total{{name="podinfo",{labels}}}') is None

    code, text = get(f"{operator.metrics_url}/healthz")
    assert code == 200 and text.startswith("ok: kopf running, its event loop ran "), text
    code, text = get(f"{operator.metrics_url}/readyz")
    assert (code, text) == (200, "ok: no leader election\n")
    scrape = get(f"{operator.metrics_url}/metrics")[1]
    shown = [line for line in scrape.splitlines() if namespace in line or line.startswith("rollout_reconcile")]
    print("\n" + "\n".join(shown))  # what the README shows


def test_a_rollback_is_counted_as_a_failure(api: client.ApiClient, operator: OperatorProcess, exporter: Exporter,
                                            scraper: RunningPrometheus, namespace: str) -> None:
    obj = canary("web", namespace)
    healthy(exporter, namespace, "web")
    start(api, obj)
    set_image(api, "web", namespace, NEW)
    wait_for("first step", lambda: release_status(api, namespace, "web").get("canaryWeight", 0) >= 10)
    exporter.set(namespace, "web", rps=50, error_ratio=0.3)
    assert wait_phase(api, namespace, "web", "Failed", "Succeeded", timeout=90)["phase"] == "Failed"
    labels = f'name="web",namespace="{namespace}"'
    wait_for("flagger_canary_status 2 after the rollback",
             lambda: query(scraper, f"flagger_canary_status{{{labels}}}") == 2, timeout=30)
    failures = f'flagger_canary_failures_total{{{labels},deployment_strategy="canary",analysis_status="completed"}}'
    wait_for("one failure counted", lambda: query(scraper, failures) == 1, timeout=30)
    assert query(scraper, f"flagger_canary_successes_total{{{labels}}}") is None
    # DORA: a change failure, and the time until traffic was back on the primary (one tick or less).
    wait_for("one change failure in the DORA figures",
             lambda: query(scraper, f"rollout_dora_change_failures_total{{{labels}}}") == 1, timeout=30)
    restored = f'rollout_dora_time_to_restore_seconds_count{{namespace="{namespace}",stage="traffic"}}'
    assert query(scraper, restored) == 1
    rate = query(scraper, f'flagger_canary_metric_analysis{{{labels},metric="request-success-rate"}}')
    assert rate is not None and rate < 99  # the failing check's value
