"""Google Cloud Monitoring (Stackdriver) as a metric source, as Flagger's `stackdriver` provider.

Flagger runs MQL through the Monitoring API's `QueryTimeSeries`; this module calls the same method
over REST, `POST <address>/v3/projects/<project>/timeSeries:query` with `{"query": MQL}`
(https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.timeSeries/query), through
`HttpApi`, instead of pulling in the gRPC client library. The access token comes from `google-auth`
(small, and Google's own): with the Secret's `serviceAccountKey` (a service-account JSON key) it
signs a JWT and exchanges it at the key's `token_uri`; without one it uses the application default
credentials (Workload Identity on GKE, as Flagger recommends). The Secret's `project` is required.

As in Flagger, an instant query is the MQL as written and its value the first point (the newest)
of the first series. At a past time, and for range series, `| within d'<start>', d'<end>'` is
appended, so such a query must not set its own `within`; the step is the query's own `every`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import google.auth
import google.auth.exceptions
import requests
from google.auth.credentials import Credentials
from google.auth.transport.requests import Request
from google.oauth2 import service_account

from analysis.providers.base import (
    AuthError,
    BadQueryError,
    MetricSourceError,
    Series,
    TimeLike,
    UnreachableError,
    single_series,
    unix,
)
from analysis.providers.http import HttpApi
from analysis.providers.points import Clock, first_value, named, series, window

SCOPE = "https://www.googleapis.com/auth/monitoring.read"
# An instant query at a past time looks back this many metric intervals (as Flagger's Datadog does).
LOOKBACK_INTERVALS = 10


class StackdriverProvider:
    """Runs MQL for one Google Cloud project with a service account's (or the default) credentials."""

    def __init__(self, address: str, *, project: str, service_account_key: str | None = None,
                 interval: float = 60.0, insecure_skip_verify: bool = False, timeout: float = 10.0,
                 retries: int = 2, backoff: float = 0.5, clock: Clock = time.time) -> None:
        if not project.strip():
            raise ValueError("the Secret's project must name the Google Cloud project")
        self.project = project.strip()
        self.lookback = LOOKBACK_INTERVALS * interval
        self._clock = clock
        self._key = _key(service_account_key) if service_account_key else None
        self._credentials: Credentials | None = None
        self._token_session = requests.Session()
        self._token_session.verify = not insecure_skip_verify
        self._timeout = timeout
        self._api = HttpApi("Google Cloud Monitoring", address, insecure_skip_verify=insecure_skip_verify,
                            timeout=timeout, retries=retries, backoff=backoff)
        self.address = self._api.address

    def __repr__(self) -> str:
        return f"StackdriverProvider(address={self.address!r}, project={self.project!r})"


    def query(self, query: str, at: TimeLike | None = None) -> list[Series]:
        with named('Google Cloud Monitoring', self.address):
            return self._query(query, at)

    def query_value(self, query: str, at: TimeLike | None = None) -> float:
        with named('Google Cloud Monitoring', self.address):
            return self._query_value(query, at)

    def query_range(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> list[Series]:
        with named('Google Cloud Monitoring', self.address):
            return self._query_range(query, start, end, step)

    def query_range_series(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> Series:
        with named('Google Cloud Monitoring', self.address):
            return self._query_range_series(query, start, end, step)

    def close(self) -> None:
        self._api.close()
        self._token_session.close()

    def _query(self, query: str, at: TimeLike | None = None) -> list[Series]:
        """Each series with its newest point (Flagger reads `pointData[0]`)."""
        if at is not None:
            start, end = window(at, self.lookback, self._clock)
            query = _within(query, start, end)
        return [series(s.labels, [(s.timestamps[-1], s.values[-1])]) for s in self._series(query) if len(s.values)]

    def _query_value(self, query: str, at: TimeLike | None = None) -> float:
        return first_value(self._query(query, at), query, at)

    def _query_range(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> list[Series]:
        return self._series(_within(query, unix(start), unix(end)))

    def _query_range_series(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> Series:
        return single_series(self._query_range(query, start, end, step), query)

    def is_ready(self) -> bool:
        """Like Flagger's IsOnline: an empty query is refused as INVALID_ARGUMENT, not unauthorised."""
        try:
            self._post("")
        except BadQueryError:
            return True
        except MetricSourceError:
            return False
        return True

    def _series(self, query: str) -> list[Series]:
        body = self._post(query)
        keys = [str(d.get("key", i)) for i, d in
                enumerate((body.get("timeSeriesDescriptor") or {}).get("labelDescriptors") or [])]
        found = []
        for entry in body.get("timeSeriesData") or []:
            values = entry.get("labelValues") or []
            labels = {keys[i] if i < len(keys) else str(i): _label(v) for i, v in enumerate(values)}
            found.append(series(labels, ((_time(p), _number(p, query)) for p in entry.get("pointData") or [])))
        return found

    def _post(self, query: str) -> dict[str, Any]:
        try:
            body = self._api.json("POST", f"/v3/projects/{self.project}/timeSeries:query",
                                  json_body={"query": query},
                                  headers={"Authorization": f"Bearer {self._token(query)}"}, query=query)
        except AuthError:
            self._credentials = None  # a revoked token: the next query asks for a new one
            raise
        if not isinstance(body, dict):
            raise BadQueryError(f"Google Cloud Monitoring answered an unexpected {type(body).__name__}",
                                query, 200, "", "")
        return body

    def _token(self, query: str) -> str:
        """A valid access token, refreshed (one token request) when missing or about to expire."""
        try:
            if self._credentials is None:
                if self._key is not None:
                    self._credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                        self._key, scopes=[SCOPE])
                else:
                    self._credentials, _ = google.auth.default(scopes=[SCOPE])
            if not self._credentials.valid:
                self._credentials.refresh(_TimedRequest(self._token_session, self._timeout))
        except google.auth.exceptions.TransportError as exc:
            raise UnreachableError(f"Google's token endpoint is unreachable: {_short(exc)}", query) from exc
        except google.auth.exceptions.DefaultCredentialsError as exc:
            raise AuthError("no Google credentials: put a service account key in the Secret's "
                            "serviceAccountKey, or run with Workload Identity", query, 401) from exc
        except (google.auth.exceptions.GoogleAuthError, ValueError) as exc:
            raise AuthError(f"Google refused the service account's credentials: {_short(exc)}", query, 401) from exc
        token = self._credentials.token
        if not token:
            raise AuthError("Google's token endpoint gave no access token", query, 401)
        return str(token)


class _TimedRequest(Request):
    """google-auth's transport with the provider's timeout instead of its default two minutes."""

    def __init__(self, session: requests.Session, timeout: float) -> None:
        super().__init__(session)
        self._timeout = timeout

    def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None,
                 timeout: float | None = None, **kwargs: Any) -> Any:
        return super().__call__(url, method=method, body=body, headers=headers,  # type: ignore[no-untyped-call]
                                timeout=self._timeout, **kwargs)


def _key(text: str) -> dict[str, Any]:
    try:
        key = json.loads(text)
    except ValueError as exc:
        raise ValueError("serviceAccountKey is not a JSON service account key") from exc
    if not isinstance(key, dict) or key.get("type") != "service_account":
        raise ValueError('serviceAccountKey must be a service account key ("type": "service_account")')
    return key


def _within(query: str, start: float, end: float) -> str:
    return f"{query.rstrip()}\n| within d'{_date(start)}', d'{_date(end)}'"


def _date(at: float) -> str:
    """An MQL date literal's text, UTC: `2025/07/23-06:55:20`."""
    return datetime.fromtimestamp(at, tz=UTC).strftime("%Y/%m/%d-%H:%M:%S")


_FRACTION = re.compile(r"(\.\d{6})\d+")


def _time(point: Mapping[str, Any]) -> float:
    """The end of a point's interval (RFC 3339, nanoseconds cut to micro) in unix seconds."""
    text = str((point.get("timeInterval") or {}).get("endTime", ""))
    return datetime.fromisoformat(_FRACTION.sub(r"\1", text).replace("Z", "+00:00")).timestamp()


def _number(point: Mapping[str, Any], query: str) -> float | None:
    """The first value of a point: doubleValue (a number, or "NaN" as proto3 JSON writes it) or int64Value."""
    values = point.get("values") or []
    if not values:
        return None
    value = values[0]
    for key in ("doubleValue", "int64Value"):
        if key in value:
            return float(value[key])
    raise BadQueryError(f"the query's first value is not a number ({', '.join(value)}); "
                        "select a numeric value", query, 200, "", str(value)[:100])


def _label(value: Mapping[str, Any]) -> str:
    return str(next(iter(value.values()), "")) if isinstance(value, Mapping) else str(value)


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "..."
