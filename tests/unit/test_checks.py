"""The engine's metric checks against an in-memory metric source: query and judge choice, and how
each outcome of the source (no data, NaN, unreachable, bad query) becomes a verdict."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats

from analysis.providers.base import (
    BadQueryError,
    MetricSource,
    MetricSourceError,
    Series,
    TimeLike,
    UnreachableError,
    single_series,
    single_value,
    unix,
)
from analysis.report import Samples
from analysis.templates import builtin_counts_queries
from analysis.verdicts import Verdict
from rollout.api.parse import parse_canary
from rollout.api.spec import Canary, Compare, Metric, Warmup
from rollout.engine import judging
from rollout.engine.checks import CheckError, MetricChecks
from rollout.engine.sources import Sources

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
AT = T0 + timedelta(minutes=10)
MINUTE = 60.0

Answer = list[Series] | MetricSourceError


class MemorySource:
    """A MetricSource answering from a dict: query text -> its series (or the error to raise).

    An instant query sees each series' last point at or before `at`; a range query the points
    between `start` and `end`. A query it does not know returns no series."""

    def __init__(self, answers: Mapping[str, Answer]) -> None:
        self.answers = dict(answers)
        self.asked: list[str] = []

    def _answer(self, query: str) -> list[Series]:
        self.asked.append(query)
        answer = self.answers.get(query, [])
        if isinstance(answer, MetricSourceError):
            raise answer
        return answer

    def query(self, query: str, at: TimeLike | None = None) -> list[Series]:
        t = unix(at) if at is not None else float("inf")
        found = []
        for s in self._answer(query):
            keep = s.timestamps <= t
            if keep.any():
                k = int(np.flatnonzero(keep)[-1])
                found.append(Series(s.labels, s.timestamps[k:k + 1], s.values[k:k + 1]))
        return found

    def query_value(self, query: str, at: TimeLike | None = None) -> float:
        return single_value(self.query(query, at), query, at)

    def query_range(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> list[Series]:
        t0, t1 = unix(start), unix(end)
        found = []
        for s in self._answer(query):
            keep = (s.timestamps >= t0) & (s.timestamps <= t1)
            if keep.any():
                found.append(Series(s.labels, s.timestamps[keep], s.values[keep]))
        return found

    def query_range_series(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> Series:
        return single_series(self.query_range(query, start, end, step), query)

    def is_ready(self) -> bool:
        return True

    def close(self) -> None:
        pass


def points(values: Any, *, end: datetime = AT, step: float = 6.0, labels: Mapping[str, str] | None = None
           ) -> list[Series]:
    """One series whose last point is at `end`, one point every `step` seconds."""
    vs = np.asarray(values, dtype=np.float64)
    ts = unix(end) - step * np.arange(len(vs))[::-1]
    return [Series(dict(labels or {}), ts, vs)]


def release(judge: str = "threshold", metrics: list[dict[str, Any]] | None = None) -> Canary:
    return parse_canary({
        "apiVersion": "rollout.gitops.dev/v1alpha1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {
            "provider": "istio",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 9898},
            "analysis": {
                "interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10, "judge": judge,
                "metrics": metrics or [{"name": "request-success-rate", "thresholdRange": {"min": 99}}],
            },
        },
    })


def check(source: MetricSource, canary: Canary, *, strict: bool = False) -> tuple[Any, ...]:
    return MetricChecks(canary, Sources(source), strict=strict).run(AT, T0)


def success_rate_queries(canary: Canary) -> tuple[str, str]:
    checks = MetricChecks(canary, Sources(MemorySource({})))
    metric = canary.spec.analysis.metrics[0]
    return checks.query(metric, "canary"), checks.query(metric, "primary")


# ---- threshold -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "verdict"), [(99.5, Verdict.PASS), (99.0, Verdict.PASS), (95.0, Verdict.FAIL)])
def test_threshold_judges_the_canary_value_against_the_range(value: float, verdict: Verdict) -> None:
    canary = release()
    q_canary, q_primary = success_rate_queries(canary)
    (result,) = check(MemorySource({q_canary: points([50.0, value]), q_primary: points([99.9])}), canary)
    assert result.verdict is verdict
    assert (result.name, result.value, result.primary, result.final) == ("request-success-rate", value, 99.9, False)


def test_threshold_reads_the_value_at_the_moment_checked() -> None:
    canary = release()
    q_canary, _ = success_rate_queries(canary)
    # The later point (after AT) must not be seen.
    later = Series({}, np.array([unix(AT) - 60, unix(AT) + 60]), np.array([99.5, 10.0]))
    (result,) = check(MemorySource({q_canary: [later]}), canary)
    assert result.verdict is Verdict.PASS and result.value == 99.5 and result.primary is None


def test_no_series_is_no_data_never_a_pass() -> None:
    (result,) = check(MemorySource({}), release())
    assert result.verdict is Verdict.NO_DATA and result.reason.startswith("no data: ")


def test_nan_is_no_data() -> None:
    canary = release()
    q_canary, _ = success_rate_queries(canary)
    (result,) = check(MemorySource({q_canary: points([np.nan])}), canary)
    assert result.verdict is Verdict.NO_DATA and "NaN" in result.reason


def test_unreachable_source_is_no_data_and_strict_mode_raises() -> None:
    canary = release()
    q_canary, _ = success_rate_queries(canary)
    source = MemorySource({q_canary: UnreachableError("connection refused", q_canary)})
    (result,) = check(source, canary)
    assert result.verdict is Verdict.NO_DATA and "connection refused" in result.reason
    with pytest.raises(CheckError, match="request-success-rate: connection refused"):
        check(source, canary, strict=True)


def test_bad_query_fails_the_check_and_strict_mode_raises() -> None:
    canary = release(metrics=[{"name": "errors", "query": "sum(rate(x[1m])", "thresholdRange": {"max": 1}}])
    bad = "sum(rate(x[1m])"
    source = MemorySource({bad: BadQueryError("parse error", bad, 400, "bad_data", "parse")})
    (result,) = check(source, canary)
    assert result.verdict is Verdict.FAIL and "cannot be checked: parse error" in result.reason
    with pytest.raises(CheckError, match="errors: parse error"):
        check(source, canary, strict=True)


def test_custom_query_reads_the_primary_under_its_own_name() -> None:
    canary = release(metrics=[{"name": "errors", "query": 'sum(x{app="{{ target }}"})', "thresholdRange": {"max": 1}}])
    source = MemorySource({'sum(x{app="podinfo"})': points([0.5]), 'sum(x{app="podinfo-primary"})': points([0.2])})
    (result,) = check(source, canary)
    assert (result.verdict, result.value, result.primary) == (Verdict.PASS, 0.5, 0.2)


# ---- compare -------------------------------------------------------------------------------------


# The compare judge reads the last three intervals, one sample every interval / 10 (6 s).
WINDOW_SAMPLES = 31


def test_compare_fails_a_canary_clearly_worse_than_the_primary() -> None:
    canary = release("compare", [{"name": "request-success-rate"}])
    q_canary, q_primary = success_rate_queries(canary)
    rng = np.random.default_rng(7)
    source = MemorySource({q_canary: points(90 + rng.normal(0, 0.3, WINDOW_SAMPLES)),
                           q_primary: points(99.9 + rng.normal(0, 0.02, WINDOW_SAMPLES))})
    (result,) = check(source, canary)
    assert result.verdict is Verdict.FAIL, result.reason
    # Shown as success rates again, although judged as error rates.
    assert result.value == pytest.approx(90, abs=1) and result.primary == pytest.approx(99.9, abs=0.1)


def test_compare_passes_a_canary_like_the_primary() -> None:
    canary = release("compare", [{"name": "request-success-rate"}])
    q_canary, q_primary = success_rate_queries(canary)
    rng = np.random.default_rng(8)
    source = MemorySource({q_canary: points(99.9 + rng.normal(0, 0.02, 11)),
                           q_primary: points(99.9 + rng.normal(0, 0.02, 11))})
    (result,) = check(source, canary)
    assert result.verdict is Verdict.PASS, result.reason


def test_compare_without_the_primary_is_no_data() -> None:
    canary = release("compare", [{"name": "request-success-rate"}])
    q_canary, _ = success_rate_queries(canary)
    (result,) = check(MemorySource({q_canary: points([99.0] * 11)}), canary)
    assert result.verdict is Verdict.NO_DATA


# ---- sequential ----------------------------------------------------------------------------------


def counts(per_look: float, looks: int = 10) -> list[Series]:
    """Per-interval increments, one at each look (every minute since T0)."""
    return points([per_look] * looks, end=T0 + timedelta(minutes=looks), step=MINUTE)


def sequential_source(canary_errors: float | None, primary_errors: float | None) -> MemorySource:
    answers: dict[str, Answer] = {}
    for arm, errors in (("canary", canary_errors), ("primary", primary_errors)):
        q = builtin_counts_queries("istio", "test", "podinfo", "1m", arm)  # type: ignore[arg-type]
        answers[q.requests] = counts(1000)
        if errors is not None:
            answers[q.errors] = counts(errors)
    return MemorySource(answers)


def test_sequential_stops_a_canary_whose_error_rate_is_clearly_higher() -> None:
    (result,) = check(sequential_source(100, 1), release("sequential"))
    assert result.verdict is Verdict.FAIL and result.final
    # Success rates in percent over the run: 1 - 100/1000 and 1 - 1/1000.
    assert result.value == pytest.approx(90.0) and result.primary == pytest.approx(99.9)


def test_sequential_keeps_a_canary_like_the_primary() -> None:
    (result,) = check(sequential_source(1, 1), release("sequential"))
    assert result.verdict is Verdict.PASS, result.reason
    assert result.value == pytest.approx(99.9) and result.primary == pytest.approx(99.9)


def test_sequential_reads_a_missing_error_series_as_no_errors() -> None:
    (result,) = check(sequential_source(None, 1), release("sequential"))
    assert result.verdict is Verdict.PASS, result.reason
    assert result.value == pytest.approx(100.0) and result.primary == pytest.approx(99.9)


def test_sequential_before_the_first_interval_is_no_data() -> None:
    canary = release("sequential")
    results = MetricChecks(canary, Sources(sequential_source(100, 1))).run(T0 + timedelta(seconds=30), T0)
    assert results[0].verdict is Verdict.NO_DATA and "no complete analysis interval" in results[0].reason


# ---- the judge's evidence (rollout_judge_evidence) --------------------------------------------------

def test_compare_leaves_its_p_value_as_evidence() -> None:
    canary = release("compare", [{"name": "request-success-rate"}])
    q_canary, q_primary = success_rate_queries(canary)
    rng = np.random.default_rng(7)
    checks = MetricChecks(canary, Sources(MemorySource({q_canary: points(90 + rng.normal(0, 0.3, WINDOW_SAMPLES)),
                                                q_primary: points(99.9 + rng.normal(0, 0.02, WINDOW_SAMPLES))})))
    (result,) = checks.run(AT, T0)
    judge, statistic, value = checks.evidence["request-success-rate"]
    assert (judge, statistic) == ("compare", "p_value")
    assert result.verdict is Verdict.FAIL and value < canary.spec.analysis.alpha


def test_sequential_leaves_its_e_value_as_evidence() -> None:
    canary = release("sequential")
    failing = MetricChecks(canary, Sources(sequential_source(100, 1)))
    failing.run(AT, T0)
    judge, statistic, value = failing.evidence["request-success-rate"]
    assert (judge, statistic) == ("sequential", "e_value")
    assert value >= 1 / canary.spec.analysis.alpha  # it crossed the boundary: the release fails
    passing = MetricChecks(canary, Sources(sequential_source(1, 1)))
    passing.run(AT, T0)
    assert passing.evidence["request-success-rate"][2] < 1 / canary.spec.analysis.alpha


def test_threshold_has_no_evidence_to_give() -> None:
    canary = release()
    q_canary, _ = success_rate_queries(canary)
    checks = MetricChecks(canary, Sources(MemorySource({q_canary: points([99.5] * 11)})))
    checks.run(AT, T0)
    assert checks.evidence == {}


# ---- dry run -------------------------------------------------------------------------------------


def test_a_dry_run_metric_is_queried_and_judged_and_marked() -> None:
    canary = release(metrics=[{"name": "request-success-rate", "thresholdRange": {"min": 99}, "dryRun": True}])
    q_canary, q_primary = success_rate_queries(canary)
    (result,) = check(MemorySource({q_canary: points([95.0]), q_primary: points([99.9])}), canary)
    assert (result.verdict, result.value, result.dry_run) == (Verdict.FAIL, 95.0, True)


def test_a_dry_run_sequential_metric_keeps_its_verdict_and_mark() -> None:
    canary = release("sequential", [{"name": "request-success-rate", "dryRun": True}])
    (result,) = check(sequential_source(100, 1), canary)
    assert result.verdict is Verdict.FAIL and result.dry_run and result.final


def test_the_run_report_counts_a_dry_run_metrics_would_be_failures() -> None:
    from analysis.report import Outcome, outcome_line
    from rollout.engine.reports import TickRecord, build_report

    canary = release(metrics=[{"name": "request-success-rate", "thresholdRange": {"min": 99}},
                              {"name": "errors", "query": "sum(x)", "thresholdRange": {"max": 1}, "dryRun": True}])
    q_canary, _ = success_rate_queries(canary)
    end = T0 + timedelta(minutes=3)
    checks = MetricChecks(canary, Sources(MemorySource({q_canary: points([99.9] * 7, end=end, step=30.0),
                                                "sum(x)": points([5.0] * 7, end=end, step=30.0)})))
    ticks = []
    for k in range(3):
        at = T0 + timedelta(minutes=k + 1)
        ticks.append(TickRecord(at, 10 * (k + 1), checks.run(at, T0), "advance"))
    run = build_report(canary, checks.readings, ticks, Outcome.SUCCEEDED, ticks[-1].at)
    shadow = run.metrics[1]
    assert shadow.dry_run and shadow.verdict is Verdict.FAIL
    assert shadow.detail.startswith("dry run: would have failed 3 of 3 checks")
    assert all(t.verdict is Verdict.PASS for t in run.ticks)
    assert "dry run: errors would have failed" in outcome_line(run)


def test_the_report_draws_each_metric_as_its_source_recorded_it_over_the_whole_run() -> None:
    from analysis.report import Outcome
    from rollout.engine.reports import TickRecord, build_report

    canary = release(metrics=[{"name": "request-success-rate", "thresholdRange": {"min": 99}},
                              {"name": "errors", "query": "sum(x)", "thresholdRange": {"max": 1}}])
    q_canary, q_primary = success_rate_queries(canary)
    end = T0 + timedelta(minutes=3)
    # A point every 5s for the success rate; the errors query fails when the report asks for its history.
    source = MemorySource({q_canary: points([99.9] * 37, end=end, step=5.0),
                           q_primary: points([99.95] * 37, end=end, step=5.0), "sum(x)": points([0.0], end=end)})
    checks = MetricChecks(canary, Sources(source))
    ticks = [TickRecord(T0 + timedelta(minutes=k + 1), 10 * (k + 1), checks.run(T0 + timedelta(minutes=k + 1), T0),
                        "advance") for k in range(3)]
    source.answers["sum(x)"] = BadQueryError("bad", "sum(x)", 400, "bad_data", "no")
    history = checks.history(T0, end)
    assert set(history) == {"request-success-rate"}
    series = {name: (Samples.of(c.timestamps, c.values), Samples.of(p.timestamps, p.values) if p else None)
              for name, (c, p) in history.items()}
    run = build_report(canary, checks.readings, ticks, Outcome.SUCCEEDED, end, series=series, started_at=T0)
    success, errors = run.metrics
    assert len(success.canary.timestamps) == 37 and success.primary is not None and len(success.primary.values) == 37
    assert success.checked is not None and len(success.checked.timestamps) == 3  # the markers: one per check
    assert len(errors.canary.timestamps) == 1  # drawn from its checks
    assert run.weights.values == (10.0, 20.0, 30.0) and run.started_at == T0.timestamp()


def test_a_source_that_does_not_answer_is_asked_for_one_metrics_history_only() -> None:
    canary = release(metrics=[{"name": "a", "query": "a", "thresholdRange": {"max": 1}},
                              {"name": "b", "query": "b", "thresholdRange": {"max": 1}}])
    down = UnreachableError("connection refused", "a")
    source = MemorySource({"a": down, "b": down})
    assert MetricChecks(canary, Sources(source)).history(T0, AT) == {}
    assert source.asked == ["a"]


# ---- warm-up -------------------------------------------------------------------------------------


def warm_start_source() -> MemorySource:
    """A canary with 30x the primary's errors in its first minute, then the same as the primary."""
    answers: dict[str, Answer] = {}
    for arm, first in (("canary", 30.0), ("primary", 1.0)):
        q = builtin_counts_queries("istio", "test", "podinfo", "1m", arm)  # type: ignore[arg-type]
        answers[q.requests] = counts(1000)
        answers[q.errors] = points([first] + [1.0] * 9, end=T0 + timedelta(minutes=10), step=MINUTE)
    return MemorySource(answers)


