"""The Grafana dashboard's queries against a real Prometheus holding series shaped like the operator's.

Grafana itself cannot run here, so its part is played by substituting the dashboard's variables
(`$namespace`, `$name`, `$__rate_interval`, `$__range`, `$__range_s`) as Grafana would for one
selection. Prometheus is filled with every metric the dashboard shows, with the names and labels
the operator exports (Flagger's for releases, rollout's own for the rest), for the selected release
and for a decoy release in another namespace. Each panel query must return numbers for the
selection and nothing of the decoy, so a misspelt metric or label (which parses fine) fails here.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from analysis.providers.prometheus import PrometheusProvider
from tests.prom import RunningPrometheus, running_prometheus

pytestmark = pytest.mark.component

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "rollout.json"
NS, NAME = "demo", "podinfo"
DECOY_NS, DECOY_NAME = "other", "web"  # and a release named DECOY_NAME in NS too
STEP = 15  # seconds between samples
STEPS = 41  # ten minutes of samples
END = (int(time.time()) // 60) * 60 - 600  # a whole minute, well inside the default retention
# Series labelled with the release (`name`, or `workload` for the weight): a panel shows the selected one.
PER_RELEASE = {
    "flagger_canary_status", "flagger_canary_weight", "flagger_canary_duration_seconds_bucket",
    "flagger_canary_metric_analysis", "flagger_canary_successes_total", "flagger_canary_failures_total",
    "rollout_reverts_total", "rollout_judge_evidence", "rollout_dora_deployments_total",
    "rollout_dora_change_failures_total",
}
SELECTION = {"$__rate_interval": "1m", "$__range_s": "600", "$__range": "10m",
             "$namespace": NS, "$name": NAME}


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in labels.items())


def _gauge(name: str, labels: dict[str, str], value: float) -> list[str]:
    first = END - (STEPS - 1) * STEP
    return [f"{name}{{{_labels(labels)}}} {value} {first + k * STEP}" for k in range(STEPS)]


def _counter(name: str, labels: dict[str, str], per_step: float) -> list[str]:
    first = END - (STEPS - 1) * STEP
    return [f"{name}{{{_labels(labels)}}} {k * per_step} {first + k * STEP}" for k in range(STEPS)]


def _histogram(name: str, labels: dict[str, str], per_step: dict[float, int]) -> list[str]:
    """`per_step` observations per step, by bucket upper bound (not cumulative)."""
    lines: list[str] = []
    cumulative, total = 0, 0.0
    for upper in sorted(per_step):
        cumulative += per_step[upper]
        total += per_step[upper] * upper
        lines += _counter(f"{name}_bucket", {**labels, "le": f"{upper:g}"}, cumulative)
    lines += _counter(f"{name}_bucket", {**labels, "le": "+Inf"}, cumulative)
    lines += _counter(f"{name}_count", labels, cumulative)
    lines += _counter(f"{name}_sum", labels, total)
    return lines


def _release(ns: str, name: str) -> list[str]:
    """Every per-release series the operator exports, for one release."""
    release = {"name": name, "namespace": ns}
    outcome = {**release, "deployment_strategy": "canary", "analysis_status": "completed"}
    lines = [
        *_gauge("flagger_canary_status", release, 0),
        *_gauge("flagger_canary_weight", {"workload": name, "namespace": ns}, 30),
        *_gauge("flagger_canary_weight", {"workload": f"{name}-primary", "namespace": ns}, 70),
        *_histogram("flagger_canary_duration_seconds", release, {0.05: 3, 0.5: 1}),
        *_gauge("flagger_canary_metric_analysis", {**release, "metric": "request-success-rate"}, 99.5),
        *_counter("flagger_canary_successes_total", outcome, 0.1),
        *_counter("flagger_canary_failures_total", outcome, 0.05),
        *_gauge("flagger_canary_total", {"namespace": ns}, 1),
        *_gauge("rollout_gitsource_ready", release, 1),
        *_gauge("rollout_gitsource_applied_revision_info", {**release, "revision": "main@sha1:71035be49fc5"}, 1),
        *_counter("rollout_gitsource_apply_errors_total", release, 0.02),
        *_counter("rollout_gitsource_drift_corrections_total", release, 0.03),
        *_counter("rollout_gitsource_prunes_total", release, 0.01),
        *_counter("rollout_reverts_total", {**release, "outcome": "pushed"}, 0.05),
        *_gauge("rollout_judge_evidence", {**release, "metric": "request-success-rate", "judge": "compare",
                                           "statistic": "p_value"}, 0.2),
        *_gauge("rollout_judge_evidence", {**release, "metric": "request-success-rate", "judge": "sequential",
                                           "statistic": "e_value"}, 4.0),
        *_counter("rollout_dora_deployments_total", release, 0.1),
        *_counter("rollout_dora_change_failures_total", release, 0.05),
        *_histogram("rollout_dora_lead_time_seconds", {"namespace": ns}, {600: 1, 3600: 1}),
        *_histogram("rollout_dora_time_to_restore_seconds", {"namespace": ns, "stage": "traffic"}, {30: 1}),
        *_histogram("rollout_dora_time_to_restore_seconds", {"namespace": ns, "stage": "revert"}, {120: 1}),
    ]
    return lines


def _operator() -> list[str]:
    """The operator's own series: two replicas (leader and standby), no release labels."""
    lines: list[str] = []
    for pod, leader in (("rollout-6d4f9-a", 1), ("rollout-6d4f9-b", 0)):
        lines += _gauge("rollout_leader", {"pod": pod, "instance": f"{pod}:8080"}, leader)
    for kind in ("Canary", "GitSource"):
        lines += _histogram("rollout_reconcile_duration_seconds", {"kind": kind}, {0.01: 5, 0.1: 2})
        lines += _counter("rollout_reconcile_errors_total", {"kind": kind}, 0.1)
        lines += _histogram("rollout_tick_lag_seconds", {"kind": kind}, {0.005: 6, 0.05: 1})
    lines += _counter("rollout_alerts_total", {"provider": "slack", "outcome": "sent"}, 0.1)
    lines += _counter("rollout_alerts_total", {"provider": "slack", "outcome": "failed"}, 0.02)
    return lines


