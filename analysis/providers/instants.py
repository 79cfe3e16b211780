"""Range series for sources whose query language has no "evaluate every step" request.

Prometheus' query_range evaluates the expression at each step; a Graphite render target with a
relative `from`, an InfluxQL statement over `now() - 1m` or a Flux query with `range(start: -1m)`
means one number at one instant. Asking such a source for the query at `start`, `start + step`, ...
`end` (each with the source's "now" set to that instant) gives the same kind of series, with the
template's meaning kept. Instants where the source answers no data or NaN become NaN points;
every other failure ends the whole range.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import numpy as np

from analysis.providers.base import Series, TimeLike, unix

# At most this many instants per range: a longer window wants a larger step.
MAX_INSTANTS = 2000


def instants(start: TimeLike, end: TimeLike, step: float | timedelta) -> list[float]:
    """The unix times `start`, `start + step`, ... up to and including `end`."""
    step_s = step.total_seconds() if isinstance(step, timedelta) else float(step)
    if step_s <= 0:
        raise ValueError("step must be positive")
    t0, t1 = unix(start), unix(end)
    if t1 < t0:
        raise ValueError("end must not be before start")
    count = int((t1 - t0) // step_s) + 1
    if count > MAX_INSTANTS:
        raise ValueError(f"{count} steps from start to end; at most {MAX_INSTANTS}: use a larger step")
    return [t0 + k * step_s for k in range(count)]


def range_of_instants(
    instant: Callable[[float], list[Series]], start: TimeLike, end: TimeLike, step: float | timedelta
) -> list[Series]:
    """One series per label set, from `instant(t)` (an instant query at t) at every step.

    A label set missing at some instants has NaN there; a series whose every point is NaN is kept,
    so that the caller can tell NaN from no data.
    """
    times = instants(start, end, step)
    by_labels: dict[tuple[tuple[str, str], ...], tuple[dict[str, str], dict[int, float]]] = {}
    for k, t in enumerate(times):
        for series in instant(t):
            key = tuple(sorted(series.labels.items()))
            labels, points = by_labels.setdefault(key, (dict(series.labels), {}))
            points[k] = float(series.values[-1]) if len(series.values) else float("nan")
    stamps = np.array(times, dtype=np.float64)
    found = []
    for labels, points in by_labels.values():
        values = np.array([points.get(k, np.nan) for k in range(len(times))], dtype=np.float64)
        found.append(Series(labels, stamps, values))
    return found
