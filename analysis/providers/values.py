"""The one value (or one series) of an answer, with the provider and its address in every message.

`single_value` and `single_series` (in `base`) say what went wrong but not where; a user with
several templates on several backends needs both, so the providers of this family pick through
these wrappers, which prefix the outcome's message with e.g. "Graphite at http://graphite:8080".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from analysis.providers.base import MetricSourceError, Series, TimeLike, single_series, single_value


@contextmanager
def named(where: str, *, unless: str | None = None) -> Iterator[None]:
    """Prefix the message of any MetricSourceError raised inside with `where`, unless the message
    names it already (or names `unless`, e.g. the address a vendor's own message quotes)."""
    try:
        yield
    except MetricSourceError as exc:
        message = str(exc.args[0]) if exc.args else ""
        if (unless if unless is not None else where) not in message:
            exc.args = (f"{where}: {message}", *exc.args[1:])
        raise


def value_of(where: str, series: list[Series], query: str, at: TimeLike | None) -> float:
    """`single_value` with `where` in its message."""
    with named(where):
        return single_value(series, query, at)


def series_of(where: str, series: list[Series], query: str) -> Series:
    """`single_series` with `where` in its message."""
    with named(where):
        return single_series(series, query)


def last_point(series: Series) -> Series:
    """The series' last non-NaN point; its last point (NaN) when there is none; one NaN when empty."""
    finite = np.flatnonzero(~np.isnan(series.values))
    k = int(finite[-1]) if len(finite) else len(series.values) - 1
    if k < 0:
        return Series(series.labels, np.array([np.nan]), np.array([np.nan]))
    return Series(series.labels, series.timestamps[k:k + 1], series.values[k:k + 1])


def first_point(series: Series) -> Series:
    """The series' first point (whatever its value); one NaN when empty."""
    if not len(series.values):
        return Series(series.labels, np.array([np.nan]), np.array([np.nan]))
    return Series(series.labels, series.timestamps[:1], series.values[:1])
