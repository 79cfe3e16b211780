"""Kayenta's 0-100 score of one check, from its metrics' classifications and weights.

After Kayenta's `WeightedSumScorer` and `ThresholdScoreClassifier` (spinnaker/kayenta,
`kayenta-judge/.../scorers/WeightedSumScorer.scala`, `classifiers/score/ThresholdScoreClassifier.scala`),
with one difference: Kayenta weighs groups of metrics, here each metric is its own group and carries
its own weight. A metric scores 100 when it passes and 0 when it is High, Low or missing data it must
have; a metric with no data counts as 100 (Kayenta's "no data" group), unless half or more of the
metrics have none, which scores 0. Metrics without a weight share what the weighted ones leave of 100.
A critical failure scores 0 whatever the rest. The score is rounded to two decimals (half up) and
classified: at or above `pass` it passes, at or above `marginal` it is marginal, below it fails.

Standard library only: the planner (`rollout.core`, no numpy) scores each check with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

# WeightedSumScorer.NODATA_THRESHOLD: this share (percent) of metrics without data or more scores 0.
NODATA_THRESHOLD = 50.0


class ScoreClass(StrEnum):
    PASS = "pass"
    MARGINAL = "marginal"
    FAIL = "fail"


@dataclass(frozen=True)
class Scored:
    """One metric as the scorer sees it: Kayenta's classification label (Pass, High, Low, Nodata,
    NodataFailMetric), its weight (None: a share of what is left), and whether it failed critically."""

    name: str
    classification: str
    weight: float | None = None
    critical: bool = False


@dataclass(frozen=True)
class Score:
    value: float
    classification: ScoreClass
    reason: str
    critical: bool = False  # a critical metric failed: the release fails at once


def weights(metrics: Sequence[Scored]) -> list[float]:
    """Each metric's weight: its own, or an equal share of 100 minus the given ones (never below 0)."""
    given = sum(m.weight for m in metrics if m.weight is not None)
    unweighted = sum(1 for m in metrics if m.weight is None)
    share = max(0.0, 100.0 - given) / unweighted if unweighted else 0.0
    return [m.weight if m.weight is not None else share for m in metrics]


def _round2(x: float) -> float:
    return float(Decimal(repr(x)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def summary_score(metrics: Sequence[Scored]) -> tuple[float, str, bool]:
    """(score 0-100, reason, critical) as WeightedSumScorer.score computes it."""
    critical = [m for m in metrics if m.critical and m.classification != "Pass"]
    if critical:
        m = critical[0]
        return 0.0, f"{m.name} failed critically ({m.classification})", True
    nodata = sum(1 for m in metrics if m.classification == "Nodata")
    if metrics and nodata / len(metrics) * 100 >= NODATA_THRESHOLD:
        return 0.0, f"{NODATA_THRESHOLD:g}% or more metrics returned NODATA", False
    total = 0.0
    for m, w in zip(metrics, weights(metrics), strict=True):
        # A metric with no data is Kayenta's group without data: it counts as 100.
        effective = 100.0 if m.classification in ("Pass", "Nodata") else 0.0
        total += effective * (w / 100)
    return _round2(total), "", False


def classify_score(value: float, pass_at: float, marginal_at: float) -> ScoreClass:
    """ThresholdScoreClassifier: >= pass passes, >= marginal is marginal, below fails."""
    if value >= pass_at:
        return ScoreClass.PASS
    if value >= marginal_at:
        return ScoreClass.MARGINAL
    return ScoreClass.FAIL


def score(metrics: Sequence[Scored], pass_at: float, marginal_at: float) -> Score:
    value, reason, critical = summary_score(metrics)
    cls = ScoreClass.FAIL if critical else classify_score(value, pass_at, marginal_at)
    if not reason:
        reason = f"score {value:g} ({cls.value}: pass at {pass_at:g}, marginal at {marginal_at:g})"
    else:
        reason = f"score {value:g}: {reason}"
    return Score(value, cls, reason, critical)


__all__ = ["NODATA_THRESHOLD", "Score", "ScoreClass", "Scored", "classify_score", "score", "summary_score",
           "weights"]
