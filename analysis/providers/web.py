"""Any HTTP endpoint that answers JSON as a metric source: Argo Rollouts' `web` metric.

A MetricTemplate of type `web` names the URL in `provider.address` and picks the number out of the
JSON answer with `provider.jsonPath` (https://argoproj.github.io/argo-rollouts/analysis/web/). The
template's `query` is the request's data, as an HTML form sends it: for GET it is the URL's query
string (`service={{ target }}&window={{ interval }}`, appended to the address), for POST and PUT the
body (sent as `application/json` when it parses as JSON and no Content-Type header is given). So the
per-release part of the request carries Flagger's template variables, and the rest stays fixed.

Provider fields: `method` (GET, POST or PUT; default GET), `headers` (a list of `{key, value}`, or
`{key, valueFrom: {secretKeyRef: {key}}}` to take the value from the provider's Secret),
`jsonPath` (required; `$.data.value`, or Argo's `{$.data.value}`), `timeoutSeconds` (default: the
operator's metric timeout). The path is evaluated with `jsonpath-ng`; it must match one value: a
number, a numeric string, or a boolean (1 or 0). No match or null is no data; several matches are
ambiguous. The endpoint gives no history, so only the threshold judge can use it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from analysis.providers.base import (
    AmbiguousResultError,
    AuthError,
    BadQueryError,
    MetricSourceError,
    NaNError,
    NoDataError,
    Series,
    TimeLike,
)
from analysis.providers.http import HttpApi
from analysis.providers.points import named, series, window
from analysis.providers.web_options import METHODS, compile_path


class WebProvider:
    """Sends the template's request to one URL and picks a number out of the JSON answer."""

    def __init__(self, url: str, *, json_path: str, method: str = "GET", headers: Mapping[str, str] | None = None,
                 insecure_skip_verify: bool = False, timeout: float = 10.0, retries: int = 2,
                 backoff: float = 0.5) -> None:
        if method.upper() not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        try:
            self._path = compile_path(json_path)
        except Exception as exc:  # jsonpath-ng's lexer and parser raise several kinds
            raise ValueError(f"jsonPath {json_path!r} is not a JSONPath: {exc}") from exc
        self.json_path = json_path
        self.method = method.upper()
        self.url = url
        self._headers = dict(headers or {})
        self._api = HttpApi("web metric", url, headers=self._headers, insecure_skip_verify=insecure_skip_verify,
                            timeout=timeout, retries=retries, backoff=backoff)
        self.address = self._api.address

    def __repr__(self) -> str:  # header values may be credentials
        return f"WebProvider(url={self.url!r}, method={self.method!r}, jsonPath={self.json_path!r})"


    def query(self, query: str, at: TimeLike | None = None) -> list[Series]:
        with named('web metric', self.address):
            return self._query(query, at)

    def query_value(self, query: str, at: TimeLike | None = None) -> float:
        with named('web metric', self.address):
            return self._query_value(query, at)

    def query_range(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> list[Series]:
        with named('web metric', self.address):
            return self._query_range(query, start, end, step)

    def query_range_series(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> Series:
        with named('web metric', self.address):
            return self._query_range_series(query, start, end, step)

    def close(self) -> None:
        self._api.close()

    def _query(self, query: str, at: TimeLike | None = None) -> list[Series]:
        """Every value the JSONPath picks, each a series of one point (now: the endpoint has no history)."""
        _, now = window(None, 0)
        return [series({"match": str(i)}, [(now, _number(v, query, self.json_path))])
                for i, v in enumerate(self._matches(query, at))]

    def _query_value(self, query: str, at: TimeLike | None = None) -> float:
        matches = self._matches(query, at)
        if not matches:
            raise NoDataError(f"no data: jsonPath {self.json_path} matched nothing in the answer of {self.url}", query)
        if len(matches) > 1:
            raise AmbiguousResultError(f"jsonPath {self.json_path} matched {len(matches)} values where one was "
                                       "expected", query)
        value = _number(matches[0], query, self.json_path)
        if value is None:
            raise NoDataError(f"no data: jsonPath {self.json_path} picked null in the answer of {self.url}", query)
        if math.isnan(value):
            raise NaNError(f"jsonPath {self.json_path} picked NaN in the answer of {self.url}", query)
        return value

    def _query_range(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> list[Series]:
        raise BadQueryError("a web metric has no history: only the threshold judge can use it", query, 0, "",
                            "no range queries")

    def _query_range_series(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> Series:
        return self._query_range(query, start, end, step)[0]

    def is_ready(self) -> bool:
        """The URL answers and takes the headers: any answer but 401, 403, 429 or 5xx (a HEAD, or an
        OPTIONS for POST and PUT, may well be refused as a method: the endpoint has no readiness check)."""
        try:
            self._api.request("HEAD" if self.method == "GET" else "OPTIONS", self.url)
        except AuthError:
            return False
        except MetricSourceError as exc:
            return not exc.temporary
        return True

    def _matches(self, query: str, at: TimeLike | None) -> list[Any]:
        if at is not None:
            raise BadQueryError("a web metric answers for now only; it cannot be asked about a past time",
                                query, 0, "", "no history")
        return [match.value for match in self._path.find(self._send(query))]

    def _send(self, query: str) -> Any:
        data = query.strip()
        if self.method == "GET":
            separator = "&" if "?" in self.url else "?"
            url = f"{self.url}{separator}{data}" if data else self.url
            return self._api.json("GET", url, query=query)
        headers = {}
        if not any(k.lower() == "content-type" for k in self._headers):
            headers["Content-Type"] = "application/json" if _is_json(data) else "text/plain"
        return self._api.json(self.method, self.url, data=data.encode(), headers=headers, query=query)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _number(value: Any, query: str, path: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    shown = json.dumps(value)[:100]
    raise BadQueryError(f"jsonPath {path} picked {shown}, which is not a number", query, 200, "", shown)
