"""Shaping raw series into the arrays the judges take, and judge results back into display units.

Range queries answer per-interval increments at the source's own timestamps; the sequential
judges want cumulative counts at each look of the analysis (one per interval since the run
started), and a histogram as one column per bucket. These are pure functions over numpy arrays,
kept apart from the engine that chooses queries and judges.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np

from analysis.providers.base import FloatArray, Series
from analysis.verdicts import Direction


def look_times(since: datetime, at: datetime, interval: timedelta) -> FloatArray:
    """Unix times of the looks so far: one per analysis interval since the run started at `since`."""
    first = since + interval
    if first > at:
        return np.array([], dtype=np.float64)
    n = int((at - first) / interval) + 1
    return np.array([(first + k * interval).timestamp() for k in range(n)], dtype=np.float64)


def cumsum_on_grid(series: Series, looks: FloatArray) -> FloatArray:
    """Place a range query's per-interval increments on the look grid and accumulate them.

    A look without a sample (none within a second of it) is NaN."""
    values = np.full(looks.shape, np.nan)
    for t, v in zip(series.timestamps, series.values, strict=True):
        k = int(np.argmin(np.abs(looks - t)))
        if abs(looks[k] - t) < 1.0:
            values[k] = v
    cumulative = np.nancumsum(values)
    cumulative[np.isnan(values)] = np.nan
    return np.asarray(cumulative, dtype=np.float64)


def stack_buckets(series: Sequence[Series], looks: FloatArray) -> tuple[FloatArray, list[float]]:
    """One histogram series per `le` label as a (looks x buckets) matrix of cumulative counts,
    buckets in ascending order of their bound, and the bounds."""
    by_le = sorted(series, key=lambda s: float(s.labels.get("le", "inf")))
    le = [float(s.labels.get("le", "inf")) for s in by_le]
    matrix = np.stack([cumsum_on_grid(s, looks) for s in by_le], axis=1)
    return matrix, le


def p99(buckets: FloatArray, le_ms: list[float]) -> float | None:
    """P99 of the run's latency, interpolated within its bucket as Prometheus' histogram_quantile does."""
    rows = buckets[np.all(np.isfinite(buckets), axis=1)]
    if rows.size == 0 or rows[-1][-1] <= 0:
        return None
    counts = rows[-1]
    rank = 0.99 * counts[-1]
    k = int(np.searchsorted(counts, rank))
    if k >= len(le_ms) - 1:
        return le_ms[-2] if len(le_ms) > 1 else None
    lower = le_ms[k - 1] if k > 0 else 0.0
    below = counts[k - 1] if k > 0 else 0.0
    inside = counts[k] - below
    return float(lower + (le_ms[k] - lower) * ((rank - below) / inside if inside > 0 else 1.0))


def success_percent(error_rate: float | None) -> float | None:
    """An error rate (0..1) as a success rate in percent."""
    return None if error_rate is None else 100.0 * (1.0 - error_rate)


def complement_percent(percent: float | None) -> float | None:
    """100 minus a percentage: an error rate in percent as a success rate, and back."""
    return None if percent is None else 100.0 - percent


def flip(direction: Direction) -> Direction:
    """The bad direction of the complement (100 - x) of a metric."""
    return {Direction.INCREASE: Direction.DECREASE, Direction.DECREASE: Direction.INCREASE}.get(direction, direction)
