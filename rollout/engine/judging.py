"""From a release's analysis spec and one metric's numbers to a verdict: no queries, no clock.

`MetricChecks` queries Prometheus and hands the numbers here; the judge benchmark hands simulated
numbers to the same functions, so every figure it prints is what a Canary with that analysis block
does. What the spec decides lives here once: which judge a metric gets, its direction and
tolerance, the sequential judge's share of `alpha` and its margin at each look (the tolerance
times the metric's warm-up allowance; for latency, how many times as slow the canary may be).

`compare.tolerance` is always relative: how much worse than the primary the canary may be, as a
fraction of the primary's value (0.1 = 10%). For `request-success-rate` it applies to the error
rate (100 - success rate), since a tolerance relative to ~100% would mean nothing.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from analysis.judges import JudgeResult
from analysis.judges.compare import compare, compare_batch
from analysis.judges.kayenta import Rules, classify, no_data, prepare
from analysis.judges.sequential import sequential_counts, sequential_histogram
from analysis.judges.threshold import threshold
from analysis.shaping import complement_percent, flip, p99, success_percent
from analysis.templates import REQUEST_DURATION, REQUEST_SUCCESS_RATE
from analysis.verdicts import Classification, Direction, NanStrategy, Verdict
from rollout.api.spec import Analysis, EffectSize, Judge, Metric
from rollout.core import CheckResult

FloatArray = npt.NDArray[np.float64]

# Without a `compare` block, a difference of 10% of the primary's value is tolerated.
DEFAULT_TOLERANCE = 0.1

# The compare judge's window, in analysis intervals back from the check (not before the run started).
# Its samples are rates over the metric's `interval` every interval / 10: one interval of them is worth
# about one independent rate per arm, too few for any test; three are enough to see a clear regression
# while one that starts mid-run still fills most of the window within two checks.
COMPARE_INTERVALS = 3


def judge_for(analysis: Analysis, metric: Metric) -> Judge:
    """The judge of one metric (`Analysis.judge_of`, which validation reads too)."""
    return analysis.judge_of(metric)


def bad_direction(metric: Metric) -> Direction:
    """The direction that is a regression: the `compare` block's, else success rates falling and
    everything else rising."""
    if metric.compare is not None:
        return metric.compare.direction
    return Direction.DECREASE if metric.name == REQUEST_SUCCESS_RATE else Direction.INCREASE


def tolerance_of(metric: Metric) -> float:
    return metric.compare.tolerance if metric.compare else DEFAULT_TOLERANCE


def sequential_alpha(analysis: Analysis) -> float:
    """alpha is the release's false-alarm budget: split over its sequential metrics (Bonferroni)."""
    sequential = [m for m in analysis.metrics if judge_for(analysis, m) == Judge.SEQUENTIAL]
    return analysis.alpha / max(1, len(sequential))


# Times per look at which a changing warm-up allowance is read, spread evenly over the look's interval.
WINDOW_POINTS = 8


def window_factors(analysis: Analysis, metric: Metric, elapsed: npt.ArrayLike) -> FloatArray:
    """The sequential null's bound over each look's interval: 1 + tolerance, times the metric's warm-up
    allowance (`Warmup.factor` of `Analysis.warmup_of`) at `WINDOW_POINTS` times spread over the
    interval its counts come from (`elapsed`: per look, the seconds into the run at which it began,
    0 for the first look; it lasts `analysis.look`). Shape (looks, WINDOW_POINTS). For error counts it
    bounds the canary's error rate as a multiple of the primary's; for latency it is how many times as
    slow the canary may be."""
    t = np.asarray(elapsed, dtype=np.float64)
    base = 1.0 + (metric.compare.tolerance if metric.compare else 0.0)
    warmup = analysis.warmup_of(metric)
    if warmup is None:
        return np.full((*t.shape, WINDOW_POINTS), base)
    at = t[..., None] + (np.arange(WINDOW_POINTS) + 0.5) / WINDOW_POINTS * analysis.look
    return np.asarray(base * np.vectorize(warmup.factor, otypes=[np.float64])(at), dtype=np.float64)


