"""Kayenta's score of one check, from the release's spec and its metric checks.

`analysis.scoring` turns a check's per-metric classifications into one 0-100 score (`analysis.scoring`
module), each metric weighted by its `compare.weight`; the planner then passes, holds (marginal) or
fails the check on that score instead of on the metrics one by one. Dry-run metrics are not scored
(Kayenta's muted metrics).
"""

from __future__ import annotations

from collections.abc import Sequence

from analysis.scoring import Score, Scored, score
from rollout.api.spec import Analysis
from rollout.core.observations import CheckResult


def score_check(analysis: Analysis, results: Sequence[CheckResult]) -> Score | None:
    """The check's score under `analysis.scoring`; None without it."""
    if analysis.scoring is None:
        return None
    weights = {m.name: m.compare.weight if m.compare else None for m in analysis.metrics}
    scored = [
        Scored(r.name, r.classification or _label(r), weights.get(r.name), r.critical)
        for r in results
        if not r.dry_run and r.name in weights  # a `rollout` webhook's result is not a metric
    ]
    return score(scored, analysis.scoring.pass_at, analysis.scoring.marginal)


def _label(result: CheckResult) -> str:
    return {"pass": "Pass", "no-data": "Nodata"}.get(result.verdict.value, "High")


__all__ = ["score_check"]
