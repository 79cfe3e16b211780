"""The DORA figures from release records, and their metrics: tables of records in, figures out."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from rollout.api.status import RunOutcome, RunRecord
from rollout.core.dora import Durations, Figures, figures, parse_window
from rollout.engine import dora as metrics
from tests.unit.world import T0

S, F, R = RunOutcome.SUCCEEDED, RunOutcome.FAILED, RunOutcome.REVERTED
WEEK = timedelta(days=7)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def run(outcome: RunOutcome, end: float, *, commit: float | None = None, revision: str | None = "c",
        failed: float | None = None, restored: float | None = None, reverted: float | None = None,
        start: float | None = None) -> RunRecord:
    return RunRecord(
        outcome, spec=f"s{end}", started_at=at(start if start is not None else end - 5), ended_at=at(end),
        revision=revision, committed_at=at(commit) if commit is not None else None,
        failed_at=at(failed) if failed is not None else None, restored_at=at(restored) if restored is not None
        else None, reverted_at=at(reverted) if reverted is not None else None,
    )


@pytest.mark.parametrize(("values", "expected"), [
    ([], Durations()),
    ([42.0], Durations(1, 42.0, 42.0)),
    ([10.0, 20.0], Durations(2, 15.0, 19.0)),
    ([30.0, 10.0, 20.0], Durations(3, 20.0, 28.0)),
    ([float(x) for x in range(1, 11)], Durations(10, 5.5, 9.1)),
    ([1.0, 1.0, 1.0, 100.0], Durations(4, 1.0, pytest.approx(70.3))),  # type: ignore[arg-type]
])
def test_durations_are_summarised_by_median_and_p90(values: list[float], expected: Durations) -> None:
    assert Durations.of(values) == expected


# (records, figures expected over the week before T0 + 1 day)
CASES = {
    "nothing ran": (
        [], dict(runs=0, promotions=0, failures=0, rate=None, lead=Durations(), traffic=Durations(),
                 revert=Durations()),
    ),
    "two promotions, one reverted failure": (
        [run(S, 60, commit=50), run(S, 120, commit=100), run(R, 200, commit=190, failed=195, restored=195.5,
                                                             reverted=200)],
        dict(runs=3, promotions=2, failures=1, rate=1 / 3, lead=Durations(2, 900.0, 1140.0),
             traffic=Durations(1, 30.0, 30.0), revert=Durations(1, 300.0, 300.0)),
    ),
    "a failure without a revert restores traffic only": (
        [run(F, 10, failed=10, restored=10), run(S, 30, commit=29)],
        dict(runs=2, promotions=1, failures=1, rate=0.5, lead=Durations(1, 60.0, 60.0),
             traffic=Durations(1, 0.0, 0.0), revert=Durations()),
    ),
    "a failure whose route back never landed has no time to restore": (
        [run(F, 10, failed=5)],
        dict(runs=1, promotions=0, failures=1, rate=1.0, lead=Durations(), traffic=Durations(), revert=Durations()),
    ),
    "runs that ended before the window are left out": (
        [run(S, -8 * 24 * 60, commit=-8 * 24 * 60 - 1), run(F, -7 * 24 * 60 - 1, failed=-7 * 24 * 60 - 2,
                                                             restored=-7 * 24 * 60 - 2)],
        dict(runs=0, promotions=0, failures=0, rate=None, lead=Durations(), traffic=Durations(),
             revert=Durations()),
    ),
    "a promotion without a commit time or revision counts, its lead time is unknown": (
        [run(S, 10), run(S, 20, revision=None), run(S, 30, commit=28)],
        dict(runs=3, promotions=3, failures=0, rate=0.0, lead=Durations(1, 120.0, 120.0), traffic=Durations(),
             revert=Durations(), no_commit_time=1, no_revision=1),
    ),
}


@pytest.mark.parametrize(("records", "want"), CASES.values(), ids=CASES.keys())
def test_figures(records: list[RunRecord], want: dict[str, object]) -> None:
    until = T0 + timedelta(days=1)
    got = figures(records, until - WEEK, until)
    assert (got.runs, got.promotions, got.failures) == (want["runs"], want["promotions"], want["failures"])
    assert got.failure_rate == want["rate"]
    assert got.lead_time == want["lead"]
    assert got.restore_traffic == want["traffic"] and got.restore_revert == want["revert"]
    assert got.no_commit_time == want.get("no_commit_time", 0) and got.no_revision == want.get("no_revision", 0)
    assert got.per_day == pytest.approx(got.promotions / 7) and got.per_week == pytest.approx(got.promotions)


def test_commit_times_read_from_git_fill_records_that_have_none() -> None:
    records = [run(S, 10, revision="abc"), run(S, 20, revision="def")]
    got = figures(records, T0 - WEEK, at(60), commit_times={"abc": at(9)})
    assert got.lead_time == Durations(1, 60.0, 60.0) and got.no_commit_time == 1


def test_the_figures_as_json_and_as_lines() -> None:
    records = [run(S, 60, commit=50), run(R, 200, failed=195, restored=195, reverted=200), run(S, 90, revision=None)]
    got = figures(records, T0, T0 + WEEK)
    data = got.to_dict()
    assert data["deploymentFrequency"] == {"promotions": 2, "perDay": pytest.approx(2 / 7),
                                           "perWeek": pytest.approx(2.0)}
    assert data["leadTimeForChanges"] == {"count": 1, "medianSeconds": 600.0, "p90Seconds": 600.0,
                                          "withoutRevision": 1, "withoutCommitTime": 0}
    assert data["changeFailureRate"] == {"failures": 1, "runs": 3, "rate": pytest.approx(1 / 3)}
    assert data["timeToRestore"]["revert"] == {"count": 1, "medianSeconds": 300.0, "p90Seconds": 300.0}
    text = "\n".join(got.lines())
    assert "2 promotions in 7d (0.29/day, 2.00/week)" in text
    assert "lead time for changes  median 10m, p90 10m (n=1); 1 without a Git revision" in text
    assert "change failure rate    33% (1 of 3 runs)" in text
    assert "traffic back on the primary: median 0.0s, p90 0.0s (n=1)" in text
    assert "revert applied from Git:     median 5m, p90 5m (n=1)" in text
    empty = "\n".join(Figures(T0, T0 + WEEK).lines())
    assert "change failure rate    - (no runs)" in empty and "lead time for changes  -" in empty


@pytest.mark.parametrize(("text", "seconds"), [
    ("30d", 30 * 86400), ("2w", 14 * 86400), ("12h", 12 * 3600), ("90m", 5400), ("1h30m", 5400), ("1.5d", 129600),
])
def test_windows(text: str, seconds: float) -> None:
    assert parse_window(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "30", "thirty days", "-1d", "0d", "0", "5y", "d"])
def test_a_bad_window_says_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="like 30d, 2w, 12h or 90m"):
        parse_window(text)


def sample(metric: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(metric, labels) or 0.0


def test_metrics_count_each_ended_run_once_per_status_write() -> None:
    ns = "dora-metrics-test"
    good = run(S, 60, commit=50)
    bad = run(R, 200, failed=195, restored=195.5, reverted=200)
    before = {"history": [good.to_dict()]}
    metrics.written(ns, "web", before, (good, bad))  # the write that ended `bad`
    metrics.written(ns, "web", {"history": [good.to_dict(), bad.to_dict()]}, (good, bad))  # written again: nothing
    assert sample("rollout_dora_change_failures_total", namespace=ns, name="web") == 1
    assert sample("rollout_dora_deployments_total", namespace=ns, name="web") == 0
    assert sample("rollout_dora_time_to_restore_seconds_count", namespace=ns, stage="traffic") == 1
    assert sample("rollout_dora_time_to_restore_seconds_sum", namespace=ns, stage="revert") == 300
    metrics.written(ns, "web", {}, (good,))
    assert sample("rollout_dora_deployments_total", namespace=ns, name="web") == 1
    assert sample("rollout_dora_lead_time_seconds_sum", namespace=ns) == 600
    assert sample("rollout_dora_lead_time_seconds_bucket", namespace=ns, le="600.0") == 1
    assert sample("rollout_dora_lead_time_seconds_bucket", namespace=ns, le="300.0") == 0


def release(kind: str, namespace: str, name: str, *records: RunRecord) -> dict[str, object]:
    return {"kind": kind, "metadata": {"namespace": namespace, "name": name},
            "status": {"phase": "Succeeded", "history": [r.to_dict() for r in records]}}


def test_rollout_dora_sums_canaries_and_bluegreens_and_shows_each() -> None:
    from rollout.cli.dora import render, summarize, to_json

    objs = [release("Canary", "shop", "web", run(S, 60, commit=50), run(R, 200, failed=195, restored=195,
                                                                           reverted=200)),
            release("BlueGreen", "shop", "api", run(S, 100, commit=99)),
            release("Canary", "shop", "idle")]
    summary = summarize(objs, T0, T0 + WEEK)
    assert (summary.total.runs, summary.total.promotions, summary.total.failures) == (3, 2, 1)
    assert summary.total.lead_time == Durations(2, 330.0, 546.0)
    text = render(summary)
    assert text.splitlines()[:4] == [
        "NAMESPACE  NAME  KIND       RUNS  PROMOTED  FAILED  LEAD TIME  RESTORE TRAFFIC  RESTORE REVERT",
        "shop       web   Canary     2     1         1       10m        0.0s             5m",
        "shop       api   BlueGreen  1     1         0       1m         -                -",
        "shop       idle  Canary     0     0         0       -          -                -",
    ]
    assert "DORA figures from 2026-01-01T00:00:00Z to 2026-01-08T00:00:00Z, 3 releases:" in text
    data = to_json(summary)
    assert data["runs"] == 3 and [r["name"] for r in data["releases"]] == ["web", "api", "idle"]
    assert "since" not in data["releases"][0] and data["releases"][1]["kind"] == "BlueGreen"


def test_what_keeps_the_cluster_from_being_read_is_said_in_one_line() -> None:
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException
    from urllib3.exceptions import MaxRetryError

    from rollout.cli.common import cluster_problem

    what = "Canaries and BlueGreens"
    assert cluster_problem(ApiException(status=404, reason="Not Found"), what) == (
        "the cluster serves no Canaries and BlueGreens: are rollout's CRDs installed? install them "
        "(kubectl apply -f crds/, or the deploy/ kustomization)")
    assert cluster_problem(ApiException(status=403, reason="Forbidden"), what) == (
        "not allowed to use Canaries and BlueGreens (403 Forbidden); ask for the role in "
        "deploy/base/rbac-releases.yaml, or use a kubeconfig whose user has it")
    assert cluster_problem(ApiException(status=500, reason="Internal"), what) == (
        "the API server answered 500 Internal")
    assert str(cluster_problem(ConfigException("no context"), what)).startswith("no usable kubeconfig (no context)")
    refused = cluster_problem(MaxRetryError(None, "/apis", "refused"), what)  # type: ignore[arg-type]
    assert refused is not None and refused.startswith("cannot reach the Kubernetes API (MaxRetryError")
    assert cluster_problem(KeyError("bug"), what) is None  # a bug is not dressed up as a cluster problem
