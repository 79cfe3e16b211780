"""Vendor answers turned into `Series`, and the look-back windows Flagger's vendor providers use.

Every vendor API returns points in its own JSON shape, with `null` where a bucket has no value;
these helpers keep that conversion (null becomes NaN, timestamps become unix seconds) and the
window arithmetic in one place, so each provider module only says where its points are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from datetime import timedelta

import numpy as np

from analysis.providers import values
from analysis.providers.base import NoDataError, Series, TimeLike, single_value, unix

Clock = Callable[[], float]


def named(provider: str, address: str) -> AbstractContextManager[None]:
    """Begin the message of a MetricSourceError raised inside with "<provider> at <address>" unless it
    names the address already, so that every outcome says which backend it comes from."""
    return values.named(f"{provider} at {address}", unless=address)


def series(labels: Mapping[str, str], points: Iterable[tuple[float, float | None]]) -> Series:
    """A `Series` of (unix seconds, value or None) pairs, sorted by time; None becomes NaN."""
    pairs = sorted((float(t), np.nan if v is None else float(v)) for t, v in points)
    return Series(dict(labels), np.array([t for t, _ in pairs], dtype=np.float64),
                  np.array([v for _, v in pairs], dtype=np.float64))


def window(at: TimeLike | None, lookback: float, clock: Clock = time.time) -> tuple[float, float]:
    """(start, end) in unix seconds of the `lookback` seconds that end at `at` (now when None)."""
    end = clock() if at is None else unix(at)
    return end - lookback, end


def seconds(step: float | timedelta) -> float:
    """A range query's step in seconds; it must be positive."""
    value = step.total_seconds() if isinstance(step, timedelta) else float(step)
    if value <= 0:
        raise ValueError(f"the step must be positive, got {step!r}")
    return value


def first_value(found: list[Series], query: str, at: TimeLike | None) -> float:
    """The first series' one value, as Flagger's vendor providers take it when several come back.

    NoDataError without series, NaNError for NaN (a bucket without a value).
    """
    if not found:
        raise NoDataError(f"no data: the query returned no series{_at(at)}", query)
    if not len(found[0].values):
        raise NoDataError("no data: the query returned a series without points", query)
    return single_value(found[:1], query, at)


def _at(at: TimeLike | None) -> str:
    return "" if at is None else f" at {unix(at):.0f}"

