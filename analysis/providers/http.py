"""One vendor's HTTP API as a metric source speaks to it: timeouts, bounded retries, shared outcomes.

Every provider without a maintained light client (Datadog, New Relic, Dynatrace, Splunk, ...) calls
its documented REST API through `HttpApi`, so they all fail the same way: connection errors,
timeouts, 429 and 5xx are retried `retries` times with exponential backoff (a `Retry-After` in
seconds is honoured up to `max_backoff`) and end in `UnreachableError`; 401 and 403 end in
`AuthError`; any other 4xx in `BadQueryError` carrying the vendor's own error text. Every message
names the provider and its address, never a credential.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from analysis.providers.base import AuthError, BadQueryError, MetricSourceError, UnreachableError

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class HttpApi:
    """Requests to one base address for the provider named `provider` (as in messages: "Datadog").

    `headers` are sent with every request (API keys go here, never into messages); `auth` is a
    requests auth tuple or object. `retry_after` names the response headers, in order, whose seconds
    say when to try again (Datadog documents `X-RateLimit-Reset` instead of `Retry-After`).
    `session` is injectable for tests; the API owns it and closes it.
    """

    def __init__(
        self,
        provider: str,
        address: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: Any = None,
        insecure_skip_verify: bool = False,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.5,
        max_backoff: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
        retry_after: tuple[str, ...] = ("Retry-After",),
    ) -> None:
        if not address.startswith(("http://", "https://")):
            raise ValueError(f"{provider} address {address!r} must start with http:// or https://")
        if timeout <= 0 or retries < 0:
            raise ValueError("timeout must be positive and retries non-negative")
        self.provider = provider
        self.address = address.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._retry_after = retry_after
        self._session = session if session is not None else requests.Session()
        self._session.verify = not insecure_skip_verify
        self._session.headers.update(headers or {})
        if auth is not None:
            self._session.auth = auth

    def close(self) -> None:
        self._session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        query: str | None = None,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: str | bytes | Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send one request (retrying temporary failures); the 2xx response, or a MetricSourceError.

        `path` is joined to the address (an absolute URL is used as is); `query` is the user's query,
        carried on the error for messages.
        """
        url = path if path.startswith(("http://", "https://")) else f"{self.address}/{path.lstrip('/')}"
        attempt = 0
        while True:
            wait: float | None = None
            try:
                response = self._session.request(method, url, params=params, json=json_body, data=data,
                                                 headers=headers, timeout=self.timeout)
            except requests.exceptions.SSLError as exc:
                raise UnreachableError(f"TLS error talking to {self.provider} at {self.address}: {_short(exc)}; "
                                       "trust its CA or set insecureSkipVerify", query) from exc
            except (requests.ConnectionError, requests.Timeout) as exc:
                error: MetricSourceError = UnreachableError(
                    f"{self.provider} at {self.address} is unreachable: {_short(exc)}", query)
            else:
                if response.status_code < 400:
                    return response
                error = self._http_error(response, query)
                wait = _retry_after(response, self._retry_after)
            if not error.temporary or attempt >= self.retries:
                if error.temporary and attempt:
                    error.args = (f"{error.args[0]} (after {attempt + 1} attempts)",)
                raise error
            backoff = self.backoff * 2**attempt if wait is None else wait
            self._sleep(min(self.max_backoff, backoff))
            attempt += 1

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """`request`, then the body as JSON; an answer that is not JSON is UnreachableError."""
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise UnreachableError(f"{self.address} did not answer like {self.provider} (no JSON): "
                                   f"{response.text[:200]!r}", kwargs.get("query")) from exc

    def _http_error(self, response: requests.Response, query: str | None) -> MetricSourceError:
        status = response.status_code
        detail = error_text(response)
        if status in (401, 403):
            return AuthError(f"{self.provider} at {self.address} refused the credentials ({status}): {detail}",
                             query, status)
        if status in _RETRY_STATUS:
            what = "is rate-limiting requests" if status == 429 else f"answered {status}"
            return UnreachableError(f"{self.provider} at {self.address} {what}: {detail}", query)
        return BadQueryError(f"{self.provider} rejected the query ({status}): {detail}", query, status, "", detail)


def error_text(response: requests.Response) -> str:
    """The vendor's own error text: the JSON body's error fields when there are any, else the text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason or "no details"
    if isinstance(body, dict):
        for key in ("errors", "error", "message", "messages", "detail", "title"):
            if body.get(key):
                value = body[key]
                return value if isinstance(value, str) else json.dumps(value)[:500]
    return json.dumps(body)[:500]


def _retry_after(response: requests.Response, headers: tuple[str, ...]) -> float | None:
    for header in headers:
        try:
            return max(0.0, float(response.headers.get(header, "")))
        except ValueError:
            continue
    return None


def _short(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Connection reset", "timed out", "Name or service not known"):
        if marker.lower() in text.lower():
            return marker.lower()
    return text if len(text) < 300 else text[:300] + "..."
