"""What the operator records on /metrics: a tick's status becomes Flagger's gauges and counters with
Flagger's labels, the checks become per-metric values and judge evidence, GitSource syncs and reverts
become rollout's own. Read back from prometheus_client's default registry, as /metrics serves it.

Each test uses a namespace of its own: the registry is the process's, shared by every test."""

from __future__ import annotations

import gc
import uuid
from dataclasses import replace
from typing import Any

import pytest
from prometheus_client import REGISTRY

from rollout.api.parse import parse_bluegreen, parse_canary
from rollout.api.spec import Release
from rollout.api.status import Phase, ReleaseStatus, RevertState
from rollout.core import CheckResult, Verdict
from rollout.engine import telemetry
from rollout.gitops import telemetry as gitops_telemetry


def sample(metric: str, /, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(metric, labels)


@pytest.fixture
def ns() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def canary(namespace: str, name: str = "web", target: str = "podinfo", **analysis: Any) -> Release:
    return parse_canary({
        "apiVersion": "rollout.gitops.dev/v1alpha1", "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"provider": "istio", "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                 "service": {"port": 9898},
                 "analysis": {"interval": "1m", "threshold": 2, **(analysis or {"maxWeight": 50, "stepWeight": 10}),
                              "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}]}},
    })


def bluegreen(namespace: str) -> Release:
    return parse_bluegreen({
        "apiVersion": "rollout.gitops.dev/v1alpha1", "kind": "BlueGreen",
        "metadata": {"name": "shop", "namespace": namespace},
        "spec": {"provider": "kubernetes", "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "shop"},
                 "service": {"port": 80}, "analysis": {"interval": "1m", "iterations": 3}},
    })


def status(phase: Phase | None, weight: int = 0) -> ReleaseStatus:
    return replace(ReleaseStatus(), phase=phase, canary_weight=weight)


def test_a_progressing_tick_sets_flaggers_status_weights_and_analysis_time(ns: str) -> None:
    release = canary(ns)
    telemetry.tick_recorded(release, status(Phase.PROGRESSING, 10), status(Phase.PROGRESSING, 20), 0.3)
    # Flagger's `name` is the target's; the weights are per workload, the primary's the rest of 100.
    assert sample("flagger_canary_status", name="podinfo", namespace=ns) == 0
    assert sample("flagger_canary_weight", workload="podinfo", namespace=ns) == 20
    assert sample("flagger_canary_weight", workload="podinfo-primary", namespace=ns) == 80
    assert sample("flagger_canary_duration_seconds_count", name="podinfo", namespace=ns) == 1
    assert sample("flagger_canary_duration_seconds_sum", name="podinfo", namespace=ns) == pytest.approx(0.3)
    # Go's default buckets, as Flagger's histogram has.
    assert sample("flagger_canary_duration_seconds_bucket", name="podinfo", namespace=ns, le="0.5") == 1
    assert sample("flagger_canary_duration_seconds_bucket", name="podinfo", namespace=ns, le="0.25") == 0


def test_a_promotion_counts_one_success_and_sets_status_1(ns: str) -> None:
    release = canary(ns)
    labels = {"name": "podinfo", "namespace": ns, "deployment_strategy": "canary", "analysis_status": "completed"}
    telemetry.tick_recorded(release, status(Phase.PROMOTING, 50), status(Phase.FINALISING, 0), 0.01)
    assert sample("flagger_canary_status", name="podinfo", namespace=ns) == 0  # still running
    telemetry.tick_recorded(release, status(Phase.FINALISING), status(Phase.SUCCEEDED), 0.01)
    telemetry.tick_recorded(release, status(Phase.SUCCEEDED), status(Phase.SUCCEEDED), 0.01)  # idle ticks count nothing
    assert sample("flagger_canary_status", name="podinfo", namespace=ns) == 1
    assert sample("flagger_canary_successes_total", **labels) == 1
    assert sample("flagger_canary_failures_total", **labels) is None
    assert sample("flagger_canary_weight", workload="podinfo-primary", namespace=ns) == 100
    # Promoting and Finalising are not analysis time in Flagger's sense.
    assert sample("flagger_canary_duration_seconds_count", name="podinfo", namespace=ns) is None


def test_ticks_are_counted_by_the_phase_they_began_in() -> None:
    release = canary(f"t-{uuid.uuid4().hex[:8]}")

    def ticks(phase: str) -> float:
        return sample("rollout_release_ticks_total", kind="Canary", phase=phase) or 0.0

    before = {p: ticks(p) for p in ("Initialized", "Progressing", "none")}
    telemetry.tick_recorded(release, ReleaseStatus(), status(Phase.INITIALIZING), 0.01)
    telemetry.tick_recorded(release, status(Phase.INITIALIZED), status(Phase.INITIALIZED), 0.01)
    telemetry.tick_recorded(release, status(Phase.INITIALIZED), status(Phase.PROGRESSING, 10), 0.01)
    telemetry.tick_recorded(release, status(Phase.PROGRESSING, 10), status(Phase.PROGRESSING, 20), 0.01)
    assert {p: ticks(p) - before[p] for p in before} == {"Initialized": 2, "Progressing": 1, "none": 1}


def test_a_failure_counts_once_through_the_revert(ns: str) -> None:
    release = canary(ns)
    labels = {"name": "podinfo", "namespace": ns, "deployment_strategy": "canary", "analysis_status": "completed"}
    telemetry.tick_recorded(release, status(Phase.PROGRESSING, 30), status(Phase.FAILED), 0.01)
    telemetry.tick_recorded(release, status(Phase.FAILED), status(Phase.REVERTING), 0.01)
    # A revert Git skipped puts the release back to Failed: the same failed run, not a second one.
    telemetry.tick_recorded(release, status(Phase.REVERTING), status(Phase.FAILED), 0.01)
    assert sample("flagger_canary_failures_total", **labels) == 1
    assert sample("flagger_canary_status", name="podinfo", namespace=ns) == 2
    telemetry.tick_recorded(release, status(Phase.FAILED), status(Phase.REVERTED), 0.01)
    assert sample("flagger_canary_status", name="podinfo", namespace=ns) == 2


@pytest.mark.parametrize(("make", "analysis", "strategy", "outcome"), [
    ("bluegreen", {}, "blue-green", "completed"),
    ("canary", {"iterations": 4, "match": [{"headers": {"x-canary": {"exact": "1"}}}]}, "ab-testing", "completed"),
    ("canary", {"iterations": 4}, "blue-green", "completed"),
])
def test_deployment_strategy_is_flaggers(ns: str, make: str, analysis: dict[str, Any], strategy: str,
                                         outcome: str) -> None:
    release = bluegreen(ns) if make == "bluegreen" else canary(ns, **analysis)
    assert telemetry.strategy(release) == strategy
    telemetry.tick_recorded(release, status(Phase.FINALISING), status(Phase.SUCCEEDED), 0.01)
    target = release.spec.target_ref.name
    assert sample("flagger_canary_successes_total", name=target, namespace=ns, deployment_strategy=strategy,
                  analysis_status=outcome) == 1


def test_skip_analysis_is_counted_as_skipped(ns: str) -> None:
    release = canary(ns)
    release = replace(release, spec=replace(release.spec, skip_analysis=True))
    telemetry.tick_recorded(release, status(Phase.PROMOTING), status(Phase.SUCCEEDED), 0.01)
    assert sample("flagger_canary_successes_total", name="podinfo", namespace=ns, deployment_strategy="canary",
                  analysis_status="skipped") == 1


def test_checks_set_each_metrics_value_and_the_judges_evidence(ns: str) -> None:
    release = canary(ns)
    results = [CheckResult("request-success-rate", Verdict.PASS, 99.7, 99.9),
               CheckResult("latency", Verdict.NO_DATA),
               CheckResult("approval-hook", Verdict.PASS)]
    telemetry.checks_recorded(release, results, {"request-success-rate": ("compare", "p_value", 0.42)})
    assert sample("flagger_canary_metric_analysis", name="podinfo", namespace=ns,
                  metric="request-success-rate") == pytest.approx(99.7)
    assert sample("flagger_canary_metric_analysis", name="podinfo", namespace=ns, metric="latency") is None
    assert sample("rollout_judge_evidence", namespace=ns, name="web", metric="request-success-rate",
                  judge="compare", statistic="p_value") == pytest.approx(0.42)
    telemetry.forget(release)
    assert sample("flagger_canary_metric_analysis", name="podinfo", namespace=ns,
                  metric="request-success-rate") is None
    assert sample("rollout_judge_evidence", namespace=ns, name="web", metric="request-success-rate",
                  judge="compare", statistic="p_value") is None


def test_totals_count_releases_per_namespace_and_fall_to_zero(ns: str) -> None:
    telemetry.totals([("Canary", ns, "a"), ("BlueGreen", ns, "b")])
    assert sample("flagger_canary_total", namespace=ns) == 2
    telemetry.totals([], (ns,))
    assert sample("flagger_canary_total", namespace=ns) == 0


def test_reconciles_are_timed_and_errors_counted() -> None:
    before = sample("rollout_reconcile_duration_seconds_count", kind="Canary") or 0
    errors = sample("rollout_reconcile_errors_total", kind="Canary") or 0
    assert telemetry.reconciled("Canary", lambda x: x * 2, 21) == 42

    def broken() -> None:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        telemetry.reconciled("Canary", broken)
    telemetry.reconcile_failed("Canary")
    assert sample("rollout_reconcile_duration_seconds_count", kind="Canary") == before + 2
    assert sample("rollout_reconcile_errors_total", kind="Canary") == errors + 2


def test_tick_lag_is_never_negative() -> None:
    before = sample("rollout_tick_lag_seconds_sum", kind="BlueGreen") or 0
    telemetry.tick_late("BlueGreen", -0.5)
    telemetry.tick_late("BlueGreen", 1.5)
    assert sample("rollout_tick_lag_seconds_sum", kind="BlueGreen") == pytest.approx(before + 1.5)


def test_info_names_the_mesh_provider() -> None:
    telemetry.set_info("linkerd")
    found = [s for m in REGISTRY.collect() if m.name == "flagger_info" for s in m.samples
             if s.labels["mesh_provider"] == "linkerd"]
    assert found and found[0].value == 1 and found[0].labels["version"]


def test_gitsource_syncs(ns: str) -> None:
    gitops_telemetry.synced(ns, "apps", ready=True, reason="Applied", applied="a" * 40)
    gitops_telemetry.synced(ns, "apps", ready=True, reason="Applied", applied="b" * 40, corrected=2, pruned=1)
    assert sample("rollout_gitsource_ready", namespace=ns, name="apps") == 1
    assert sample("rollout_gitsource_applied_revision_info", namespace=ns, name="apps", revision="b" * 40) == 1
    # One series per source: the revision applied before is gone.
    assert sample("rollout_gitsource_applied_revision_info", namespace=ns, name="apps", revision="a" * 40) is None
    assert sample("rollout_gitsource_drift_corrections_total", namespace=ns, name="apps") == 2
    assert sample("rollout_gitsource_prunes_total", namespace=ns, name="apps") == 1
    gitops_telemetry.synced(ns, "apps", ready=False, reason="ApplyFailed", applied="b" * 40)
    gitops_telemetry.synced(ns, "apps", ready=False, reason="FetchFailed", applied=None)
    assert sample("rollout_gitsource_ready", namespace=ns, name="apps") == 0
    assert sample("rollout_gitsource_apply_errors_total", namespace=ns, name="apps") == 1
    gitops_telemetry.gone(ns, "apps")
    assert sample("rollout_gitsource_ready", namespace=ns, name="apps") is None
    assert sample("rollout_gitsource_applied_revision_info", namespace=ns, name="apps", revision="b" * 40) is None


def test_reverts_by_outcome(ns: str) -> None:
    for state in (RevertState.FAILED, RevertState.FAILED, RevertState.PUSHED, RevertState.SKIPPED):
        gitops_telemetry.reverted(ns, "web", state)
    assert sample("rollout_reverts_total", namespace=ns, name="web", outcome="failed") == 2
    assert sample("rollout_reverts_total", namespace=ns, name="web", outcome="pushed") == 1
    assert sample("rollout_reverts_total", namespace=ns, name="web", outcome="skipped") == 1


def test_flaggers_names_and_labels_are_exact() -> None:
    """The series a Flagger dashboard queries (fluxcd/flagger pkg/metrics/recorder.go)."""
    expected = {
        "flagger_info": {"version", "mesh_provider"},
        "flagger_canary_total": {"namespace"},
        "flagger_canary_status": {"name", "namespace"},
        "flagger_canary_weight": {"workload", "namespace"},
        "flagger_canary_duration_seconds": {"name", "namespace"},
        "flagger_canary_metric_analysis": {"name", "namespace", "metric"},
        "flagger_canary_successes": {"name", "namespace", "deployment_strategy", "analysis_status"},
        "flagger_canary_failures": {"name", "namespace", "deployment_strategy", "analysis_status"},
    }
    kinds = {"flagger_canary_duration_seconds": "histogram", "flagger_canary_successes": "counter",
             "flagger_canary_failures": "counter"}
    found = {m.name: m for m in REGISTRY.collect() if m.name in expected}
    assert set(found) == set(expected)
    for name, metric in found.items():
        assert metric.type == kinds.get(name, "gauge"), name
        for s in metric.samples:
            assert set(s.labels) - {"le"} == expected[name], name
            assert not s.name.endswith("_created"), s.name


def test_garbage_collections_are_timed_by_generation() -> None:
    telemetry.time_gc()
    telemetry.time_gc()  # once per process, however often asked
    before = REGISTRY.get_sample_value("python_gc_duration_seconds_count", {"generation": "2"}) or 0.0
    gc.collect()
    assert REGISTRY.get_sample_value("python_gc_duration_seconds_count", {"generation": "2"}) == before + 1
