"""Datadog as a metric source, the way Flagger's `datadog` provider queries it.

Datadog's Python client is a large generated SDK; the one call Flagger makes is small, so this
module sends it through `HttpApi`: `GET /api/v1/query?from&to&query` with the `DD-API-KEY` and
`DD-APPLICATION-KEY` headers (https://docs.datadoghq.com/api/latest/metrics/#query-timeseries-points).

As in Flagger, an instant query looks back ten times the metric's interval and takes the FIRST
(oldest) point of the FIRST series: the newest bucket is usually incomplete. A range query returns
every point of every series in the window, at the rollup Datadog picks for it (set one in the query
with `.rollup(avg, 60)` to fix the step). A 429 waits for Datadog's documented `X-RateLimit-Reset`.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from analysis.providers.base import BadQueryError, MetricSourceError, Series, TimeLike, single_series, unix
from analysis.providers.http import HttpApi
from analysis.providers.points import Clock, first_value, named, series, window

# Flagger's datadogFromDeltaMultiplierOnMetricInterval.
LOOKBACK_INTERVALS = 10


class DatadogProvider:
    """Queries Datadog's v1 metrics query API with an API key and an application key."""

    def __init__(self, address: str, *, api_key: str, application_key: str, interval: float = 60.0,
                 insecure_skip_verify: bool = False, timeout: float = 10.0, retries: int = 2,
                 backoff: float = 0.5, clock: Clock = time.time) -> None:
        self.lookback = LOOKBACK_INTERVALS * interval
        self._clock = clock
        self._api = HttpApi("Datadog", address, headers={"DD-API-KEY": api_key,
                                                         "DD-APPLICATION-KEY": application_key},
                            insecure_skip_verify=insecure_skip_verify, timeout=timeout, retries=retries,
                            backoff=backoff, retry_after=("X-RateLimit-Reset", "Retry-After"))
        self.address = self._api.address


    def query(self, query: str, at: TimeLike | None = None) -> list[Series]:
        with named('Datadog', self.address):
            return self._query(query, at)

    def query_value(self, query: str, at: TimeLike | None = None) -> float:
        with named('Datadog', self.address):
            return self._query_value(query, at)

    def query_range(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> list[Series]:
        with named('Datadog', self.address):
            return self._query_range(query, start, end, step)

    def query_range_series(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> Series:
        with named('Datadog', self.address):
            return self._query_range_series(query, start, end, step)

    def close(self) -> None:
        self._api.close()

    def _query(self, query: str, at: TimeLike | None = None) -> list[Series]:
        """Each series with its first (oldest) point of the window ending at `at` (Flagger's pick)."""
        start, end = window(at, self.lookback, self._clock)
        return [series(s.labels, zip(s.timestamps[:1], s.values[:1], strict=True))
                for s in self._series(query, start, end)]

    def _query_value(self, query: str, at: TimeLike | None = None) -> float:
        return first_value(self._query(query, at), query, at)

    def _query_range(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> list[Series]:
        return self._series(query, unix(start), unix(end))

    def _query_range_series(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> Series:
        return single_series(self._query_range(query, start, end, step), query)

    def is_ready(self) -> bool:
        """Datadog's key validation endpoint answers `{"valid": true}`, as Flagger's IsOnline checks."""
        try:
            body = self._api.json("GET", "/api/v1/validate")
        except MetricSourceError:
            return False
        return isinstance(body, dict) and body.get("valid") is True

    def _series(self, query: str, start: float, end: float) -> list[Series]:
        body: Any = self._api.json("GET", "/api/v1/query", query=query,
                                   params={"from": int(start), "to": int(end), "query": query})
        if not isinstance(body, dict):
            raise BadQueryError(f"Datadog answered an unexpected {type(body).__name__}", query, 200, "", "")
        if body.get("status") == "error":
            detail = str(body.get("error") or "no details")
            raise BadQueryError(f"Datadog rejected the query: {detail}", query, 200, "error", detail)
        found = []
        for entry in body.get("series") or []:
            labels = {key: str(entry[key]) for key in ("metric", "scope", "expression") if entry.get(key)}
            # pointlist: [[milliseconds, value or null], ...]
            found.append(series(labels, ((p[0] / 1000.0, p[1]) for p in entry.get("pointlist") or [])))
        return found
