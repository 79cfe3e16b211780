"""From a release's analysis spec and one metric's numbers to a verdict: no queries, no clock.

`MetricChecks` queries Prometheus and hands the numbers here; the judge benchmark hands simulated
numbers to the same functions, so every figure it prints is what a Canary with that analysis block
does. What the spec decides lives here once: which judge a metric gets, its direction and
tolerance, the sequential judge's share of `alpha` and its margin at each look (the tolerance
times the `analysis.warmup` allowance).

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
from analysis.judges.sequential import sequential_counts, sequential_histogram
from analysis.judges.threshold import threshold
from analysis.shaping import complement_percent, flip, p99, success_percent
from analysis.templates import REQUEST_DURATION, REQUEST_SUCCESS_RATE
from analysis.verdicts import Direction
from rollout.api.spec import Analysis, Judge, Metric

FloatArray = npt.NDArray[np.float64]

# Without a `compare` block, a difference of 10% of the primary's value is tolerated.
DEFAULT_TOLERANCE = 0.1

# The compare judge's window, in analysis intervals back from the check (not before the run started).
# Its samples are rates over the metric's `interval` every interval / 10: one interval of them is worth
# about one independent rate per arm, too few for any test; three are enough to see a clear regression
# while one that starts mid-run still fills most of the window within two checks.
COMPARE_INTERVALS = 3


def judge_for(analysis: Analysis, metric: Metric) -> Judge:
    """The judge of one metric: under `sequential` the built-in metrics get the sequential test (their
    raw counts are known) and custom queries are compared with the primary; otherwise a metric with
    `compare` is compared with the primary and the rest follow `analysis.judge`."""
    if analysis.judge == Judge.SEQUENTIAL:
        return Judge.SEQUENTIAL if metric.builtin else Judge.COMPARE
    return Judge.COMPARE if metric.compare is not None else analysis.judge


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


def margins(analysis: Analysis, metric: Metric, elapsed: npt.ArrayLike) -> FloatArray:
    """The sequential null's ratio bound at each look: 1 + tolerance, times the warm-up allowance
    `1 + allowance * exp(-elapsed / decay)` when `analysis.warmup` is set. `elapsed` is, per look, the
    seconds into the run at which the interval its counts come from began (0 for the first look)."""
    t = np.asarray(elapsed, dtype=np.float64)
    base = 1.0 + (metric.compare.tolerance if metric.compare else 0.0)
    warmup = analysis.warmup
    if warmup is None:
        return np.full(t.shape, base)
    return np.asarray(base * (1.0 + warmup.allowance * np.exp(-np.maximum(t, 0.0) / warmup.decay)),
                      dtype=np.float64)


def judge_threshold(metric: Metric, value: float | None, primary: float | None = None) -> JudgeResult:
    """Flagger's thresholdRange on the canary's value; the primary's is only shown."""
    bounds = metric.threshold_range
    result = threshold(value, min_value=bounds.min if bounds else None, max_value=bounds.max if bounds else None,
                       name=metric.name)
    return replace(result, primary=primary)


def sample_window(metric: Metric, step: float) -> float:
    """How many sampling steps (seconds apart) one compare sample spans: the metric's queries are rates
    over its `interval`, so samples closer than that overlap and the test corrects for it."""
    return metric.interval / step


def judge_compare(analysis: Analysis, metric: Metric, canary: npt.ArrayLike, primary: npt.ArrayLike, *,
                  step: float) -> JudgeResult:
    """The canary's samples over the last `COMPARE_INTERVALS` intervals, `step` seconds apart, against the
    primary's: a Mann-Whitney test corrected for the samples' serial correlation (overlapping rates)."""
    direction, tolerance = bad_direction(metric), tolerance_of(metric)
    window = sample_window(metric, step)
    c = np.asarray(canary, dtype=np.float64)
    p = np.asarray(primary, dtype=np.float64)
    if metric.builtin and metric.name == REQUEST_SUCCESS_RATE:
        # A tolerance relative to ~100% would mean nothing: judge the error rate, 100 - success rate.
        result = compare(100.0 - c, 100.0 - p, direction=flip(direction), tolerance=tolerance, alpha=analysis.alpha,
                         name="error rate (%)", window=window)
        return replace(result, value=complement_percent(result.value), primary=complement_percent(result.primary))
    return compare(c, p, direction=direction, tolerance=tolerance, alpha=analysis.alpha, name=metric.name,
                   window=window)


def compare_verdicts(analysis: Analysis, metric: Metric, canary: npt.ArrayLike, primary: npt.ArrayLike, *,
                     step: float) -> npt.NDArray[np.str_]:
    """`judge_compare` for many windows (rows) at once, for simulations: one verdict value per row."""
    direction, tolerance = bad_direction(metric), tolerance_of(metric)
    window = sample_window(metric, step)
    c = np.asarray(canary, dtype=np.float64)
    p = np.asarray(primary, dtype=np.float64)
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
                                  margin=margins(analysis, metric, elapsed), name="latency (ms)")
    return replace(result, value=p99(cb, le_ms), primary=p99(pb, le_ms))


__all__ = [
    "COMPARE_INTERVALS", "DEFAULT_TOLERANCE", "REQUEST_DURATION", "REQUEST_SUCCESS_RATE", "bad_direction",
    "compare_verdicts", "judge_compare", "judge_counts", "judge_for", "judge_histogram", "judge_threshold", "margins",
    "sample_window", "sequential_alpha", "tolerance_of",
]
