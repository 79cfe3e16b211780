"""Kayenta's NetflixACAJudge rules, around the compare judge: effect sizes, critical metrics, data rules.

The compare judge decides whether the canary differs significantly from the primary beyond the
tolerance. Kayenta's judge (spinnaker/kayenta, `kayenta-judge`: `NetflixACAJudge.scala`,
`MannWhitneyClassifier.scala`, `EffectSizes.scala`, `IQRDetector.scala`, `Transforms.scala`) adds
rules a metric may opt into, reproduced here from its source and tests:

- before the test, NaN values are removed or replaced with 0 (`nanStrategy`) and IQR outliers are
  removed (`outliers`, Tukey's fences at `factor` interquartile ranges, widened to the 1st and 99th
  percentiles, as NetflixACAJudge builds its detector with `reduceSensitivity = true`);
- a significant difference is then classified High or Low, and only fails when its effect size
  reaches the allowed limit: the ratio of means (experiment / control; NaN when either mean is 0) at
  or above `allowedIncrease` for High, at or below `allowedDecrease` for Low, or the common-language
  effect size (the share of pairs where the canary is higher) against the same limits. An effect
  size that cannot be computed (NaN) does not stop a failure;
- a `critical` metric whose High (Low) effect also reaches `criticalIncrease` (`criticalDecrease`)
  fails critically: the whole release fails at once. A critical metric without data fails critically
  too; a `mustHaveData` metric without data fails (instead of being no data); with NaNs replaced,
  no data at all passes.

Infinite values stay the worst values (never outliers, never replaced). What the classification and
the effect size were goes into the result's details for the status and the report.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from scipy import stats

from analysis.judges import JudgeResult, Verdict, fmt
from analysis.verdicts import Classification, Direction, EffectMeasure, NanStrategy

FloatArray = npt.NDArray[np.float64]


# Kayenta's NetflixACAJudge defaults: limits of 1 (meanRatio) or 0.5 (cles), outliers at 3 IQRs.
DEFAULT_LIMIT = {EffectMeasure.MEAN_RATIO: 1.0, EffectMeasure.CLES: 0.5}
DEFAULT_OUTLIER_FACTOR = 3.0


@dataclass(frozen=True)
class Rules:
    """The Kayenta rules of one metric; None means the rule is not asked for (the compare judge as is)."""

    measure: EffectMeasure = EffectMeasure.MEAN_RATIO
    allowed_increase: float | None = None
    allowed_decrease: float | None = None
    critical_increase: float | None = None
    critical_decrease: float | None = None
    effect_limits: bool = False  # an `effectSize` block was given: High/Low must reach the allowed limits
    critical: bool = False
    must_have_data: bool = False
    nan_strategy: NanStrategy = NanStrategy.REMOVE
    outlier_factor: float | None = None  # set: remove IQR outliers at this factor

    def limit(self, value: float | None) -> float:
        return DEFAULT_LIMIT[self.measure] if value is None else value


def mean_ratio(control: npt.ArrayLike, experiment: npt.ArrayLike) -> float:
    """Kayenta's `EffectSizes.meanRatio`: experiment mean / control mean, NaN when either mean is 0."""
    c, e = np.asarray(control, dtype=np.float64), np.asarray(experiment, dtype=np.float64)
    if c.size == 0 or e.size == 0:
        return float("nan")
    cm, em = float(np.mean(c)), float(np.mean(e))
    if cm == 0.0 or em == 0.0:
        return float("nan")
    with np.errstate(invalid="ignore"):
        return em / cm


def cles(control: npt.ArrayLike, experiment: npt.ArrayLike) -> float:
    """Kayenta's `EffectSizes.cles` (Vargha and Delaney 2000): the share of (experiment, control) pairs
    where the experiment is higher, ties counting half, from the experiment's rank sum."""
    c, e = np.asarray(control, dtype=np.float64), np.asarray(experiment, dtype=np.float64)
    m, n = e.size, c.size
    if m == 0 or n == 0:
        return float("nan")
    ranks = stats.rankdata(np.concatenate([e, c]))  # average ties, as Kayenta's NaturalRanking
    r1 = float(np.sum(ranks[:m]))
    return (2 * r1 - m * (m + 1)) / (2 * n * m)


def effect_size(control: npt.ArrayLike, experiment: npt.ArrayLike, measure: EffectMeasure) -> float:
    return cles(control, experiment) if measure is EffectMeasure.CLES else mean_ratio(control, experiment)


def iqr_outliers(data: npt.ArrayLike, factor: float = 1.5, *, reduce_sensitivity: bool = False
                 ) -> npt.NDArray[np.bool_]:
    """Kayenta's `IQRDetector`: True where a value lies below Q1 - factor * IQR or above Q3 + factor * IQR
    (percentiles R-7, numpy's default); with `reduce_sensitivity` the fences widen to at least the 1st
    and 99th percentiles. Non-finite values are never outliers here (+Inf is the worst value, not noise)
    and take no part in the fences."""
    if factor <= 0:
        raise ValueError("factor must be greater than zero")
    x = np.asarray(data, dtype=np.float64)
    finite = np.isfinite(x)
    if not finite.any():
        return np.zeros(x.shape, dtype=np.bool_)
    vals = x[finite]
    p25, p75 = np.percentile(vals, [25, 75])
    iqr = p75 - p25
    lower, upper = p25 - factor * iqr, p75 + factor * iqr
    if reduce_sensitivity:
        p01, p99 = np.percentile(vals, [1, 99])
        lower, upper = min(p01, lower), max(p99, upper)
    return np.asarray(finite & ((x > upper) | (x < lower)), dtype=np.bool_)