def sequential_with(warmup: dict[str, Any] | None) -> Canary:
    raw = release("sequential")
    return parse_canary({
        "apiVersion": "rollout.gitops.dev/v1alpha1", "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {
            "provider": "istio", "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 9898},
            "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10, "judge": "sequential",
                         "metrics": [{"name": m.name} for m in raw.spec.analysis.metrics],
                         **({"warmup": warmup} if warmup else {})},
        },
    })


def test_a_warm_up_allowance_forgives_a_bad_first_minute_that_fails_without_it() -> None:
    (without,) = check(warm_start_source(), sequential_with(None))
    assert without.verdict is Verdict.FAIL, without.reason
    (forgiven,) = check(warm_start_source(), sequential_with({"allowance": 40, "decay": "1m"}))
    assert forgiven.verdict is Verdict.PASS, forgiven.reason
    (none,) = check(warm_start_source(), sequential_with({"allowance": 0, "decay": "1m"}))
    assert none.verdict is Verdict.FAIL


def test_the_warm_up_multiplies_the_tolerance_and_fades_across_each_look() -> None:
    canary = sequential_with({"allowance": 1, "decay": "30s"})
    metric = replace(canary.spec.analysis.metrics[0], compare=Compare(tolerance=0.5))
    analysis = canary.spec.analysis  # one look per 1 m interval
    got = judging.window_factors(analysis, metric, [0.0, 120.0, 600.0])
    times = (np.arange(judging.WINDOW_POINTS) + 0.5) / judging.WINDOW_POINTS * 60.0
    assert got[0] == pytest.approx(1.5 * (1 + np.exp(-times / 30)))
    # The allowance ends once under 1% (after 30 s * ln 100 = 138 s): from then on the bound is exactly
    # the tolerance's.
    late = 120.0 + times
    assert got[1] == pytest.approx(np.where(late < 30 * math.log(100), 1.5 * (1 + np.exp(-late / 30)), 1.5))
    assert got[2].tolist() == [1.5] * judging.WINDOW_POINTS
    assert judging.margins(analysis, metric, [0.0, 600.0]) == pytest.approx([got[0].mean(), 1.5])
    assert judging.margins(release("sequential").spec.analysis, metric, [0.0]) == pytest.approx([1.5])


