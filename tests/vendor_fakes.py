"""Documented fakes of the metric vendors that cannot run here, each a real HTTP server on 127.0.0.1.

Datadog, New Relic, Dynatrace, Google Cloud Monitoring (with Google's OAuth token endpoint), Splunk
Observability's SignalFlow and a plain JSON endpoint (Argo Rollouts' web metric) are answered by one
`ThreadingHTTPServer` per test, started on a free port in a thread. Each `Vendor` below answers with
the response shapes of the vendor's API documentation (the page is named on each class): its
success body, its no-data body, its error bodies for a bad query and for refused credentials, and its
rate-limit answer (429 with the headers the vendor documents). What a fake knows is a table of
queries, each with the functions of time that give its series' values (None: no value at that time),
so a test knows every number the provider must return, and a regression can start at a known time.

The fakes are only as true as the documentation: they are no substitute for the vendor, and each test
that uses one says so.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ValueAt = Callable[[float], float | None]
# query text -> the functions of time giving each of its series (an empty list: no series at all).
Data = dict[str, list[ValueAt]]


def step_change(before: float, after: float, at: float) -> ValueAt:
    """A metric that reads `before` until `at` (unix seconds) and `after` from then on."""
    return lambda t: before if t < at else after


def constant(value: float | None) -> ValueAt:
    return lambda t: value


@dataclass
class Request:
    """One request as the fake received it."""

    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


def grid(start: float, end: float, step: float) -> list[float]:
    """The whole multiples of `step` from `start` to `end` (inclusive): where the fakes put points."""
    first = math.ceil(start / step) * step
    return [first + i * step for i in range(int((end - first) // step) + 1)] if end >= first else []


class Vendor(ABC):
    """What one vendor answers; subclasses follow that vendor's documentation."""

    name = "vendor"

    def __init__(self, data: Data | None = None) -> None:
        self.data: Data = dict(data or {})
        # Set by the server that serves this vendor.
        self.url = ""
        self.now: Callable[[], float] = time.time

    @abstractmethod
    def authorized(self, request: Request) -> bool:
        ...

    @abstractmethod
    def unauthorized(self) -> Reply:
        ...

    @abstractmethod
    def rate_limited(self) -> Reply:
        ...

    @abstractmethod
    def answer(self, request: Request) -> Reply:
        ...

    def route(self, request: Request) -> Reply:
        if not self.authorized(request):
            return self.unauthorized()
        return self.answer(request)


class FakeServer:
    """A vendor fake listening on 127.0.0.1; `url` is its address, `requests` what it received.

    `script` holds replies served before the vendor answers (e.g. `vendor.rate_limited()` twice);
    `now` is the vendor's clock, so that "the last N seconds" means the same to the test and the fake.
    """

    def __init__(self, vendor: Vendor, now: Callable[[], float] = time.time) -> None:
        self.vendor = vendor
        vendor.now = now
        self.requests: list[Request] = []
        self.script: list[Reply] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                request = Request(self.command, parts.path,
                                  {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
                                  {k.lower(): v for k, v in self.headers.items()},
                                  self.rfile.read(length) if length else b"")
                with fake._lock:
                    fake.requests.append(request)
                    scripted = fake.script.pop(0) if fake.script else None
                reply = scripted or fake.vendor.route(request)
                payload = reply.encoded()
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(payload)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_HEAD = do_OPTIONS = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = vendor.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"fake-{vendor.name}", daemon=True)

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def queries(self, path: str) -> list[Request]:
        """The requests received on `path`."""
        return [r for r in self.requests if r.path == path]


@contextmanager
def serving(vendor: Vendor, now: Callable[[], float] = time.time) -> Iterator[FakeServer]:
    server = FakeServer(vendor, now).start()
    try:
        yield server
    finally:
        server.stop()