def margins(analysis: Analysis, metric: Metric, elapsed: npt.ArrayLike) -> FloatArray:
    """The error-rate bound of each look: `window_factors` averaged over the look's interval. With steady
    traffic within a look, the canary's expected errors under that bound are the average's."""
    return np.asarray(window_factors(analysis, metric, elapsed).mean(axis=-1), dtype=np.float64)


def judge_threshold(metric: Metric, value: float | None, primary: float | None = None) -> JudgeResult:
    """Flagger's thresholdRange on the canary's value; the primary's is only shown."""
    bounds = metric.threshold_range
    result = threshold(value, min_value=bounds.min if bounds else None, max_value=bounds.max if bounds else None,
                       name=metric.name)
    return replace(result, primary=primary)


def rules_of(metric: Metric) -> Rules | None:
    """Kayenta's rules a metric's `compare` block asks for; None when it asks for none (the compare judge
    as it is, result for result)."""
    c = metric.compare
    if c is None or (c.effect_size is None and not c.critical and not c.must_have_data and c.nan_strategy is None
                     and c.outliers is None and c.weight is None):
        return None
    e = c.effect_size or EffectSize()
    return Rules(
        measure=e.measure,
        allowed_increase=e.allowed_increase,
        allowed_decrease=e.allowed_decrease,
        critical_increase=e.critical_increase,
        critical_decrease=e.critical_decrease,
        effect_limits=c.effect_size is not None,
        critical=c.critical,
        must_have_data=c.must_have_data,
        nan_strategy=c.nan_strategy or NanStrategy.REMOVE,
        outlier_factor=c.outliers.factor if c.outliers is not None and c.outliers.remove else None,
    )


def sample_window(metric: Metric, step: float | None) -> float | None:
    """How many sampling steps (seconds apart) one compare sample spans: the metric's queries are rates
    over its `interval`, so samples closer than that overlap and the test corrects for it. None (no
    `step`): samples known to be independent, judged by the R-exact test as they are."""
    return None if step is None else metric.interval / step


def judge_compare(analysis: Analysis, metric: Metric, canary: npt.ArrayLike, primary: npt.ArrayLike, *,
                  step: float | None = None) -> JudgeResult:
    """The canary's samples over the last `COMPARE_INTERVALS` intervals, `step` seconds apart, against the
    primary's: a Mann-Whitney test corrected for the samples' serial correlation (overlapping rates). With
    Kayenta's rules (`rules_of`), the samples are prepared first (NaNs, outliers) and the result
    classified after."""
    direction, tolerance = bad_direction(metric), tolerance_of(metric)
    window = sample_window(metric, step)
    c = np.asarray(canary, dtype=np.float64)
    p = np.asarray(primary, dtype=np.float64)
    rules = rules_of(metric)
    success_rate = metric.builtin and metric.name == REQUEST_SUCCESS_RATE
    if success_rate:
        # A tolerance relative to ~100% would mean nothing: judge the error rate, 100 - success rate.
        c, p, direction = 100.0 - c, 100.0 - p, flip(direction)
    if rules is not None:
        c, p = prepare(c, rules), prepare(p, rules)
    name = "error rate (%)" if success_rate else metric.name
    result = compare(c, p, direction=direction, tolerance=tolerance, alpha=analysis.alpha, name=name, window=window)
    if rules is not None:
        result = classify(result, c, p, direction, rules)
    if success_rate:
        return replace(result, value=complement_percent(result.value), primary=complement_percent(result.primary))
    return result


def classification_of(metric: Metric, check: CheckResult) -> Classification:
    """Kayenta's label of a check whose judge did not give one: Pass, Nodata, or High/Low by the bad
    direction (for `either`, by the canary's value against the primary's or the threshold's max)."""
    if check.verdict is Verdict.PASS:
        return Classification.PASS
    if check.verdict is Verdict.NO_DATA:
        return Classification.NODATA
    direction = bad_direction(metric)
    if direction is Direction.INCREASE:
        return Classification.HIGH
    if direction is Direction.DECREASE:
        return Classification.LOW
    bounds = metric.threshold_range
    if check.value is not None and bounds is not None and bounds.max is not None:
        return Classification.HIGH if check.value > bounds.max else Classification.LOW
    if check.value is not None and check.primary is not None:
        return Classification.HIGH if check.value > check.primary else Classification.LOW
    return Classification.HIGH