def test_a_latency_warm_up_is_a_slowdown_and_each_metric_may_have_its_own() -> None:
    """request-duration's own warm-up forgives a 35% slower start that fails without it; the error rate
    keeps the analysis's allowance."""
    canary = sequential_with({"allowance": 1, "decay": "20s"})
    (errors,) = canary.spec.analysis.metrics
    latency = Metric(name=judging.REQUEST_DURATION, warmup=Warmup(allowance=0.35, decay=20.0))
    analysis = replace(canary.spec.analysis, metrics=(errors, latency), look_interval=10.0)
    looks = np.arange(30)
    elapsed = looks * 10.0
    first = np.exp(-(np.arange(judging.WINDOW_POINTS) + 0.5) / judging.WINDOW_POINTS * 10 / 20)  # over 0-10 s
    assert judging.margins(analysis, errors, [0.0])[0] == pytest.approx(1 + first.mean())
    assert judging.window_factors(analysis, latency, [0.0])[0] == pytest.approx(1 + 0.35 * first)
    le = [25.0, 50.0, 75.0, 100.0, 125.0, 150.0, 200.0, 250.0, 300.0, 400.0, 500.0, 750.0, 1000.0, 2500.0]
    rng = np.random.default_rng(3)

    def buckets(median: npt.NDArray[np.float64], n: float) -> npt.NDArray[np.float64]:
        cdf = stats.norm.cdf((np.log(le)[None, :] - np.log(median)[:, None]) / 0.5)
        probs = np.diff(np.concatenate([np.zeros((looks.size, 1)), cdf, np.ones((looks.size, 1))], axis=1), axis=1)
        counts = np.stack([rng.multinomial(rng.poisson(n), p) for p in probs])
        return np.cumsum(np.cumsum(counts, axis=1), axis=0).astype(float)

    primary = buckets(np.full(looks.size, 100.0), 2000.0)
    warming = buckets(100.0 * np.exp(0.3 * np.exp(-(elapsed + 5) / 20)), 400.0)
    without = judging.judge_histogram(replace(analysis, warmup=None), replace(latency, warmup=None), elapsed,
                                      warming, primary, [*le, math.inf])
    assert without.verdict is Verdict.FAIL, without.reason
    forgiven = judging.judge_histogram(analysis, latency, elapsed, warming, primary, [*le, math.inf])
    assert forgiven.verdict is Verdict.PASS, forgiven.reason
    assert forgiven.details["slowdown"][0] == pytest.approx(1 + 0.35 * first.mean())
    slower = buckets(100.0 * np.exp(0.3 * np.exp(-(elapsed + 5) / 20)) * 1.25, 400.0)
    assert judging.judge_histogram(analysis, latency, elapsed, slower, primary, [*le, math.inf]).verdict is Verdict.FAIL


