"""New Relic as a metric source through the Insights query API, as Flagger's `newrelic` provider.

Flagger sends NRQL to the Insights query API (`GET /v1/accounts/<id>/query?nrql=...` with the
`X-Query-Key` header, https://docs.newrelic.com/docs/apis/insights-apis/query-insights-event-data-api/),
not to NerdGraph, and so does this module, through `HttpApi`. The secret keys are Flagger's:
`newrelic_account_id` and `newrelic_query_key`.

An instant query appends `SINCE <interval> seconds ago`, as Flagger does (or, at a past time,
`SINCE <ms> UNTIL <ms>`), and reads the single result: its `result` field, which is how New Relic
names an unnamed expression, or the only field of the result (`count`, `average`, ...). A range
query appends `SINCE <ms> UNTIL <ms> TIMESERIES <step> seconds` and reads each bucket, stamped with
its end time. A null result (no events in the window) is no data; a FACET query, several series.
"""

from __future__ import annotations

import math
import time
from datetime import timedelta
from typing import Any

from analysis.providers.base import (
    AmbiguousResultError,
    BadQueryError,
    MetricSourceError,
    NaNError,
    NoDataError,
    Series,
    TimeLike,
    single_series,
    unix,
)
from analysis.providers.http import HttpApi
from analysis.providers.points import Clock, named, seconds, series, window


class NewRelicProvider:
    """Runs NRQL for one New Relic account with an Insights query key."""

    def __init__(self, address: str, *, account_id: str, query_key: str, interval: float = 60.0,
                 insecure_skip_verify: bool = False, timeout: float = 10.0, retries: int = 2,
                 backoff: float = 0.5, clock: Clock = time.time) -> None:
        if not account_id.strip().isdigit():
            raise ValueError("newrelic_account_id must be the account's number")
        self.lookback = interval
        self._path = f"/v1/accounts/{account_id.strip()}/query"
        self._clock = clock
        self._api = HttpApi("New Relic", address, headers={"X-Query-Key": query_key, "Accept": "application/json"},
                            insecure_skip_verify=insecure_skip_verify, timeout=timeout, retries=retries,
                            backoff=backoff)
        self.address = self._api.address


    def query(self, query: str, at: TimeLike | None = None) -> list[Series]:
        with named('New Relic', self.address):
            return self._query(query, at)

    def query_value(self, query: str, at: TimeLike | None = None) -> float:
        with named('New Relic', self.address):
            return self._query_value(query, at)

    def query_range(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> list[Series]:
        with named('New Relic', self.address):
            return self._query_range(query, start, end, step)

    def query_range_series(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> Series:
        with named('New Relic', self.address):
            return self._query_range_series(query, start, end, step)

    def close(self) -> None:
        self._api.close()

    def _query(self, query: str, at: TimeLike | None = None) -> list[Series]:
        if at is None:
            nrql = f"{query.rstrip()} SINCE {int(self.lookback)} seconds ago"
            _, end = window(None, 0, self._clock)
        else:
            start, end = window(at, self.lookback, self._clock)
            nrql = f"{query.rstrip()} SINCE {int(start * 1000)} UNTIL {int(end * 1000)}"
        body = self._run(nrql, query)
        if body.get("facets") is not None:
            return [series({"facet": str(f.get("name"))}, [(end, _result(f.get("results"), query))])
                    for f in body["facets"]]
        results = body.get("results")
        if not results:
            return []
        value = _result(results, query)
        return [] if value is None else [series({}, [(end, value)])]

    def _query_value(self, query: str, at: TimeLike | None = None) -> float:
        found = self._query(query, at)
        if not found:
            raise NoDataError("no data: New Relic returned no result (no events in the window)", query)
        if len(found) > 1:
            raise AmbiguousResultError(f"the query returned {len(found)} facets where one value was expected; "
                                       "remove FACET", query)
        value = float(found[0].values[0])
        if math.isnan(value):
            raise NaNError("New Relic returned NaN", query)
        return value

    def _query_range(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> list[Series]:
        nrql = (f"{query.rstrip()} SINCE {int(unix(start) * 1000)} UNTIL {int(unix(end) * 1000)} "
                f"TIMESERIES {max(1, round(seconds(step)))} seconds")
        body = self._run(nrql, query)
        if body.get("facets") is not None:
            return [_timeseries({"facet": str(f.get("name"))}, f.get("timeSeries"), query) for f in body["facets"]]
        buckets = body.get("timeSeries")
        if not buckets:
            return []
        return [_timeseries({}, buckets, query)]

    def _query_range_series(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> Series:
        found = self._query_range(query, start, end, step)
        if found and all(math.isnan(v) for v in found[0].values):
            raise NoDataError("no data: every bucket of the range is empty (no events)", query)
        return single_series(found, query)

    def is_ready(self) -> bool:
        """The query key and account answer a small NRQL query (Flagger's IsOnline runs one too)."""
        try:
            self._run("SELECT count(*) FROM Metric SINCE 1 minute ago", None)
        except MetricSourceError:
            return False
        return True

    def _run(self, nrql: str, query: str | None) -> dict[str, Any]:
        body = self._api.json("GET", self._path, params={"nrql": nrql}, query=query)
        if not isinstance(body, dict):
            raise BadQueryError(f"New Relic answered an unexpected {type(body).__name__}", query, 200, "", "")
        if body.get("error"):
            detail = str(body["error"])
            raise BadQueryError(f"New Relic rejected the query: {detail}", query, 200, "", detail)
        return body


def _result(results: Any, query: str) -> float | None:
    """The one number of an Insights `results` list: its `result` field, or its only field."""
    if not isinstance(results, list) or not results:
        return None
    if len(results) != 1 or not isinstance(results[0], dict):
        raise AmbiguousResultError(f"the query returned {len(results)} results where one was expected; "
                                   "select one expression", query)
    fields = results[0]
    value = fields["result"] if "result" in fields else next(iter(fields.values())) if len(fields) == 1 else None
    if value is not None and not isinstance(value, int | float):
        raise BadQueryError(f"New Relic's result is not a number: {str(value)[:100]}; select one numeric "
                            "expression (name it AS result)", query, 200, "", str(value)[:100])
    return None if value is None else float(value)


def _timeseries(labels: dict[str, str], buckets: Any, query: str) -> Series:
    return series(labels, ((float(b["endTimeSeconds"]), _result(b.get("results"), query))
                           for b in buckets or []))
