"""Metric checks of one release at one moment: which query, which judge, which verdict.

The operator runs them every tick and `rollout analyze` runs them at moments in the past; both get
the same `CheckResult`s. Queries go to a `MetricSource`; the numeric shaping of what it answers is
`analysis.shaping`'s; what the spec says about judging the numbers (judge choice, direction,
tolerance, alpha, warm-up) and the verdict itself are `rollout.engine.judging`'s pure functions,
which the judge benchmark calls too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import numpy as np

from analysis.judges import JudgeResult
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
    single_series,
)
from analysis.shaping import cumsum_on_grid, look_times, stack_buckets
from analysis.templates import (
    REQUEST_DURATION,
    Arm,
    TemplateError,
    builtin_counts_queries,
    builtin_query,
    render_template,
    template_variables,
)
from analysis.verdicts import NanStrategy, Verdict
from rollout.api.durations import format_duration
from rollout.api.spec import BlueGreen, Canary, CanarySpec, Judge, Metric, MetricTemplate
from rollout.core import CheckResult
from rollout.engine import judging

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
    return judging.judge_for(release.spec.analysis, metric)


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
        # Per metric, the judge's evidence at its last check: (judge, statistic, value).
        self.evidence: dict[str, tuple[str, str, float]] = {}

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=self.release.spec.analysis.interval)

    def run(self, at: datetime, since: datetime) -> tuple[CheckResult, ...]:
        """Judge every metric at `at`; `since` is when the run started (sequential tests count from it)."""
        results = tuple(self.check(metric, at, since) for metric in self.release.spec.analysis.metrics)
        self.readings.extend(Reading(at, r) for r in results)
        return results

    def check(self, metric: Metric, at: datetime, since: datetime) -> CheckResult:
        result = judging.finish(metric, self._check(metric, at, since))
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
        judge = judge_for(self.release, metric)
        if (found := evidence(judge, result.details)) is not None:
            self.evidence[metric.name] = (judge.value, *found)
        effect = result.details.get("effect_size")
        critical = result.details.get("critical") is True
        return CheckResult(
            metric.name,
            result.verdict,
            result.value,
            result.primary,
            result.limit,
            result.reason,
            # An anytime-valid test that crossed its boundary stays crossed: waiting adds nothing.
            final=judge == Judge.SEQUENTIAL or critical,
            classification=str(result.details.get("classification", "")),
            effect_size=float(effect) if isinstance(effect, int | float) and np.isfinite(effect) else None,
            critical=critical,
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
            return self._compare(metric, at, since)
        value = self.prometheus.query_value(self.query(metric, "canary"), at)
        try:
            primary: float | None = self.prometheus.query_value(self.query(metric, "primary"), at)
        except (MetricSourceError, TemplateError):
            primary = None
        return judging.judge_threshold(metric, value, primary)

    def _compare(self, metric: Metric, at: datetime, since: datetime) -> JudgeResult:
        # The last few intervals, not before the run started: the last interval alone holds about one
        # independent rate per arm once the test counts the overlap.
        start = max(since, at - judging.COMPARE_INTERVALS * self.interval)
        step = max(self.interval / 10, timedelta(seconds=1))
        # NaN points are no data (the judge drops them); infinite ones are values, the worst of all
        canary = self._samples(metric, "canary", start, at, step)
        primary = self._samples(metric, "primary", start, at, step)
        return judging.judge_compare(self.release.spec.analysis, metric, canary, primary,
                                     step=step.total_seconds())

    def _samples(self, metric: Metric, arm: Arm, start: datetime, at: datetime, step: timedelta) -> FloatArray:
        """One arm's samples. Under `nanStrategy: replace` (Kayenta's, for counts that report nothing when
        nothing happened) a query with no series or only NaN points gives no samples or zeros, not no data."""
        query = self.query(metric, arm)
        if metric.compare is None or metric.compare.nan_strategy != NanStrategy.REPLACE:
            return self.prometheus.query_range_series(query, start, at, step).values
        series = self.prometheus.query_range(query, start, at, step)
        if not series:
            return np.zeros(0)
        return single_series(series, query).values if len(series) > 1 else series[0].values

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
        # Each look's counts come from the interval before it: the warm-up allowance is the one at its start.
        elapsed = looks - since.timestamp() - spec.analysis.interval
        if metric.name == REQUEST_DURATION:
            canary, le = self._buckets(arms["canary"].latency_buckets, looks)
            primary, le_p = self._buckets(arms["primary"].latency_buckets, looks)
            if le != le_p:
                raise NoDataError("canary and primary latency histograms have different buckets")
            le_ms = [b * arms["canary"].bucket_to_ms for b in le]
            return judging.judge_histogram(spec.analysis, metric, elapsed, canary, primary, le_ms)
        return judging.judge_counts(
            spec.analysis, metric, elapsed,
            self._cumulative(arms["canary"].errors, looks, none_is_zero=True),
            self._cumulative(arms["canary"].requests, looks),
            self._cumulative(arms["primary"].errors, looks, none_is_zero=True),
            self._cumulative(arms["primary"].requests, looks),
        )

    def _buckets(self, query: str, looks: FloatArray) -> tuple[FloatArray, list[float]]:
        series = self._increments(query, looks)
        if not series:
            raise NoDataError("no latency histogram since the run started", query)
        return stack_buckets(series, looks)


def evidence(judge: Judge, details: Mapping[str, object]) -> tuple[str, float] | None:
    """(statistic, value) of a judgement: the compare judge's Mann-Whitney p-value, or the sequential
    test's largest e-value of the run so far (it fails the release once it reaches 1/alpha)."""
    key, statistic = {Judge.COMPARE: ("p_value", "p_value"), Judge.SEQUENTIAL: ("max_evalue", "e_value")}.get(
        judge, ("", ""))
    value = details.get(key) if key else None
    return (statistic, float(value)) if isinstance(value, int | float) else None