def openmetrics() -> str:
    lines = [*_release(NS, NAME), *_release(NS, DECOY_NAME), *_release(DECOY_NS, DECOY_NAME), *_operator()]
    return "\n".join([*lines, "# EOF"]) + "\n"


@pytest.fixture(scope="module")
def prom() -> Iterator[RunningPrometheus]:
    with running_prometheus(openmetrics()) as server:
        yield server


@pytest.fixture()
def provider(prom: RunningPrometheus) -> Iterator[PrometheusProvider]:
    with PrometheusProvider(prom.url, timeout=10) as client:
        yield client


def dashboard() -> dict[str, Any]:
    value: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return value


def selected(expr: str) -> str:
    for variable in sorted(SELECTION, key=len, reverse=True):
        expr = expr.replace(variable, SELECTION[variable])
    assert "$" not in expr, expr
    return expr


TARGETS = [(p["title"], t["refId"], t["expr"]) for p in dashboard()["panels"] for t in p.get("targets", [])]


@pytest.mark.parametrize(("title", "ref", "expr"), TARGETS, ids=[f"{t}/{r}" for t, r, _ in TARGETS])
def test_every_panel_query_shows_the_selection_and_nothing_else(
    provider: PrometheusProvider, title: str, ref: str, expr: str
) -> None:
    series = provider.query(selected(expr), at=END)
    assert series, f"{title} ({ref}): no data for {selected(expr)}"
    for s in series:
        value = float(s.values[-1])
        assert math.isfinite(value), f"{title} ({ref}): {dict(s.labels)} = {value}"
        if "$namespace" in expr:
            assert s.labels.get("namespace", NS) == NS, f"{title} ({ref}) shows {dict(s.labels)}"
        if any(re.search(rf"\b{metric}\b", expr) for metric in PER_RELEASE):
            shown = s.labels.get("name") or s.labels.get("workload") or NAME
            assert shown in (NAME, f"{NAME}-primary"), f"{title} ({ref}) shows {dict(s.labels)}"


def test_the_figures_are_the_ones_the_series_hold(provider: PrometheusProvider) -> None:
    """A few panels checked against the numbers put in: the queries compute what they say."""
    by_title = {p["title"]: p for p in dashboard()["panels"]}

    def value(title: str, ref: str = "A") -> float:
        (target,) = [t for t in by_title[title]["targets"] if t["refId"] == ref]
        (s,) = provider.query(selected(target["expr"]), at=END)
        return float(s.values[-1])

    # 0.1 per 15s for 10 minutes is 4 deployments in 600s: 576 a day.
    assert value("Deployment frequency") == pytest.approx(4 * 86400 / 600, rel=0.05)
    assert value("Change failure rate") == pytest.approx(0.5, rel=1e-6)
    assert value("Rollbacks") == pytest.approx(2.0, rel=0.05)
    weights = {s.labels["workload"]: float(s.values[-1]) for s in provider.query(
        selected(by_title["Traffic weight"]["targets"][0]["expr"]), at=END)}
    assert weights == {NAME: 30.0, f"{NAME}-primary": 70.0}
    leaders = provider.query(selected(by_title["Leader"]["targets"][0]["expr"]), at=END)
    assert sorted(float(s.values[-1]) for s in leaders) == [0.0, 1.0]


def test_the_variables_offer_the_namespaces_and_the_releases_of_one(provider: PrometheusProvider) -> None:
    """Grafana's label_values(SELECTOR, LABEL), done as Prometheus would answer it."""
    found: dict[str, set[str]] = {}
    for var in dashboard()["templating"]["list"]:
        if var["type"] != "query":
            continue
        m = re.fullmatch(r"label_values\((.+), *(\w+)\)", var["query"]["query"])
        assert m, var["query"]
        selector, label = m.groups()
        found[var["name"]] = {s.labels[label] for s in provider.query(selected(selector), at=END)}
    assert found == {"namespace": {NS, DECOY_NS}, "name": {NAME, DECOY_NAME}}
