"""Dynatrace as a metric source through its metrics API v2, as Flagger's `dynatrace` provider.

`GET <environment>/api/v2/metrics/query?metricSelector=...&resolution=...&from=<ms>&to=<ms>` with
`Authorization: Api-Token <dynatrace_token>`
(https://docs.dynatrace.com/docs/dynatrace-api/environment-api/metric-v2/get-data-points), sent
through `HttpApi`. `provider.address` is the environment's URL (required, as in Flagger), e.g.
`https://abc12345.live.dynatrace.com`.

An instant query asks for one point (`resolution=Inf`) over ten times the metric's interval and
takes, as Flagger does, the first value of the LAST data entry of the first metric. A range query
asks for the step rounded to whole minutes (Dynatrace's finest resolution is 1m); each data entry
(one per dimension tuple) is a series. A `null` value is a slot without data points: no data.
"""

from __future__ import annotations

import math
import time
from datetime import timedelta
from typing import Any

from analysis.providers.base import (
    BadQueryError,
    MetricSourceError,
    NoDataError,
    Series,
    TimeLike,
    single_series,
    single_value,
    unix,
)
from analysis.providers.http import HttpApi
from analysis.providers.points import Clock, named, seconds, series, window

# Flagger's dynatraceDeltaMultiplierOnMetricInterval.
LOOKBACK_INTERVALS = 10


class DynatraceProvider:
    """Queries one Dynatrace environment's metrics API v2 with an API token (scope metrics.read)."""

    def __init__(self, address: str, *, token: str, interval: float = 60.0, insecure_skip_verify: bool = False,
                 timeout: float = 10.0, retries: int = 2, backoff: float = 0.5, clock: Clock = time.time) -> None:
        self.lookback = LOOKBACK_INTERVALS * interval
        self._clock = clock
        self._api = HttpApi("Dynatrace", address, headers={"Authorization": f"Api-Token {token}"},
                            insecure_skip_verify=insecure_skip_verify, timeout=timeout, retries=retries,
                            backoff=backoff)
        self.address = self._api.address


    def query(self, query: str, at: TimeLike | None = None) -> list[Series]:
        with named('Dynatrace', self.address):
            return self._query(query, at)

    def query_value(self, query: str, at: TimeLike | None = None) -> float:
        with named('Dynatrace', self.address):
            return self._query_value(query, at)

    def query_range(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> list[Series]:
        with named('Dynatrace', self.address):
            return self._query_range(query, start, end, step)

    def query_range_series(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> Series:
        with named('Dynatrace', self.address):
            return self._query_range_series(query, start, end, step)

    def close(self) -> None:
        self._api.close()

    def _query(self, query: str, at: TimeLike | None = None) -> list[Series]:
        """The first metric's data entries, each with its one value (Flagger reads the last entry)."""
        start, end = window(at, self.lookback, self._clock)
        data = self._data(query, start, end, "Inf")
        return [series(labels, [(end, values[0] if values else None)]) for labels, _, values in data]

    def _query_value(self, query: str, at: TimeLike | None = None) -> float:
        found = self._query(query, at)
        if not found:
            raise NoDataError("no data: Dynatrace returned no data for the metric selector", query)
        last = found[-1]
        if math.isnan(last.values[0]):
            raise NoDataError("no data: Dynatrace returned null (no data points in the window)", query)
        return single_value([last], query, at)

    def _query_range(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> list[Series]:
        minutes = max(1, round(seconds(step) / 60))
        return [series(labels, zip(stamps, values, strict=True))
                for labels, stamps, values in self._data(query, unix(start), unix(end), f"{minutes}m")]

    def _query_range_series(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> Series:
        found = self._query_range(query, start, end, step)
        if len(found) == 1 and all(math.isnan(v) for v in found[0].values):
            raise NoDataError("no data: every slot of the range is null (no data points)", query)
        return single_series(found, query)

    def is_ready(self) -> bool:
        """The token may list metrics (Flagger's IsOnline asks `/api/v2/metrics?pageSize=1`)."""
        try:
            self._api.json("GET", "/api/v2/metrics", params={"pageSize": 1})
        except MetricSourceError:
            return False
        return True

    def _data(self, query: str, start: float, end: float,
              resolution: str) -> list[tuple[dict[str, str], list[float], list[float | None]]]:
        body: Any = self._api.json("GET", "/api/v2/metrics/query", query=query, params={
            "metricSelector": query, "resolution": resolution,
            "from": int(start * 1000), "to": int(end * 1000)})
        if not isinstance(body, dict):
            raise BadQueryError(f"Dynatrace answered an unexpected {type(body).__name__}", query, 200, "", "")
        results = body.get("result") or []
        if not results:
            return []
        # Like Flagger, the first metric of a selector that names several.
        return [({str(k): str(v) for k, v in (entry.get("dimensionMap") or {}).items()},
                 [t / 1000.0 for t in entry.get("timestamps") or []], list(entry.get("values") or []))
                for entry in results[0].get("data") or []]