def prepare(values: npt.ArrayLike, rules: Rules) -> FloatArray:
    """NetflixACAJudge's `transformMetric`: NaNs removed or replaced with 0, then IQR outliers removed."""
    x = np.asarray(values, dtype=np.float64).ravel()
    x = np.where(np.isnan(x), 0.0, x) if rules.nan_strategy is NanStrategy.REPLACE else x[~np.isnan(x)]
    if rules.outlier_factor is not None and x.size:
        x = x[~iqr_outliers(x, rules.outlier_factor, reduce_sensitivity=True)]
    return np.asarray(x, dtype=np.float64)


def no_data(rules: Rules, reason: str) -> tuple[Verdict, Classification, bool, str]:
    """What no data means under the rules (MannWhitneyClassifier.classify): (verdict, classification,
    critical, reason)."""
    if rules.critical:
        return Verdict.FAIL, Classification.NODATA, True, f"{reason} (critical metric: no data fails the release)"
    if rules.must_have_data:
        return Verdict.FAIL, Classification.NODATA_FAIL, False, f"{reason} (mustHaveData)"
    return Verdict.NO_DATA, Classification.NODATA, False, reason


def _side(result: JudgeResult, direction: Direction) -> Classification:
    """High or Low for a failed comparison: the direction, or for `either` the sign of the effect."""
    if direction is Direction.INCREASE:
        return Classification.HIGH
    if direction is Direction.DECREASE:
        return Classification.LOW
    shift = result.details.get("mean_difference", result.details.get("shift", 0.0))
    return Classification.HIGH if float(shift) > 0 else Classification.LOW


def classify(result: JudgeResult, canary: npt.ArrayLike, primary: npt.ArrayLike, direction: Direction,
             rules: Rules) -> JudgeResult:
    """Kayenta's classification of the compare judge's result on the prepared samples (`prepare`):
    the effect-size gate, critical failures and the data rules. The details gain `classification`,
    `effect_size` (with `effect_measure`) and `critical`."""
    c, p = np.asarray(canary, dtype=np.float64), np.asarray(primary, dtype=np.float64)
    if result.verdict is Verdict.NO_DATA:
        if rules.nan_strategy is NanStrategy.REPLACE and (c.size == 0 or p.size == 0):
            # Kayenta: with NaNs replaced, a side with no data at all is a pass (no errors reported)
            details = {**result.details, "classification": Classification.PASS.value, "critical": False}
            return replace(result, verdict=Verdict.PASS, details=details,
                           reason=f"{result.reason}; nanStrategy replace: no data counts as a pass")
        verdict, label, critical, reason = no_data(rules, result.reason)
        details = {**result.details, "classification": label.value, "critical": critical}
        return replace(result, verdict=verdict, reason=reason, details=details)
    size = effect_size(p, c, rules.measure)
    details = {**result.details, "effect_size": size, "effect_measure": rules.measure.value}
    shown = "n/a" if np.isnan(size) else fmt(size)
    if not result.failed:
        details |= {"classification": Classification.PASS.value, "critical": False}
        return replace(result, details=details, reason=f"{result.reason}; {rules.measure.value} {shown}")
    label = _side(result, direction)
    high = label is Classification.HIGH
    # An effect size that cannot be computed is ignored (Kayenta: `if (effectSize.isNaN) true`).
    allowed = rules.limit(rules.allowed_increase if high else rules.allowed_decrease)
    reaches = bool(np.isnan(size) or (size >= allowed if high else size <= allowed))
    if rules.effect_limits and not reaches:
        details |= {"classification": Classification.PASS.value, "critical": False}
        word = "below" if high else "above"
        return replace(result, verdict=Verdict.PASS, details=details,
                       reason=f"{result.reason}; but {rules.measure.value} {shown} is {word} the allowed "
                              f"{'increase' if high else 'decrease'} {fmt(allowed)}: passes")
    bound = rules.limit(rules.critical_increase if high else rules.critical_decrease)
    critical = rules.critical and bool(np.isnan(size) or (size >= bound if high else size <= bound))
    details |= {"classification": label.value, "critical": critical}
    reason = f"{result.reason}; {label.value}, {rules.measure.value} {shown}"
    if critical:
        reason += f" (critical: {'at or above' if high else 'at or below'} {fmt(bound)})"
    return replace(result, details=details, reason=reason)


__all__ = [
    "DEFAULT_LIMIT", "DEFAULT_OUTLIER_FACTOR", "Classification", "EffectMeasure", "NanStrategy", "Rules",
    "classify", "cles", "effect_size", "iqr_outliers", "mean_ratio", "no_data", "prepare",
]