def closed_address() -> str:
    """An address on 127.0.0.1 where nothing listens (a server started and stopped)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    return f"http://127.0.0.1:{port}"


# ------------------------------------------------------------------------------------------ Datadog


class Datadog(Vendor):
    """Datadog's v1 metrics query API.

    https://docs.datadoghq.com/api/latest/metrics/#query-timeseries-points (response: `status`,
    `res_type`, `series[]` with `pointlist` [[ms, value]], `from_date`, `to_date`, `query`; errors
    `{"errors": [...]}` with 400 and 403); https://docs.datadoghq.com/api/latest/rate-limits/ (429 with
    X-RateLimit-Limit, -Period, -Remaining, -Reset (seconds to the reset) and -Name).
    """

    name = "datadog"
    API_KEY, APP_KEY = "dd-api-key-1", "dd-app-key-1"
    POINT_SECONDS = 60.0

    def __init__(self, data: Data | None = None, reset_seconds: int = 1) -> None:
        super().__init__(data)
        self.reset_seconds = reset_seconds

    def authorized(self, request: Request) -> bool:
        return (request.headers.get("dd-api-key") == self.API_KEY
                and request.headers.get("dd-application-key") == self.APP_KEY)

    def unauthorized(self) -> Reply:
        return Reply(403, {"errors": ["Forbidden"]})

    def rate_limited(self) -> Reply:
        return Reply(429, {"errors": ["Too many requests"]},
                     {"X-RateLimit-Limit": "1600", "X-RateLimit-Period": "3600", "X-RateLimit-Remaining": "0",
                      "X-RateLimit-Reset": str(self.reset_seconds), "X-RateLimit-Name": "batch_query"})

    def answer(self, request: Request) -> Reply:
        if request.path == "/api/v1/validate":
            return Reply(200, {"valid": True})
        if request.path != "/api/v1/query":
            return Reply(404, {"errors": ["Not found"]})
        query = request.params.get("query", "")
        if query not in self.data:
            return Reply(400, {"errors": [f"Error parsing query: \n unable to parse {query}: Rule 'scope_expr' "
                                          "didn't match"]})
        start, end = float(request.params["from"]), float(request.params["to"])
        stamps = grid(start, end, self.POINT_SECONDS)
        series = [{
            "aggr": "avg", "display_name": query, "end": int(end * 1000), "expression": query,
            "interval": int(self.POINT_SECONDS), "length": len(stamps), "metric": query.split("{")[0],
            "pointlist": [[t * 1000.0, fn(t)] for t in stamps], "query_index": 0, "scope": f"series:{i}",
            "start": int(start * 1000), "tag_set": [], "unit": None,
        } for i, fn in enumerate(self.data[query])]
        return Reply(200, {"status": "ok", "res_type": "time_series", "resp_version": 1, "query": query,
                           "from_date": int(start * 1000), "to_date": int(end * 1000), "series": series,
                           "message": "", "group_by": []})


# ---------------------------------------------------------------------------------------- New Relic


_SINCE_AGO = re.compile(r"\s+SINCE (\d+) seconds ago$")
_SINCE_UNTIL = re.compile(r"\s+SINCE (\d+) UNTIL (\d+)(?: TIMESERIES (\d+) seconds)?$")


class NewRelic(Vendor):
    """New Relic's Insights query API.

    https://docs.newrelic.com/docs/apis/insights-apis/query-insights-event-data-api/ (GET
    /v1/accounts/<id>/query?nrql= with X-Query-Key; `results` [{"result": v}] for an unnamed
    expression, `timeSeries` [{results, beginTimeSeconds, endTimeSeconds}] with TIMESERIES, `facets`
    with FACET; errors `{"error": "..."}`); https://docs.newrelic.com/docs/apis/rest-api-v2/basic-functions/
    api-overload-protection-handling-429-errors/ (429, headers and body "may or may not" say more).
    """

    name = "newrelic"
    ACCOUNT, QUERY_KEY = "1234567", "NRIQ-query-key-1"

    def authorized(self, request: Request) -> bool:
        return request.headers.get("x-query-key") == self.QUERY_KEY

    def unauthorized(self) -> Reply:
        return Reply(401, {"error": "Invalid query key"})

    def rate_limited(self) -> Reply:
        return Reply(429, {"error": "Too many requests"})

    def answer(self, request: Request) -> Reply:
        if request.path != f"/v1/accounts/{self.ACCOUNT}/query":
            return Reply(404, {"error": "Account not found"})
        nrql = request.params.get("nrql", "")
        if nrql.startswith("SELECT count(*) FROM Metric"):
            return Reply(200, {"results": [{"count": 42}], "metadata": {}})
        now = self.now()
        if match := _SINCE_AGO.search(nrql):
            base, start, end, step = nrql[:match.start()], now - float(match[1]), now, None
        elif match := _SINCE_UNTIL.search(nrql):
            base, start, end = nrql[:match.start()], float(match[1]) / 1000, float(match[2]) / 1000
            step = float(match[3]) if match[3] else None
        else:
            return Reply(400, {"error": f"NRQL Syntax Error: Error at line 1 position 0, unexpected '{nrql[:20]}'"})
        if base not in self.data:
            return Reply(400, {"error": f"NRQL Syntax Error: Error at line 1 position 7, unexpected '{base[:20]}'"})
        functions = self.data[base]
        metadata = {"beginTimeMillis": int(start * 1000), "endTimeMillis": int(end * 1000),
                    "contents": [{"function": "alias", "alias": "result"}]}
        if step is None:
            results = [{"result": fn(end)} for fn in functions[:1]] or [{"result": None}]
            if len(functions) > 1:
                return Reply(200, {"facets": [{"name": f"pod-{i}", "results": [{"result": fn(end)}]}
                                              for i, fn in enumerate(functions)], "metadata": metadata})
            return Reply(200, {"results": results, "metadata": metadata,
                               "performanceStats": {"inspectedCount": 10, "wallClockTime": 3}})
        edges = grid(start, end, step)
        # A bucket holds what happened from its beginning on.
        buckets = [[{"results": [{"result": fn(a)}], "beginTimeSeconds": int(a), "endTimeSeconds": int(b),
                     "inspectedCount": 10} for a, b in itertools.pairwise(edges)]
                   for fn in functions]
        if len(functions) > 1:
            return Reply(200, {"facets": [{"name": f"pod-{i}", "timeSeries": b} for i, b in enumerate(buckets)],
                               "metadata": metadata})
        return Reply(200, {"timeSeries": buckets[0] if buckets else [], "metadata": metadata})


# ---------------------------------------------------------------------------------------- Dynatrace


class Dynatrace(Vendor):
    """Dynatrace's metrics API v2.

    https://docs.dynatrace.com/docs/dynatrace-api/environment-api/metric-v2/get-data-points (GET
    /api/v2/metrics/query, `Authorization: Api-Token`; `result[]` of {metricId, data[] of {dimensions,
    dimensionMap, timestamps (ms), values (null where no data)}}; errors `{"error": {"code", "message",
    "constraintViolations"}}`); https://docs.dynatrace.com/docs/dynatrace-api/basics/access-limit (429
    when the environment's request queue is full; no rate-limit header is documented).
    """

    name = "dynatrace"
    TOKEN = "dt0c01.FAKE.TOKEN"

    def authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Api-Token {self.TOKEN}"

    def unauthorized(self) -> Reply:
        return Reply(401, {"error": {"code": 401, "message": "Missing authorization parameter."}})

    def rate_limited(self) -> Reply:
        return Reply(429, {"error": {"code": 429, "message": "Too Many Requests"}})

    def answer(self, request: Request) -> Reply:
        if request.path == "/api/v2/metrics":
            return Reply(200, {"totalCount": 1, "nextPageKey": None, "metrics": [{"metricId": "builtin:x"}]})
        if request.path != "/api/v2/metrics/query":
            return Reply(404, {"error": {"code": 404, "message": "Not found"}})
        selector = request.params.get("metricSelector", "")
        if selector not in self.data:
            return Reply(400, {"error": {"code": 400, "message": "Constraints violated.", "constraintViolations": [
                {"path": "metricSelector", "message": f"The metric selector {selector!r} could not be parsed",
                 "parameterLocation": "QUERY", "location": None}]}})
        start, end = float(request.params["from"]) / 1000, float(request.params["to"]) / 1000
        resolution = request.params.get("resolution", "")
        if resolution == "Inf":
            stamps = [end]
        else:
            minutes = re.fullmatch(r"(\d+)m", resolution)
            stamps = grid(start, end, 60.0 * int(minutes[1]) if minutes else 60.0)
        data = [{"dimensions": [f"SERVICE-{i}"], "dimensionMap": {"dt.entity.service": f"SERVICE-{i}"},
                 "timestamps": [int(t * 1000) for t in stamps], "values": [fn(t) for t in stamps]}
                for i, fn in enumerate(self.data[selector])]
        return Reply(200, {"totalCount": 1, "nextPageKey": None, "resolution": resolution or "1m",
                           "result": [{"metricId": selector, "dataPointCountRatio": 0.0001,
                                       "dimensionCountRatio": 0.001, "data": data}]})


# ------------------------------------------------------------------------- Google Cloud Monitoring


_WITHIN = re.compile(r"\n\| within d'([^']+)', d'([^']+)'$")


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


class GoogleMonitoring(Vendor):
    """Google Cloud Monitoring's `projects.timeSeries.query` (MQL) and Google's OAuth 2.0 token endpoint.

    https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.timeSeries/query (POST
    /v3/projects/<p>/timeSeries:query {"query"}; `timeSeriesDescriptor`, `timeSeriesData[]` of
    {labelValues, pointData[] of {values [{doubleValue | int64Value}], timeInterval}} newest first; an
    empty answer is `{}`); https://cloud.google.com/apis/design/errors (`{"error": {code, message,
    status}}`: 400 INVALID_ARGUMENT, 401 UNAUTHENTICATED, 429 RESOURCE_EXHAUSTED);
    https://developers.google.com/identity/protocols/oauth2/service-account#httprest (POST token_uri
    with grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer and a signed JWT assertion;
    `{"access_token", "expires_in", "token_type"}`, or 400 `{"error": "invalid_grant", ...}`).
    The fake checks the JWT's RS256 signature with the service account's public key.
    """

    name = "stackdriver"
    PROJECT = "shop-prod-123"
    # "When making an access token request this value is always https://oauth2.googleapis.com/token."
    AUDIENCE = "https://oauth2.googleapis.com/token"
    POINT_SECONDS = 60.0

    def __init__(self, data: Data | None = None, public_key_pem: str = "") -> None:
        super().__init__(data)
        self.public_key_pem = public_key_pem
        self.tokens: list[str] = []
        self.assertions: list[dict[str, Any]] = []

    def authorized(self, request: Request) -> bool:
        if request.path == "/token":
            return True
        header = request.headers.get("authorization", "")
        return header.startswith("Bearer ") and header[len("Bearer "):] in self.tokens

    def unauthorized(self) -> Reply:
        return Reply(401, _google_error(401, "Request had invalid authentication credentials. Expected OAuth 2 "
                                             "access token.", "UNAUTHENTICATED"))

    def rate_limited(self) -> Reply:
        return Reply(429, _google_error(429, "Quota exceeded for quota metric 'Time series queries'.",
                                        "RESOURCE_EXHAUSTED"))

    def answer(self, request: Request) -> Reply:
        if request.path == "/token":
            return self._token(request)
        if request.path != f"/v3/projects/{self.PROJECT}/timeSeries:query":
            return Reply(404, _google_error(404, "Project not found", "NOT_FOUND"))
        query = json.loads(request.body or b"{}").get("query", "")
        now = self.now()
        start, end = now - 3600, now
        if match := _WITHIN.search(query):
            start, end = (datetime.strptime(m, "%Y/%m/%d-%H:%M:%S").replace(tzinfo=UTC).timestamp()
                          for m in (match[1], match[2]))
            query = query[:match.start()]
        if query.strip() not in self.data:
            return Reply(400, _google_error(400, f"Line 1, column 1 to column 5, Cannot find an operation named "
                                                 f"'{query.strip()[:10]}'.", "INVALID_ARGUMENT"))
        functions = self.data[query.strip()]
        if not functions:
            return Reply(200, {})
        stamps = list(reversed(grid(start, end, self.POINT_SECONDS)))
        data = [{"labelValues": [{"stringValue": f"pod-{i}"}],
                 "pointData": [{"values": [_google_value(fn(t))],
                                "timeInterval": {"startTime": _rfc3339(t - self.POINT_SECONDS),
                                                 "endTime": _rfc3339(t)}}
                               for t in stamps if fn(t) is not None]}
                for i, fn in enumerate(functions)]
        return Reply(200, {"timeSeriesDescriptor": {
            "labelDescriptors": [{"key": "resource.pod_name"}],
            "pointDescriptors": [{"key": "value.success_rate", "valueType": "DOUBLE", "metricKind": "GAUGE"}]},
            "timeSeriesData": data})

    def _token(self, request: Request) -> Reply:
        import google.auth.jwt  # the test's own check of the signature, as Google does it

        form = {k: v[-1] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Reply(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"})
        try:
            claims = google.auth.jwt.decode(  # type: ignore[no-untyped-call]
                form.get("assertion", ""), certs=self.public_key_pem, audience=self.AUDIENCE)
        except Exception:
            return Reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        self.assertions.append(claims)
        token = f"ya29.fake-{len(self.tokens)}"
        self.tokens.append(token)
        return Reply(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})


def _google_error(code: int, message: str, status: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


def _google_value(value: float | None) -> dict[str, Any]:
    # proto3 JSON writes a NaN double as the string "NaN"
    return {"doubleValue": "NaN" if value is None or math.isnan(value) else value}


# ------------------------------------------------------------------------------------------- Splunk


class Splunk(Vendor):
    """Splunk Observability Cloud's SignalFlow API, its Server-Sent Events form, and /v2/metric.

    https://dev.splunk.com/observability/reference/api/signalflow/latest (POST
    /v2/signalflow/execute?start&stop&resolution&immediate with the program as text/plain and
    X-SF-Token; an event stream of `control-message` (STREAM_START, JOB_START, END_OF_CHANNEL),
    `metadata` {tsId, properties}, `data` {logicalTimestampMs, data [{tsId, value}]}, and `error`
    {errors}; HTTP errors as {"code", "message"}); https://dev.splunk.com/observability/docs/signalflow/messages;
    https://docs.splunk.com/observability/en/admin/references/system-limits/sys-limits-infra.html
    (429 when an org's API rate is exceeded; no header is documented).
    """

    name = "splunk"
    TOKEN = "sf-token-1"

    def authorized(self, request: Request) -> bool:
        return request.headers.get("x-sf-token") == self.TOKEN

    def unauthorized(self) -> Reply:
        return Reply(401, {"code": 401, "message": "Unauthorized"})

    def rate_limited(self) -> Reply:
        return Reply(429, {"code": 429, "message": "Too Many Requests"})

    def answer(self, request: Request) -> Reply:
        if request.path == "/v2/metric":
            return Reply(200, {"count": 1, "results": [{"name": "traces.count"}]})
        if request.path != "/v2/signalflow/execute":
            return Reply(404, {"code": 404, "message": "Not found"})
        program = request.body.decode()
        if program not in self.data:
            return Reply(200, _events([("control-message", {"event": "STREAM_START", "timestampMs": 1}),
                                       ("error", {"type": "error", "errors": [{
                                           "code": "ANALYTICS_PROGRAM_COMPILATION_ERROR",
                                           "context": {"column": 1, "line": 1, "program": program[:40]}}]})]),
                         content_type="text/event-stream")
        start, stop = float(request.params["start"]) / 1000, float(request.params["stop"]) / 1000
        resolution = float(request.params.get("resolution", "60000")) / 1000
        functions = self.data[program]
        events: list[tuple[str, dict[str, Any]]] = [
            ("control-message", {"event": "STREAM_START", "timestampMs": int(stop * 1000)}),
            ("control-message", {"event": "JOB_START", "handle": "FAKEHANDLE", "timestampMs": int(stop * 1000)})]
        events += [("metadata", {"type": "metadata", "tsId": f"AAAAAAAAAA{i}",
                                 "properties": {"sf_metric": "_SF_COMP_FAKE", "sf_key": ["sf_service"],
                                                "sf_service": f"svc-{i}", "sf_resolutionMs": int(resolution * 1000)}})
                   for i in range(len(functions))]
        for t in grid(start, stop, resolution):
            events.append(("data", {"type": "data", "logicalTimestampMs": int(t * 1000),
                                    "data": [{"tsId": f"AAAAAAAAAA{i}", "value": fn(t)}
                                             for i, fn in enumerate(functions)]}))
        events.append(("control-message", {"event": "END_OF_CHANNEL", "timestampMs": int(stop * 1000)}))
        return Reply(200, _events(events), content_type="text/event-stream")


def _events(events: list[tuple[str, dict[str, Any]]]) -> str:
    return "".join(f"event: {kind}\ndata: {json.dumps(message)}\n\n" for kind, message in events)


# ------------------------------------------------------------------------------------------ web


class WebJson(Vendor):
    """Any JSON endpoint, as Argo Rollouts' web metric calls one.

    https://argoproj.github.io/argo-rollouts/analysis/web/ (GET, POST or PUT with headers and a body;
    a non-2xx answer is an error; the JSON's `jsonPath` value is the result). Here: GET
    `/api/v1/measurement?service=...` and POST `/api/v1/measurement` with a JSON body naming the
    service; the answer is `{"data": {"ok": bool, "successPercent": number, "samples": [...]}}`;
    401 `{"message": "unauthorized"}` without the bearer token, 429 with Retry-After (RFC 9110).
    """

    name = "web"
    TOKEN = "web-token-1"

    def authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.TOKEN}"

    def unauthorized(self) -> Reply:
        return Reply(401, {"message": "unauthorized"})

    def rate_limited(self) -> Reply:
        return Reply(429, {"message": "slow down"}, {"Retry-After": "1"})

    def answer(self, request: Request) -> Reply:
        if request.path != "/api/v1/measurement":
            return Reply(404, {"message": "not found"})
        if request.method in ("HEAD", "OPTIONS"):
            return Reply(200, {})
        if request.method == "GET":
            service = request.params.get("service", "")
        else:
            try:
                service = json.loads(request.body).get("service", "")
            except ValueError:
                return Reply(400, {"message": "the body is not JSON"})
        if service not in self.data:
            return Reply(400, {"message": f"unknown service {service!r}"})
        now = self.now()
        values = [fn(now) for fn in self.data[service]]
        if not values:
            return Reply(200, {"data": {}})
        return Reply(200, {"data": {"ok": values[0] is not None and values[0] >= 99, "successPercent": values[0],
                                    "samples": values, "label": "requests"}})

