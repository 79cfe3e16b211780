"""Metric checks of one release at one moment: which query, which judge, which verdict.

The operator runs them every tick and `rollout analyze` runs them at moments in the past; both get
the same `CheckResult`s. Queries go to a `MetricSource`; the numeric shaping of what it answers is
`analysis.shaping`'s. Judge choice per metric: under `analysis.judge: sequential` the built-in
metrics get the sequential test (their raw counts are known; a `compare` block sets its tolerance)
and custom queries are compared with the primary; otherwise a metric with `compare` is compared
with the primary and the rest follow `analysis.judge` (`threshold` is Flagger's thresholdRange).

`compare.tolerance` is always relative: how much worse than the primary the canary may be, as a
fraction of the primary's value (0.1 = 10%). For `request-success-rate` it applies to the error
rate (100 - success rate), since a tolerance relative to ~100% would mean nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import numpy as np

from analysis.judges import JudgeResult
from analysis.judges.compare import compare
from analysis.judges.sequential import sequential_counts, sequential_histogram
from analysis.judges.threshold import threshold
from analysis.providers.base import (
    AmbiguousResultError,
    AuthError,
    BadQueryError,
    FloatArray,
    MetricSource,
    MetricSourceError,
    NaNError,
    NoDataError,
    Series,
)
from analysis.shaping import complement_percent, cumsum_on_grid, flip, look_times, p99, stack_buckets, success_percent
from analysis.templates import (
    REQUEST_DURATION,
    REQUEST_SUCCESS_RATE,
    Arm,
    TemplateError,
    builtin_counts_queries,
    builtin_query,
    render_template,
    template_variables,
)
from analysis.verdicts import Direction, Verdict
from rollout.api.durations import format_duration
from rollout.api.spec import BlueGreen, Canary, CanarySpec, Judge, Metric, MetricTemplate
from rollout.core import CheckResult

# Without a `compare` block, a difference of 10% of the primary's value is tolerated.
DEFAULT_TOLERANCE = 0.1

# Errors that no retry will cure: the check fails (and counts toward the threshold) instead of holding.
_CONFIG_ERRORS = (BadQueryError, AuthError, AmbiguousResultError, TemplateError)


class CheckError(Exception):
    """A query could not be answered; raised instead of a verdict in strict mode (`rollout analyze`)."""


@dataclass(frozen=True)
class Reading:
    """One metric at one moment, as the report plots it."""

    at: datetime
    check: CheckResult


def judge_for(release: Canary | BlueGreen, metric: Metric) -> Judge:
    judge = release.spec.analysis.judge
    if judge == Judge.SEQUENTIAL:
        # Its `compare` block, if any, gives the sequential test its direction and tolerance.
        return Judge.SEQUENTIAL if metric.builtin else Judge.COMPARE
    return Judge.COMPARE if metric.compare is not None else judge


class MetricChecks:
    """Runs every metric of a release against one metric source (Prometheus today).

    `templates` maps (namespace, name) to the MetricTemplates that `templateRef`s name. In strict
    mode an unreachable Prometheus or a bad query raises CheckError rather than giving a verdict.
    """

    def __init__(
        self,
        release: Canary | BlueGreen,
        prometheus: MetricSource,
        templates: Mapping[tuple[str, str], MetricTemplate] | None = None,
        *,
        strict: bool = False,
    ) -> None:
        self.release = release
        self.prometheus = prometheus
        self.templates = dict(templates or {})
        self.strict = strict
        self.readings: list[Reading] = []

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=self.release.spec.analysis.interval)

    def run(self, at: datetime, since: datetime) -> tuple[CheckResult, ...]:
        """Judge every metric at `at`; `since` is when the run started (sequential tests count from it)."""
        results = tuple(self.check(metric, at, since) for metric in self.release.spec.analysis.metrics)
        self.readings.extend(Reading(at, r) for r in results)
        return results

    def check(self, metric: Metric, at: datetime, since: datetime) -> CheckResult:
        result = self._check(metric, at, since)
        # A dry-run metric is judged like any other; the planner reads the mark and lets it decide nothing.
        return replace(result, dry_run=True) if metric.dry_run else result

    def _check(self, metric: Metric, at: datetime, since: datetime) -> CheckResult:
        try:
            result = self._judge(metric, at, since)
        except NoDataError as e:
            return CheckResult(metric.name, Verdict.NO_DATA, reason=f"no data: {e}")
        except NaNError as e:
            return CheckResult(metric.name, Verdict.NO_DATA, reason=str(e))
        except _CONFIG_ERRORS as e:
            if self.strict:
                raise CheckError(f"{metric.name}: {e}") from e
            return CheckResult(metric.name, Verdict.FAIL, reason=f"cannot be checked: {e}")
        except MetricSourceError as e:
            if self.strict:
                raise CheckError(f"{metric.name}: {e}") from e
            return CheckResult(metric.name, Verdict.NO_DATA, reason=f"Prometheus unavailable: {e}")
        return CheckResult(
            metric.name,
            result.verdict,
            result.value,
            result.primary,
            result.limit,
            result.reason,
            # An anytime-valid test that crossed its boundary stays crossed: waiting adds nothing.
            final=judge_for(self.release, metric) == Judge.SEQUENTIAL,
        )

    # -- queries -----------------------------------------------------------------------------

    def query(self, metric: Metric, arm: Arm) -> str:
        """The PromQL for one arm; a custom query's primary arm reads `<target>-primary`."""
        spec = self.release.spec
        meta = self.release.metadata
        target = spec.target_ref.name
        interval = format_duration(metric.interval)
        ingress = spec.ingress_ref.name if isinstance(spec, CanarySpec) and spec.ingress_ref else None
        if metric.builtin:
            return builtin_query(metric.name, spec.provider.value, meta.namespace, target, interval, arm,
                                 ingress=ingress, target_kind=spec.target_ref.kind)
        text = metric.query
        if metric.template_ref is not None:
            ref = metric.template_ref
            template = self.templates.get((ref.namespace or meta.namespace, ref.name))
            if template is None:
                raise TemplateError(f"MetricTemplate {ref.namespace or meta.namespace}/{ref.name} not found")
            text = template.spec.query
        assert text is not None
        name = target if arm == "canary" else f"{target}-primary"
        variables = template_variables(meta.name, meta.namespace, name, interval, dict(metric.template_variables),
                                       ingress=ingress)
        return render_template(text, variables)

    # -- judges ------------------------------------------------------------------------------

    def _judge(self, metric: Metric, at: datetime, since: datetime) -> JudgeResult:
        judge = judge_for(self.release, metric)
        if judge == Judge.SEQUENTIAL:
            return self._sequential(metric, at, since)
        if judge == Judge.COMPARE:
            return self._compare(metric, at)
        value = self.prometheus.query_value(self.query(metric, "canary"), at)
        try:
            primary: float | None = self.prometheus.query_value(self.query(metric, "primary"), at)
        except (MetricSourceError, TemplateError):
            primary = None
        bounds = metric.threshold_range
        result = threshold(value, min_value=bounds.min if bounds else None, max_value=bounds.max if bounds else None,
                           name=metric.name)
        return JudgeResult(result.verdict, result.value, primary, result.limit, result.reason, result.details)

    def _compare(self, metric: Metric, at: datetime) -> JudgeResult:
        start = at - self.interval
        step = max(self.interval / 10, timedelta(seconds=1))
        canary = self.prometheus.query_range_series(self.query(metric, "canary"), start, at, step).finite().values
        primary = self.prometheus.query_range_series(self.query(metric, "primary"), start, at, step).finite().values
        rule = metric.compare
        direction = rule.direction if rule else _bad_direction(metric)
        tolerance = rule.tolerance if rule else DEFAULT_TOLERANCE
        if metric.builtin and metric.name == REQUEST_SUCCESS_RATE:
            # A tolerance relative to ~100% would mean nothing: judge the error rate, 100 - success rate.
            result = compare(100.0 - canary, 100.0 - primary, direction=flip(direction), tolerance=tolerance,
                             alpha=self.release.spec.analysis.alpha, name="error rate (%)")
            return replace(result, value=complement_percent(result.value),
                           primary=complement_percent(result.primary))
        return compare(canary, primary, direction=direction, tolerance=tolerance,
                       alpha=self.release.spec.analysis.alpha, name=metric.name)

    def _increments(self, query: str, looks: FloatArray) -> list[Series]:
        start = datetime.fromtimestamp(float(looks[0]), tz=UTC)
        end = datetime.fromtimestamp(float(looks[-1]), tz=UTC)
        return self.prometheus.query_range(query, start, end, self.interval)

    def _cumulative(self, query: str, looks: FloatArray, *, none_is_zero: bool = False) -> FloatArray:
        """Per-look cumulative count since the run started (NaN where a look has no sample).

        A counter with no series at all (no 5xx ever, say) is zero when `none_is_zero`."""
        series = self._increments(query, looks)
        if not series:
            if none_is_zero:
                return np.zeros_like(looks)
            raise NoDataError("no data: no counts since the run started", query)
        return cumsum_on_grid(series[0], looks)

    def _sequential(self, metric: Metric, at: datetime, since: datetime) -> JudgeResult:
        spec = self.release.spec
        looks = look_times(since, at, self.interval)
        if looks.size == 0:
            raise NoDataError("no complete analysis interval since the run started")
        interval = format_duration(spec.analysis.interval)
        ingress = spec.ingress_ref.name if isinstance(spec, CanarySpec) and spec.ingress_ref else None
        arms = {
            arm: builtin_counts_queries(spec.provider.value, self.release.metadata.namespace,
                                        spec.target_ref.name, interval, arm, ingress=ingress,
                                        target_kind=spec.target_ref.kind)
            for arm in ("canary", "primary")
        }
        margin = 1.0 + (metric.compare.tolerance if metric.compare else 0.0)
        # alpha is the release's false-alarm budget: split it over the sequential metrics (Bonferroni).
        sequential = [m for m in spec.analysis.metrics if judge_for(self.release, m) == Judge.SEQUENTIAL]
        alpha = spec.analysis.alpha / max(1, len(sequential))
        if metric.name == REQUEST_DURATION:
            canary, le = self._buckets(arms["canary"].latency_buckets, looks)
            primary, le_p = self._buckets(arms["primary"].latency_buckets, looks)
            if le != le_p:
                raise NoDataError("canary and primary latency histograms have different buckets")
            le_ms = [b * arms["canary"].bucket_to_ms for b in le]
            result = sequential_histogram(canary, primary, le=le_ms[:-1], alpha=alpha, margin=margin,
                                          name="latency (ms)")
            # Shown as P99 over the run, like the other judges, so readings stay comparable.
            return replace(result, value=p99(canary, le_ms), primary=p99(primary, le_ms))
        result = sequential_counts(
            self._cumulative(arms["canary"].errors, looks, none_is_zero=True),
            self._cumulative(arms["canary"].requests, looks),
            self._cumulative(arms["primary"].errors, looks, none_is_zero=True),
            self._cumulative(arms["primary"].requests, looks),
            alpha=alpha, margin=margin, name="error rate",
        )
        # Shown as a success rate in percent, like the other judges.
        return replace(result, value=success_percent(result.value), primary=success_percent(result.primary))

    def _buckets(self, query: str, looks: FloatArray) -> tuple[FloatArray, list[float]]:
        series = self._increments(query, looks)
        if not series:
            raise NoDataError("no latency histogram since the run started", query)
        return stack_buckets(series, looks)


def _bad_direction(metric: Metric) -> Direction:
    """Without a `compare` block: success rates are bad when they fall, everything else when it rises."""
    return Direction.DECREASE if metric.name == REQUEST_SUCCESS_RATE else Direction.INCREASE
