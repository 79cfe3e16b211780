"""Prometheus as a metric provider: PromQL in, numpy arrays (timestamps, values) out.

Built on prometheus-api-client. Every call has a timeout; temporary failures (connection refused
or reset, timeouts, HTTP 5xx and 429) are retried a bounded number of times with exponential
backoff. Everything that can go wrong ends in one exception class per outcome, each with a
message a user can act on:

- `NoDataError`: the query ran but returned no series (nothing matched, or no traffic yet).
- `NaNError`: the query returned only NaN (typically 0/0: a ratio over a window with no requests).
- `UnreachableError`: Prometheus could not be reached or kept failing (temporary).
- `BadQueryError`: Prometheus rejected the query (HTTP 400/422) and said why (permanent).
- `AuthError`: Prometheus (or a proxy in front) refused the credentials (HTTP 401/403).
- `AmbiguousResultError`: a single value was asked for, but several series came back.

All derive from `PrometheusError`, whose `temporary` attribute tells the caller whether to retry
later (engine: TemporaryError) or to report a permanent problem (status condition).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

FloatArray = npt.NDArray[np.float64]
TimeLike = datetime | float
T = TypeVar("T")

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class PrometheusError(Exception):
    """Base of every outcome that is not a usable number."""

    temporary = False

    def __init__(self, message: str, query: str | None = None) -> None:
        super().__init__(message)
        self.query = query


class NoDataError(PrometheusError):
    """The query matched no series: no data is its own outcome, never a pass."""


class NaNError(PrometheusError):
    """The query returned NaN only, e.g. a success rate over a window without requests."""


class UnreachableError(PrometheusError):
    """Prometheus did not answer, or answered 5xx, on every attempt."""

    temporary = True


class BadQueryError(PrometheusError):
    """Prometheus rejected the query; `detail` is Prometheus's own error text."""

    def __init__(self, message: str, query: str | None, status: int, error_type: str, detail: str) -> None:
        super().__init__(message, query)
        self.status = status
        self.error_type = error_type
        self.detail = detail


class AuthError(PrometheusError):
    """Prometheus refused the request's credentials (401) or permission (403)."""

    def __init__(self, message: str, query: str | None, status: int) -> None:
        super().__init__(message, query)
        self.status = status


class AmbiguousResultError(PrometheusError):
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
    injectable so that tests need not wait.
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

        session = requests.Session()
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
        auth = auth or Auth()
        if auth.bearer_token:
            options["headers"] = {"Authorization": f"Bearer {auth.bearer_token}"}
        elif auth.username is not None:
            options["auth"] = (auth.username, auth.password or "")
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
        params = {} if at is None else {"time": f"{_unix(at):.3f}"}
        result = self._call(query, lambda: self._client.custom_query(query, params=params))
        return _parse(result)

    def query_value(self, query: str, at: TimeLike | None = None) -> float:
        """Instant query that must yield exactly one finite-or-infinite number (Flagger semantics).

        Raises NoDataError for an empty result, NaNError for NaN, AmbiguousResultError for more
        than one series.
        """
        series = self.query(query, at)
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

    def query_range(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> list[Series]:
        """Range query: every returned series with its points from `start` to `end` every `step`."""
        step_s = step.total_seconds() if isinstance(step, timedelta) else float(step)
        if step_s <= 0:
            raise ValueError("step must be positive")
        t0, t1 = _as_datetime(start), _as_datetime(end)
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
        series = self.query_range(query, start, end, step)
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

    def _http_error(self, query: str, exc: PrometheusApiClientException) -> PrometheusError:
        response: requests.Response | None = getattr(self._last, "response", None)
        if response is None:
            return UnreachableError(f"Prometheus at {self.address} failed: {exc}", query)
        status = response.status_code
        error_type, detail = _error_body(response)
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


def _unix(at: TimeLike) -> float:
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError("datetimes must be timezone-aware")
        return at.timestamp()
    return float(at)


def _as_datetime(at: TimeLike) -> datetime:
    return datetime.fromtimestamp(_unix(at), tz=UTC)


def _at(at: TimeLike | None) -> str:
    return "" if at is None else f" at {_as_datetime(at).isoformat()}"


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
