"""Turn what a release observed (metric readings, ticks) into an analysis report.

The operator writes one for every run and `rollout analyze` for every replay; the report itself
(JSON, Markdown, HTML with plots) is `analysis.report`'s business.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from analysis.judges import Verdict
from analysis.report import AnalysisRun, MetricSeries, Outcome, Samples, Tick, markdown_table, outcome_line
from rollout.api.spec import BlueGreen, Canary
from rollout.api.status import ReleaseStatus
from rollout.core import CheckResult
from rollout.engine.checks import MetricChecks, Reading, judge_for

_UNITS = {"request-success-rate": "%", "request-duration": "ms"}


@dataclass(frozen=True)
class TickRecord:
    """One tick as a report shows it: the weight after it, what was judged and what was done."""

    at: datetime
    weight: int
    checks: tuple[CheckResult, ...]
    action: str
    message: str = ""
    score: float | None = None  # `analysis.scoring`'s score of this tick's check


def tick_verdict(checks: Sequence[CheckResult]) -> Verdict:
    # A dry-run metric never decides a check, so it never colours one.
    verdicts = {c.verdict.value for c in checks if not c.dry_run}
    for v in (Verdict.FAIL, Verdict.NO_DATA):
        if v.value in verdicts:
            return v
    return Verdict.PASS if checks else Verdict.NO_DATA


def run_series(checks: MetricChecks, start: datetime, end: datetime) -> dict[str, tuple[Samples, Samples | None]]:
    """Each metric's canary and primary as its source recorded them from `start` to `end`
    (`MetricChecks.history`), for `build_report`'s `series`."""
    return {name: (Samples.of(c.timestamps, c.values), Samples.of(p.timestamps, p.values) if p is not None else None)
            for name, (c, p) in checks.history(start, end).items()}


def build_report(
    release: Canary | BlueGreen,
    readings: Sequence[Reading],
    ticks: Sequence[TickRecord],
    outcome: Outcome,
    decided_at: datetime | None,
    summary: str = "",
    revision: str | None = None,
    series: Mapping[str, tuple[Samples, Samples | None]] | None = None,
    started_at: datetime | None = None,
) -> AnalysisRun:
    """The report of a run. `series` holds, per metric, canary and primary as the source recorded them
    over the whole run (`MetricChecks.history`); a metric without them is drawn from its check readings."""
    metrics = []
    for metric in release.spec.analysis.metrics:
        mine = [r for r in readings if r.check.name == metric.name]
        canary = [(r.at.timestamp(), r.check.value) for r in mine if r.check.value is not None]
        primary = [(r.at.timestamp(), r.check.primary) for r in mine if r.check.primary is not None]
        checked = Samples.of([t for t, _ in canary], [v for _, v in canary])
        recorded = (series or {}).get(metric.name)
        last = mine[-1].check if mine else None
        bounds = metric.threshold_range
        judge = judge_for(release, metric)
        detail = last.reason if last else ""
        if metric.dry_run:
            failed = sum(1 for r in mine if r.check.verdict is Verdict.FAIL)
            detail = f"dry run: would have failed {failed} of {len(mine)} checks" + (f"; {detail}" if detail else "")
        metrics.append(
            MetricSeries(
                name=metric.name,
                canary=recorded[0] if recorded else checked,
                primary=(recorded[1] if recorded else
                         Samples.of([t for t, _ in primary], [v for _, v in primary]) if primary else None),
                checked=checked,
                limit_min=bounds.min if bounds and judge.value == "threshold" else None,
                limit_max=bounds.max if bounds and judge.value == "threshold" else None,
                verdict=Verdict(last.verdict.value) if last else Verdict.NO_DATA,
                unit=_UNITS.get(metric.name, "") if metric.builtin and judge.value != "sequential" else "",
                canary_value=last.value if last else None,
                primary_value=last.primary if last else None,
                limit_text=last.limit if last and last.limit else None,
                detail=detail,
                dry_run=metric.dry_run,
                classification=last.classification if last else "",
                effect_size=last.effect_size if last else None,
                critical=last.critical if last else False,
            )
        )
    return AnalysisRun(
        name=release.metadata.name,
        namespace=release.metadata.namespace,
        outcome=outcome,
        decided_at=decided_at.timestamp() if decided_at else None,
        ticks=tuple(
            Tick(t.at.timestamp(), tick_verdict(t.checks), t.action, t.weight, t.message, t.score)
            for t in ticks if t.checks
        ),
        metrics=tuple(metrics),
        judge=release.spec.analysis.judge.value,
        revision=revision,
        summary=summary,
        weights=_steps(ticks),
        started_at=started_at.timestamp() if started_at else None,
    )


def _steps(ticks: Sequence[TickRecord]) -> Samples:
    """The weight after each tick that changed it (and the first), for a step line."""
    points: list[tuple[float, float]] = []
    for t in ticks:
        if not points or points[-1][1] != t.weight:
            points.append((t.at.timestamp(), float(t.weight)))
    return Samples.of([t for t, _ in points], [w for _, w in points])


def markdown_from_status(release: Canary | BlueGreen, status: ReleaseStatus) -> str:
    """The failed run's Markdown summary from what its status kept (after a restart lost the readings)."""
    analysis = status.analysis
    metrics = analysis.metrics if analysis else ()
    run = AnalysisRun(
        name=release.metadata.name, namespace=release.metadata.namespace, outcome=Outcome.FAILED,
        decided_at=analysis.checked_at.timestamp() if analysis and analysis.checked_at else None,
        ticks=(), metrics=tuple(
            MetricSeries(
                name=m.name, canary=Samples.of([], []), primary=None, limit_min=None, limit_max=None,
                verdict=Verdict(m.verdict) if m.verdict in {v.value for v in Verdict} else Verdict.NO_DATA,
                unit="", canary_value=m.value, primary_value=m.primary, limit_text=m.limit or None,
                detail=m.reason, dry_run=m.dry_run, classification=m.classification, effect_size=m.effect_size,
                critical=m.critical,
            )
            for m in metrics
        ),
        judge=release.spec.analysis.judge.value,
    )
    return outcome_line(run).replace(" after 0 checks", "") + "\n\n" + markdown_table(run)