# ---- knative: each arm is a Revision the operator reads from the Knative Service ------------------


def knative_release(metrics: list[dict[str, Any]] | None = None) -> Canary:
    obj = {
        "apiVersion": "rollout.gitops.dev/v1alpha1", "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {"provider": "knative",
                 "targetRef": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "podinfo"},
                 "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10,
                              "metrics": metrics or [{"name": "request-success-rate", "thresholdRange": {"min": 99}}]}},
    }
    return parse_canary(obj)


def test_knative_checks_query_each_arms_revision() -> None:
    canary = knative_release()
    checks = MetricChecks(canary, Sources(MemorySource({})))
    metric = canary.spec.analysis.metrics[0]
    checks.routes = {"canary": "podinfo-00002", "primary": "podinfo-00001"}
    assert 'envoy_cluster_name=~"test/podinfo-00002"' in checks.query(metric, "canary")
    assert 'envoy_cluster_name=~"test/podinfo-00001"' in checks.query(metric, "primary")
    q_canary = checks.query(metric, "canary")
    [result] = MetricChecks(canary, Sources(MemorySource({q_canary: points([97.0])}))).run(AT, T0)
    assert result.verdict == Verdict.NO_DATA  # a checker that was not told the Revisions has none to ask
    checks = MetricChecks(canary, Sources(MemorySource({q_canary: points([97.0])})))
    checks.routes = {"canary": "podinfo-00002", "primary": "podinfo-00001"}
    [result] = checks.run(AT, T0)
    assert (result.verdict, result.value) == (Verdict.FAIL, 97.0)


def test_knative_templates_get_flaggers_route_variable() -> None:
    canary = knative_release([{"name": "errors", "thresholdRange": {"max": 1},
                               "query": 'sum(rate(x{revision="{{ route }}"}[{{ interval }}]))'}])
    checks = MetricChecks(canary, Sources(MemorySource({})))
    checks.routes = {"canary": "podinfo-00002", "primary": "podinfo-00001"}
    metric = canary.spec.analysis.metrics[0]
    assert checks.query(metric, "canary") == 'sum(rate(x{revision="podinfo-00002"}[1m]))'
    assert checks.query(metric, "primary") == 'sum(rate(x{revision="podinfo-00001"}[1m]))'
