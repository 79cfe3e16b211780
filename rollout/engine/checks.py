"""Metric checks of one release at one moment: which query, which judge, which verdict.

The operator runs them every tick and `rollout analyze` runs them at moments in the past; both get
the same `CheckResult`s. Queries go to the `MetricSource` of each metric (`rollout.engine.sources`:
the operator-wide Prometheus, or the metric's MetricTemplate's own provider); the numeric shaping
of what it answers is `analysis.shaping`'s; what the spec says about judging the numbers (judge
choice, direction, tolerance, alpha, warm-up) and the verdict itself are `rollout.engine.judging`'s
pure functions, which the judge benchmark calls too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
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
from analysis.providers.rules import RULES
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
from rollout.api.spec import BlueGreen, Canary, CanarySpec, Judge, Metric, MetricTemplate, Provider
from rollout.core import CheckResult
from rollout.engine import judging
from rollout.engine.sources import SourceError, Sources, template_name, title

log = logging.getLogger(__name__)

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
    """Runs every metric of a release against its metric source (`sources`).

    `templates` maps (namespace, name) to the MetricTemplates that `templateRef`s name. In strict
    mode an unreachable source or a bad query raises CheckError rather than giving a verdict.
    """

    def __init__(
        self,
        release: Canary | BlueGreen,
        sources: Sources,
        templates: Mapping[tuple[str, str], MetricTemplate] | None = None,
        *,
        strict: bool = False,
        reload: Callable[[MetricChecks], None] | None = None,
    ) -> None:
        self.release = release
        self.sources = sources
        # Called before each check to refresh `templates` (the operator reads them from the cluster).
        self.reload = reload
        self.templates = dict(templates or {})
        # Templates that exist but cannot be used, with why (an invalid spec): said instead of "not found".
        self.unusable: dict[tuple[str, str], str] = {}
        self.strict = strict
        self.readings: list[Reading] = []
        # Per metric, the judge's evidence at its last check: (judge, statistic, value).
        self.evidence: dict[str, tuple[str, str, float]] = {}
        # What each arm's built-in metrics are labelled with when it is not the workload's name: a
        # Knative Service's Revisions, which the operator reads before each check (`reload`).
        self.routes: dict[str, str] = {}

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=self.release.spec.analysis.interval)

    @property
    def look(self) -> timedelta:
        """The sequential judge's look interval: its counts are taken per look (`analysis.lookInterval`)."""
        return timedelta(seconds=self.release.spec.analysis.look)

    def run(self, at: datetime, since: datetime, sequential_only: bool = False) -> tuple[CheckResult, ...]:
        """Judge every metric at `at` (with `sequential_only`, those of the sequential judge: a look
        between checks); `since` is when the run started (sequential tests count from it)."""
        if self.reload is not None:
            self.reload(self)
        metrics = [m for m in self.release.spec.analysis.metrics
                   if not sequential_only or judge_for(self.release, m) == Judge.SEQUENTIAL]
        results = tuple(self.check(metric, at, since) for metric in metrics)
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
        except (*_CONFIG_ERRORS, MetricSourceError) as e:
            if self.strict:
                raise CheckError(f"{metric.name}: {self._named(metric, e)}") from e
            # A template or Secret to fix fails the check; an unreachable source holds it as no data.
            if isinstance(e, _CONFIG_ERRORS) or (isinstance(e, SourceError) and not e.temporary):
                return CheckResult(metric.name, Verdict.FAIL, reason=f"cannot be checked: {self._named(metric, e)}")
            return CheckResult(metric.name, Verdict.NO_DATA,
                               reason=f"{self._title(metric)} unavailable: {self._named(metric, e)}")
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

    # -- sources -----------------------------------------------------------------------------

    def template(self, metric: Metric) -> MetricTemplate | None:
        """The MetricTemplate a metric's `templateRef` names (TemplateError when it is not there);
        None for built-in metrics and inline queries."""
        ref = metric.template_ref
        if ref is None:
            return None
        namespace = ref.namespace or self.release.metadata.namespace
        template = self.templates.get((namespace, ref.name))
        if template is None:
            why = self.unusable.get((namespace, ref.name))
            raise TemplateError(f"MetricTemplate {namespace}/{ref.name} " + (f"is invalid: {why}" if why else
                                                                           "not found"))
        return template

    def source(self, metric: Metric) -> MetricSource:
        """Where a metric's queries go: its template's provider, else the operator-wide Prometheus."""
        template = self.template(metric)
        return self.sources.default() if template is None else self.sources.for_template(template, metric.interval)

    def _known(self, metric: Metric) -> MetricTemplate | None:
        ref = metric.template_ref
        return self.templates.get((ref.namespace or self.release.metadata.namespace, ref.name)) if ref else None

    def _title(self, metric: Metric) -> str:
        template = self._known(metric)
        return title(template.spec.provider.type if template else "prometheus")

    def _named(self, metric: Metric, error: Exception) -> str:
        """An error's text, led by the template (namespace/name) and provider it comes from."""
        template = self._known(metric)
        if template is None or isinstance(error, SourceError):  # a SourceError names them already
            return str(error)
        return f"MetricTemplate {template_name(template)} ({template.spec.provider.type}): {error}"

    # -- queries -----------------------------------------------------------------------------

    def query(self, metric: Metric, arm: Arm) -> str:
        """The query of one arm. A template's `canaryQuery`/`primaryQuery` are each their arm's (with
        `{{ target }}` the target's name in both); otherwise the query is rendered for each arm, the
        primary's `{{ target }}` being `<target>-primary`."""
        spec = self.release.spec
        meta = self.release.metadata
        target = spec.target_ref.name
        interval = format_duration(metric.interval)
        ingress = spec.ingress_ref.name if isinstance(spec, CanarySpec) and spec.ingress_ref else None
        route = spec.route_ref.name if isinstance(spec, CanarySpec) and spec.route_ref else None
        if metric.builtin:
            return builtin_query(metric.name, spec.provider.value, meta.namespace, self._builtin_target(arm),
                                 interval, arm, ingress=ingress, target_kind=spec.target_ref.kind, route=route,
                                 service=spec.service.name or None)
        text = metric.query
        name = target if arm == "canary" else f"{target}-primary"
        template = self.template(metric)
        if template is not None:
            own = template.spec.canary_query if arm == "canary" else template.spec.primary_query
            text = own or template.spec.query
            if own:
                name = target
        assert text is not None
        variables = template_variables(meta.name, meta.namespace, name, interval, dict(metric.template_variables),
                                       ingress=ingress, route=self.routes.get(arm) or route)
        return render_template(text, variables)

    def _builtin_target(self, arm: Arm) -> str:
        """The name a built-in query selects an arm by: the target's, or for knative the arm's Revision."""
        if self.release.spec.provider != Provider.KNATIVE:
            return self.release.spec.target_ref.name
        route = self.routes.get(arm)
        if not route:
            raise NoDataError(f"the Knative Service has no {arm} Revision recorded yet")
        return route

    # -- judges ------------------------------------------------------------------------------

    def _judge(self, metric: Metric, at: datetime, since: datetime) -> JudgeResult:
        judge = judge_for(self.release, metric)
        if judge == Judge.SEQUENTIAL:
            return self._sequential(metric, at, since)
        if judge == Judge.COMPARE:
            self._need_ranges(metric, judge)
            return self._compare(metric, at, since)
        source = self.source(metric)
        value = source.query_value(self.query(metric, "canary"), at)
        try:
            primary: float | None = source.query_value(self.query(metric, "primary"), at)
        except (MetricSourceError, TemplateError):
            primary = None
        return judging.judge_threshold(metric, value, primary)

    def _need_ranges(self, metric: Metric, judge: Judge) -> None:
        """A judge of range series on a provider that serves none cannot check (validation says so too)."""
        template = self.template(metric)
        rules = RULES.get(template.spec.provider.type) if template else None
        if template is not None and rules is not None and not rules.range_queries:
            raise SourceError(f"MetricTemplate {template_name(template)} ({rules.type}): metric {metric.name}'s "
                              f"{judge.value} judge needs range series, which the {rules.type} provider cannot "
                              "give; judge it with a thresholdRange instead")

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
        source = self.source(metric)
        if metric.compare is None or metric.compare.nan_strategy != NanStrategy.REPLACE:
            return source.query_range_series(query, start, at, step).values
        series = source.query_range(query, start, at, step)
        if not series:
            return np.zeros(0)
        return single_series(series, query).values if len(series) > 1 else series[0].values

    def history(self, start: datetime, end: datetime, points: int = 600) -> dict[str, tuple[Series, Series | None]]:
        """Per metric, canary and primary as the source recorded them from `start` to `end`, at its own
        resolution (a step of 1s, coarser only past `points` samples), for the report. A metric whose
        source serves no ranges, or whose query fails now, is left out: its report shows its checks."""
        span = max((end - start).total_seconds(), 1.0)
        step = timedelta(seconds=max(1.0, span / points))
        found: dict[str, tuple[Series, Series | None]] = {}
        for metric in self.release.spec.analysis.metrics:
            try:
                template = self.template(metric)
                rules = RULES.get(template.spec.provider.type) if template else None
                if rules is not None and not rules.range_queries:
                    continue
                source = self.source(metric)
                canary = source.query_range_series(self.query(metric, "canary"), start, end, step)
                try:
                    primary: Series | None = source.query_range_series(self.query(metric, "primary"), start, end,
                                                                       step)
                except (*_CONFIG_ERRORS, MetricSourceError):
                    primary = None
            except (*_CONFIG_ERRORS, MetricSourceError) as e:
                log.info("the report of %s shows %s at its checks only: %s", self.release.metadata.name,
                         metric.name, e)
                if getattr(e, "temporary", False):
                    break  # a source that does not answer would hold the run's last tick once per metric
                continue
            found[metric.name] = (canary, primary)
        return found

    def _increments(self, query: str, looks: FloatArray) -> list[Series]:
        start = datetime.fromtimestamp(float(looks[0]), tz=UTC)
        end = datetime.fromtimestamp(float(looks[-1]), tz=UTC)
        # Only built-in metrics are judged sequentially: their counts come from the operator-wide Prometheus.
        return self.sources.default().query_range(query, start, end, self.look)

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
        looks = look_times(since, at, self.look)
        if looks.size == 0:
            which = "look interval (analysis.lookInterval)" if spec.analysis.look_interval else "analysis interval"
            raise NoDataError(f"no complete {which} since the run started")
        interval = format_duration(spec.analysis.look)
        ingress = spec.ingress_ref.name if isinstance(spec, CanarySpec) and spec.ingress_ref else None
        arms = {
            arm: builtin_counts_queries(spec.provider.value, self.release.metadata.namespace,
                                        self._builtin_target(arm), interval, arm, ingress=ingress,
                                        target_kind=spec.target_ref.kind, service=spec.service.name or None,
                                        route=spec.route_ref.name if isinstance(spec, CanarySpec)
                                        and spec.route_ref else None)
            for arm in ("canary", "primary")
        }
        # Each look's counts come from the look interval before it, which starts here (the warm-up allowance is
        # read across it).
        elapsed = looks - since.timestamp() - spec.analysis.look
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
