"""Splunk Observability Cloud (SignalFx) as a metric source, as Flagger's `splunk` provider.

Flagger runs the template's SignalFlow program with the SignalFlow client over a WebSocket to
`wss://stream.<realm>.signalfx.com/v2/signalflow`, authenticated by the Secret's `sf_token_key`. The
same API also serves each computation as one HTTP request answered with Server-Sent Events,
`POST https://stream.<realm>.signalfx.com/v2/signalflow/execute?start&stop&immediate=true` with the
program as the body and the `X-SF-Token` header
(https://dev.splunk.com/observability/reference/api/signalflow/latest): this module uses that form,
so the request goes through `HttpApi` (timeouts, retries, shared outcomes) and needs no WebSocket
client; `sseclient-py` parses the events. `provider.address` is required and, as in Flagger, the
API address `https://api.<realm>.signalfx.com` is turned into the stream address.

As in Flagger, an instant query runs over ten times the metric's interval, drops null values, refuses
several time series, and takes the LAST value. A range query asks for the step as the resolution and
returns one series per time series id, named by its metadata.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import sseclient

from analysis.providers.base import (
    AmbiguousResultError,
    BadQueryError,
    MetricSourceError,
    NoDataError,
    Series,
    TimeLike,
    UnreachableError,
    single_series,
    unix,
)
from analysis.providers.http import HttpApi
from analysis.providers.points import Clock, named, seconds, series, window

# Flagger's signalFxFromDeltaMultiplierOnMetricInterval.
LOOKBACK_INTERVALS = 10


def stream_address(address: str) -> str:
    """The SignalFlow stream address of a realm's API (or stream, or ws) address, as Flagger derives it."""
    parts = urlsplit(address.replace("wss://", "https://", 1).replace("ws://", "http://", 1))
    host = parts.netloc
    if host.startswith("api."):
        host = "stream." + host[len("api."):]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def api_address(address: str) -> str:
    """The REST API address of a realm's API or stream address (for the readiness check)."""
    parts = urlsplit(stream_address(address))
    host = "api." + parts.netloc[len("stream."):] if parts.netloc.startswith("stream.") else parts.netloc
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class SplunkProvider:
    """Runs SignalFlow programs on one Splunk Observability Cloud realm with an access token."""

    def __init__(self, address: str, *, token: str, interval: float = 60.0, insecure_skip_verify: bool = False,
                 timeout: float = 10.0, retries: int = 2, backoff: float = 0.5, clock: Clock = time.time) -> None:
        self.lookback = LOOKBACK_INTERVALS * interval
        self._clock = clock
        options: dict[str, Any] = {"headers": {"X-SF-Token": token}, "insecure_skip_verify": insecure_skip_verify,
                                   "timeout": timeout, "retries": retries, "backoff": backoff}
        self._stream = HttpApi("Splunk Observability", stream_address(address), **options)
        self._rest = HttpApi("Splunk Observability", api_address(address), **options)
        self.address = self._stream.address


    def query(self, query: str, at: TimeLike | None = None) -> list[Series]:
        with named('Splunk Observability', self.address):
            return self._query(query, at)

    def query_value(self, query: str, at: TimeLike | None = None) -> float:
        with named('Splunk Observability', self.address):
            return self._query_value(query, at)

    def query_range(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> list[Series]:
        with named('Splunk Observability', self.address):
            return self._query_range(query, start, end, step)

    def query_range_series(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> Series:
        with named('Splunk Observability', self.address):
            return self._query_range_series(query, start, end, step)

    def close(self) -> None:
        self._stream.close()
        self._rest.close()

    def _query(self, query: str, at: TimeLike | None = None) -> list[Series]:
        """Each time series with its last non-null value in the window ending at `at`."""
        start, end = window(at, self.lookback, self._clock)
        return [series(s.labels, [(s.timestamps[-1], s.values[-1])])
                for s in self._run(query, start, end, None) if len(s.values)]

    def _query_value(self, query: str, at: TimeLike | None = None) -> float:
        found = self._query(query, at)
        if not found:
            raise NoDataError("no data: the SignalFlow program published no values in the window", query)
        if len(found) > 1:
            raise AmbiguousResultError(f"the program published {len(found)} time series where one value was "
                                       "expected; aggregate it, e.g. with .sum()", query)
        return float(found[0].values[0])

    def _query_range(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> list[Series]:
        return self._run(query, unix(start), unix(end), seconds(step))

    def _query_range_series(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> Series:
        return single_series(self._query_range(query, start, end, step), query)

    def is_ready(self) -> bool:
        """The token may read metric metadata (Flagger's IsOnline asks `/v2/metric?limit=1`)."""
        try:
            self._rest.json("GET", "/v2/metric", params={"limit": 1})
        except MetricSourceError:
            return False
        return True

    def _run(self, program: str, start: float, end: float, step: float | None) -> list[Series]:
        params: dict[str, Any] = {"start": int(start * 1000), "stop": int(end * 1000), "immediate": "true"}
        if step is not None:
            params["resolution"] = int(step * 1000)
        response = self._stream.request("POST", "/v2/signalflow/execute", params=params, data=program.encode(),
                                        headers={"Content-Type": "text/plain"}, query=program)
        points: dict[str, list[tuple[float, float | None]]] = {}
        labels: dict[str, dict[str, str]] = {}
        for kind, message in _events(response.content, program):
            if kind == "metadata":
                labels[str(message.get("tsId"))] = {str(k): str(v) for k, v in
                                                     (message.get("properties") or {}).items()
                                                     if isinstance(v, str | int | float)}
            elif kind == "data":
                stamp = float(message.get("logicalTimestampMs", 0)) / 1000.0
                for datum in message.get("data") or []:
                    if datum.get("value") is not None:  # Flagger drops null payloads
                        points.setdefault(str(datum.get("tsId")), []).append((stamp, float(datum["value"])))
            elif kind == "error":
                detail = json.dumps(message.get("errors") or message)[:500]
                raise BadQueryError(f"Splunk Observability rejected the program: {detail}", program, 200,
                                    "error", detail)
            elif kind == "control-message" and message.get("event") == "CHANNEL_ABORT":
                detail = json.dumps(message.get("abortInfo") or {})[:300]
                raise UnreachableError(f"Splunk Observability at {self.address} aborted the computation: {detail}",
                                       program)
        return [series(labels.get(ts_id, {"tsId": ts_id}), found) for ts_id, found in sorted(points.items())]


def _events(content: bytes, program: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for event in sseclient.SSEClient(iter([content])).events():
        try:
            message = json.loads(event.data) if event.data else {}
        except ValueError as exc:
            raise UnreachableError(f"Splunk Observability sent an event that is not JSON: {event.data[:200]!r}",
                                   program) from exc
        if isinstance(message, dict):
            yield event.event, message