def finish(metric: Metric, check: CheckResult) -> CheckResult:
    """Kayenta's metric-level rules on any judge's check: its classification, no data under `critical`
    (fails the release) and `mustHaveData` (fails the metric), and a critical failure that is final."""
    c = metric.compare
    if check.verdict is Verdict.NO_DATA and c is not None and (c.critical or c.must_have_data):
        rules = Rules(critical=c.critical, must_have_data=c.must_have_data)
        verdict, nodata, critical, reason = no_data(rules, check.reason)
        return replace(check, verdict=verdict, classification=nodata.value, critical=critical,
                       final=check.final or critical, reason=reason)
    label = check.classification or classification_of(metric, check).value
    # The compare judge weighs a critical failure against criticalIncrease/Decrease; the others have no
    # effect size, so any failure of a critical metric is critical.
    critical = check.critical or (c is not None and c.critical and check.verdict is Verdict.FAIL
                                  and not check.classification)
    return replace(check, classification=label, critical=critical, final=check.final or critical)


def compare_verdicts(analysis: Analysis, metric: Metric, canary: npt.ArrayLike, primary: npt.ArrayLike, *,
                     step: float | None = None) -> npt.NDArray[np.str_]:
    """`judge_compare` for many windows (rows) at once, for simulations: one verdict value per row. With
    Kayenta's rules (`rules_of`) each row goes through `judge_compare` itself (exact, one at a time)."""
    direction, tolerance = bad_direction(metric), tolerance_of(metric)
    window = sample_window(metric, step)
    c = np.asarray(canary, dtype=np.float64)
    p = np.asarray(primary, dtype=np.float64)
    if rules_of(metric) is not None:
        rows = zip(np.atleast_2d(c), np.atleast_2d(p), strict=True)
        return np.array([judge_compare(analysis, metric, cr, pr, step=step).verdict.value for cr, pr in rows],
                        dtype=np.str_)
    if metric.builtin and metric.name == REQUEST_SUCCESS_RATE:
        return compare_batch(100.0 - c, 100.0 - p, direction=flip(direction), tolerance=tolerance,
                             alpha=analysis.alpha, window=window)
    return compare_batch(c, p, direction=direction, tolerance=tolerance, alpha=analysis.alpha, window=window)


def judge_counts(analysis: Analysis, metric: Metric, elapsed: npt.ArrayLike, canary_errors: npt.ArrayLike,
                 canary_requests: npt.ArrayLike, primary_errors: npt.ArrayLike, primary_requests: npt.ArrayLike
                 ) -> JudgeResult:
    """The sequential test of `request-success-rate` on cumulative counts at each look (`elapsed`: see
    `margins`); shown as a success rate in percent, like the other judges."""
    result = sequential_counts(canary_errors, canary_requests, primary_errors, primary_requests,
                               alpha=sequential_alpha(analysis), margin=margins(analysis, metric, elapsed),
                               name="error rate")
    return replace(result, value=success_percent(result.value), primary=success_percent(result.primary))


def judge_histogram(analysis: Analysis, metric: Metric, elapsed: npt.ArrayLike, canary_buckets: npt.ArrayLike,
                    primary_buckets: npt.ArrayLike, le_ms: list[float]) -> JudgeResult:
    """The sequential test of `request-duration` on cumulative histogram buckets (looks x buckets, +Inf
    last, bounds `le_ms` in milliseconds); shown as the P99 over the run, like the other judges."""
    cb = np.asarray(canary_buckets, dtype=np.float64)
    pb = np.asarray(primary_buckets, dtype=np.float64)
    result = sequential_histogram(cb, pb, le=le_ms[:-1], alpha=sequential_alpha(analysis),
                                  slowdown=window_factors(analysis, metric, elapsed), name="latency (ms)")
    return replace(result, value=p99(cb, le_ms), primary=p99(pb, le_ms))


__all__ = [
    "COMPARE_INTERVALS", "DEFAULT_TOLERANCE", "REQUEST_DURATION", "REQUEST_SUCCESS_RATE", "bad_direction",
    "classification_of", "compare_verdicts", "finish", "judge_compare", "judge_counts", "judge_for", "judge_histogram",
    "judge_threshold", "margins", "rules_of", "sample_window", "sequential_alpha", "tolerance_of", "window_factors",
]
