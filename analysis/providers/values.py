"""The one value (or one series) of an answer, with the provider and its address in every message.

`single_value` and `single_series` (in `base`) say what went wrong but not where; a user with
several templates on several backends needs both, so the providers of this family pick through
these wrappers, which prefix the outcome's message with e.g. "Graphite at http://graphite:8080".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from analysis.providers.base import MetricSourceError, Series, TimeLike, single_series, single_value

T = TypeVar("T")


@contextmanager
def named(where: str) -> Iterator[None]:
    """Prefix the message of any MetricSourceError raised inside with `where` (once)."""
    try:
        yield
    except MetricSourceError as exc:
        message = str(exc.args[0]) if exc.args else ""
        if not message.startswith(where):
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


def call_named(where: str, call: Callable[[], T]) -> T:
    """`call()`, with `where` in the message of the outcome it may raise."""
    with named(where):
        return call()
