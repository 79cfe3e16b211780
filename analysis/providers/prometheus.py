"""Prometheus as a metric source: PromQL in, numpy arrays (timestamps, values) out.

Built on prometheus-api-client. Every call has a timeout; temporary failures (connection refused
or reset, timeouts, HTTP 5xx and 429) are retried a bounded number of times with exponential
backoff. Failures end in the outcomes of `analysis.providers.base`: HTTP 400/422 is a bad query,
401/403 refused credentials, 5xx and 429 that persist (or no answer) unreachable.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from analysis.providers.base import (
    AuthError,
    BadQueryError,
    FloatArray,
    MetricSourceError,
    Series,
    TimeLike,
    UnreachableError,
    as_datetime,
    single_series,
    single_value,
    unix,
)

T = TypeVar("T")

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Auth:
    """Credentials for Prometheus: a bearer token, or a username and password (basic auth)."""

    bearer_token: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.bearer_token is not None and self.username is not None:
            raise ValueError("give either a bearer token or a username/password, not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("basic auth needs both a username and a password")

    def __repr__(self) -> str:  # never print secrets
        kind = "bearer" if self.bearer_token else "basic" if self.username else "none"
        return f"Auth(kind={kind!r})"

    @classmethod
    def from_secret(cls, data: Mapping[str, str]) -> Auth:
        """Credentials from a Secret's decoded data, with Flagger's keys: `token` or `username`+`password`."""
        if data.get("token"):
            return cls(bearer_token=data["token"])
        if data.get("username") or data.get("password"):
            return cls(username=data.get("username", ""), password=data.get("password", ""))
        return cls()


class PrometheusProvider:
    """Run instant and range queries against one Prometheus server.

    `timeout` (seconds) bounds every HTTP call; `retries` extra attempts are made on temporary
    failures, waiting `backoff * 2**n` seconds (at most `max_backoff`) in between. TLS: set
    `ca_file` to trust a private CA, or `insecure_skip_verify` to skip verification. `sleep` is
    injectable so that tests need not wait. `session` is the HTTP session to send with (a new
    `requests.Session` by default); the provider owns it from then on: the TLS options are set on
    it and `close` closes it.
    """

    def __init__(
        self,
        address: str,
        *,
        auth: Auth | None = None,
        insecure_skip_verify: bool = False,
        ca_file: str | None = None,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.5,
        max_backoff: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ) -> None:
        if not address.startswith(("http://", "https://")):
            raise ValueError(f"Prometheus address {address!r} must start with http:// or https://")
        if timeout <= 0 or retries < 0:
            raise ValueError("timeout must be positive and retries non-negative")
        self.address = address.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._last = threading.local()

        session = session if session is not None else requests.Session()
        session.verify = False if insecure_skip_verify else (ca_file or True)
        session.hooks["response"].append(self._remember)
        self._session = session
        options: dict[str, Any] = {
            "url": self.address,
            "session": session,
            # Our own loop retries, so that it can tell temporary from permanent failures.
            "retry": Retry(total=0, connect=0, read=0, status=0, raise_on_status=False),
            "timeout": timeout,
        }
        # On the session, so that the readiness check sends them too.
        auth = auth or Auth()
        if auth.bearer_token:
            session.headers["Authorization"] = f"Bearer {auth.bearer_token}"
        elif auth.username is not None:
            session.auth = (auth.username, auth.password or "")
        self._client = PrometheusConnect(**options)

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._client.close()

    def __enter__(self) -> PrometheusProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------------- queries

    def query(self, query: str, at: TimeLike | None = None) -> list[Series]:
        """Instant query: every returned series, each with one point. Empty list when none."""
        params = {} if at is None else {"time": f"{unix(at):.3f}"}
        result = self._call(query, lambda: self._client.custom_query(query, params=params))
        return _parse(result)

    def query_value(self, query: str, at: TimeLike | None = None) -> float:
        """Instant query that must yield exactly one finite-or-infinite number (Flagger semantics).

        Raises NoDataError for an empty result, NaNError for NaN, AmbiguousResultError for more
        than one series.
        """
        return single_value(self.query(query, at), query, at)

    def query_range(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> list[Series]:
        """Range query: every returned series with its points from `start` to `end` every `step`."""
        step_s = step.total_seconds() if isinstance(step, timedelta) else float(step)
        if step_s <= 0:
            raise ValueError("step must be positive")
        t0, t1 = as_datetime(start), as_datetime(end)
        if t1 < t0:
            raise ValueError("end must not be before start")
        result = self._call(
            query, lambda: self._client.custom_query_range(query, t0, t1, step=f"{step_s:g}s")
        )
        return _parse(result)

    def query_range_series(
        self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta
    ) -> Series:
        """Range query that must yield one series; NaN points are kept (see `Series.finite`).

        Raises NoDataError for no series, NaNError when every point is NaN, AmbiguousResultError
        for several series.
        """
        return single_series(self.query_range(query, start, end, step), query)

    def is_ready(self) -> bool:
        """True when Prometheus answers its readiness endpoint (no retries)."""
        try:
            response = self._session.get(f"{self.address}/-/ready", timeout=self.timeout)
        except requests.RequestException:
            return False
        return bool(response.status_code == 200)

    # -------------------------------------------------------------------------------- internals

    def _remember(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        self._last.response = response

    def _call(self, query: str, send: Callable[[], T]) -> T:
        attempt = 0
        while True:
            self._last.response = None
            try:
                return send()
            except PrometheusApiClientException as exc:
                error = self._http_error(query, exc)
            except requests.exceptions.SSLError as exc:
                # A certificate problem does not heal by retrying.
                raise UnreachableError(
                    f"TLS error talking to Prometheus at {self.address}: {exc}; "
                    "set the CA or insecureSkipVerify", query,
                ) from exc
            except (requests.ConnectionError, requests.Timeout) as exc:
                error = UnreachableError(
                    f"Prometheus at {self.address} is unreachable: {_reason(exc)}", query
                )
            except ValueError as exc:  # an answer that is not JSON: a proxy page, a wrong address
                raise UnreachableError(
                    f"{self.address} did not answer like Prometheus (no JSON): {exc}", query
                ) from exc
            if not error.temporary or attempt >= self.retries:
                if error.temporary and attempt:
                    error.args = (f"{error.args[0]} (after {attempt + 1} attempts)",)
                raise error
            self._sleep(min(self.max_backoff, self.backoff * 2**attempt))
            attempt += 1

    def _http_error(self, query: str, exc: PrometheusApiClientException) -> MetricSourceError:
        response: requests.Response | None = getattr(self._last, "response", None)
        if response is None:
            return UnreachableError(f"Prometheus at {self.address} failed: {exc}", query)
        status = response.status_code
        error_type, detail = _error_body(response)
        # Some proxies (vmauth 1.79) echo the Authorization header they refused into their error text.
        sent = response.request.headers.get("Authorization") if response.request is not None else None
        if isinstance(sent, str) and sent:
            detail = detail.replace(sent, "<redacted>").replace(sent.partition(" ")[2] or sent, "<redacted>")
        if status in (400, 422):
            return BadQueryError(
                f"Prometheus rejected the query ({status} {error_type}): {detail}", query,
                status, error_type, detail,
            )
        if status in (401, 403):
            return AuthError(
                f"Prometheus at {self.address} refused the credentials ({status}): {detail}", query, status
            )
        if status in _RETRY_STATUS:
            return UnreachableError(f"Prometheus at {self.address} answered {status}: {detail}", query)
        return BadQueryError(
            f"Prometheus at {self.address} answered {status}: {detail}", query, status, error_type, detail
        )


# ------------------------------------------------------------------------------------- helpers


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Connection reset", "timed out", "Name or service not known"):
        if marker.lower() in text.lower():
            return marker.lower()
    return text if len(text) < 300 else text[:300] + "..."


def _error_body(response: requests.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return "", (text[:500] or response.reason or "no details")
    if isinstance(body, dict):
        return str(body.get("errorType", "")), str(body.get("error", "")) or json.dumps(body)[:500]
    return "", str(body)[:500]


def _floats(points: Sequence[Sequence[Any]]) -> tuple[FloatArray, FloatArray]:
    ts = np.array([float(p[0]) for p in points], dtype=np.float64)
    vs = np.array([float(p[1]) for p in points], dtype=np.float64)  # float() reads "NaN", "+Inf"
    return ts, vs


def _parse(result: Any) -> list[Series]:
    """Turn the `data.result` of a vector, matrix or scalar answer into Series."""
    if not result:
        return []
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        ts, vs = _floats([result])  # a scalar: [timestamp, "value"]
        return [Series({}, ts, vs)]
    series: list[Series] = []
    for item in result:
        labels = dict(item.get("metric", {}))
        points = item["values"] if "values" in item else [item["value"]]
        ts, vs = _floats(points)
        series.append(Series(labels, ts, vs))
    return series
