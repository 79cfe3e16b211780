"""What every metric source offers, and the outcomes every one of them can end in.

The engine and `rollout analyze` talk to a `MetricSource`, never to a particular backend, so a
further provider is one module that implements this Protocol and registers itself (see
`analysis.providers.registry`). Everything that is not a usable number is one exception class
per outcome, shared by all providers, each with a message a user can act on:

- `NoDataError`: the query ran but returned no series (nothing matched, or no traffic yet).
- `NaNError`: the query returned only NaN (typically 0/0: a ratio over a window with no requests).
- `UnreachableError`: the source could not be reached or kept failing (temporary).
- `BadQueryError`: the source rejected the query and said why (permanent).
- `AuthError`: the source (or a proxy in front) refused the credentials.
- `AmbiguousResultError`: a single value was asked for, but several series came back.

All derive from `MetricSourceError`, whose `temporary` attribute tells the caller whether to retry
later (engine: TemporaryError) or to report a permanent problem (status condition).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
TimeLike = datetime | float


class MetricSourceError(Exception):
    """Base of every outcome that is not a usable number."""

    temporary = False

    def __init__(self, message: str, query: str | None = None) -> None:
        super().__init__(message)
        self.query = query


class NoDataError(MetricSourceError):
    """The query matched no series: no data is its own outcome, never a pass."""


class NaNError(MetricSourceError):
    """The query returned NaN only, e.g. a success rate over a window without requests."""


class UnreachableError(MetricSourceError):
    """The source did not answer, or answered 5xx, on every attempt."""

    temporary = True


class BadQueryError(MetricSourceError):
    """The source rejected the query; `detail` is the source's own error text."""

    def __init__(self, message: str, query: str | None, status: int, error_type: str, detail: str) -> None:
        super().__init__(message, query)
        self.status = status
        self.error_type = error_type
        self.detail = detail


class AuthError(MetricSourceError):
    """The source refused the request's credentials (401) or permission (403)."""

    def __init__(self, message: str, query: str | None, status: int) -> None:
        super().__init__(message, query)
        self.status = status


class AmbiguousResultError(MetricSourceError):
    """One value was expected but the query returned several series (aggregate it with sum)."""


@dataclass(frozen=True)
class Series:
    """One time series: its labels and parallel arrays of unix timestamps (s) and values."""

    labels: Mapping[str, str]
    timestamps: FloatArray
    values: FloatArray

    def finite(self) -> Series:
        """The same series without NaN and infinite points."""
        keep = np.isfinite(self.values)
        return Series(self.labels, self.timestamps[keep], self.values[keep])


@dataclass(frozen=True)
class ProviderConfig:
    """What a MetricTemplate's `provider` says, with its Secret's keys already read and decoded.

    `address` is None when the template gives none (the provider's default applies). `secret` holds
    the decoded keys of `provider.secretRef` (empty without one). `options` holds the fields a
    provider declares beyond Flagger's common ones (`ProviderKind.fields`), as written.
    `template` ("namespace/name") is for messages only. `interval` (seconds) is the metric's
    `interval`, Flagger's `metricInterval`: the vendor providers that, like Flagger, look back over a
    multiple of it in an instant query (Datadog, Dynatrace and Splunk 10x, New Relic 1x) read it.
    """

    type: str
    address: str | None = None
    secret: Mapping[str, str] = field(default_factory=dict, repr=False)
    insecure_skip_verify: bool = False
    region: str | None = None
    options: Mapping[str, object] = field(default_factory=dict)
    template: str = ""
    timeout: float = 10.0
    retries: int = 2
    interval: float = 60.0


class MetricSource(Protocol):
    """Instant and range queries against one metrics backend; failures raise `MetricSourceError`s."""

    def query(self, query: str, at: TimeLike | None = None) -> list[Series]:
        """Instant query: every returned series, each with one point. Empty list when none."""
        ...

    def query_value(self, query: str, at: TimeLike | None = None) -> float:
        """Instant query that must yield exactly one number (see `single_value`)."""
        ...

    def query_range(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> list[Series]:
        """Range query: every returned series with its points from `start` to `end` every `step`."""
        ...

    def query_range_series(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> Series:
        """Range query that must yield one series (see `single_series`)."""
        ...

    def is_ready(self) -> bool:
        """True when the source answers its readiness check (no retries)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def single_value(series: list[Series], query: str, at: TimeLike | None) -> float:
    """The one number of an instant query's answer (infinite allowed, as in Flagger).

    Raises NoDataError for no series, NaNError for NaN, AmbiguousResultError for several series.
    """
    if not series:
        raise NoDataError(f"no data: the query returned no series{_at(at)}", query)
    if len(series) > 1:
        raise AmbiguousResultError(
            f"the query returned {len(series)} series where one value was expected; "
            "aggregate it, e.g. with sum(...)", query,
        )
    value = float(series[0].values[0])
    if math.isnan(value):
        raise NaNError(f"the query returned NaN{_at(at)} (usually 0/0: no requests in the window)", query)
    return value


def single_series(series: list[Series], query: str) -> Series:
    """The one series of a range query's answer; NaN points are kept (see `Series.finite`).

    Raises NoDataError for no series, NaNError when every point is NaN, AmbiguousResultError for
    several series.
    """
    if not series:
        raise NoDataError("no data: the query returned no series in the range", query)
    if len(series) > 1:
        raise AmbiguousResultError(
            f"the query returned {len(series)} series where one was expected; aggregate it, e.g. with sum(...)",
            query,
        )
    if np.isnan(series[0].values).all():
        raise NaNError("every point of the range is NaN (usually 0/0: no requests)", query)
    return series[0]


def unix(at: TimeLike) -> float:
    """Unix seconds of a timezone-aware datetime or a number of seconds."""
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError("datetimes must be timezone-aware")
        return at.timestamp()
    return float(at)


def as_datetime(at: TimeLike) -> datetime:
    """A UTC datetime of a datetime or unix seconds."""
    return datetime.fromtimestamp(unix(at), tz=UTC)


def _at(at: TimeLike | None) -> str:
    return "" if at is None else f" at {as_datetime(at).isoformat()}"
