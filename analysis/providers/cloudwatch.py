"""Amazon CloudWatch as a metric source: Flagger's GetMetricData query, signed requests, no SDK.

As Flagger's cloudwatch provider (pkg/metrics/providers/cloudwatch.go): the template's query is a
JSON array of MetricDataQuery objects
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html),
`provider.region` is required, credentials come from the environment, never from a Secret; the value
is the newest datapoint of the returned result (set `"ReturnData": false` on the others; several
returned results are ambiguous, where Flagger takes the first), looked for over ten metric
intervals (Flagger's window; ten times the longest `Period` of the queries when the metric's
interval is not known). A range is GetMetricData over [start, end] at the queries' own periods.

Why no boto3: botocore pins python-dateutil below 3, which the kubernetes client (>= 37) needs, so
the two cannot share an environment. GetMetricData is called over CloudWatch's JSON 1.0 protocol,
signed with AWS Signature V4 by requests-aws4auth, through `HttpApi` (timeouts, retries, outcomes).
Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN), or IAM roles for
service accounts (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE, exchanged with STS's
AssumeRoleWithWebIdentity and renewed before they expire). `provider.address` overrides the
endpoint (default https://monitoring.<region>.amazonaws.com; e.g. a VPC endpoint, or a local
imitation in tests); AWS_ENDPOINT_URL_STS overrides STS's, as in the AWS SDKs.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import requests
from requests_aws4auth import AWS4Auth

from analysis.providers.base import (
    AuthError,
    BadQueryError,
    ProviderConfig,
    Series,
    TimeLike,
    UnreachableError,
    unix,
)
from analysis.providers.http import HttpApi
from analysis.providers.values import series_of, value_of

DEFAULT_ENDPOINT = "https://monitoring.{region}.amazonaws.com"
_TARGET = "GraniteServiceVersion20100801.GetMetricData"
_LOOKBACK_PERIODS = 10  # Flagger's cloudWatchStartDeltaMultiplierOnMetricInterval
_MAX_DATAPOINTS = 20  # Flagger's MaxDatapoints for an instant
_MAX_PAGES = 50
_RENEW_BEFORE = 300.0


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    expires: float = math.inf


class EnvironmentCredentials:
    """The AWS SDKs' environment credentials: static keys, or a web identity exchanged with STS."""

    def __init__(self, region: str, environ: Mapping[str, str] | None = None, timeout: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.region, self.timeout, self.clock = region, timeout, clock
        self.environ = os.environ if environ is None else environ
        self._cached: Credentials | None = None
        self._lock = threading.Lock()

    def get(self) -> Credentials:
        """Static keys as the environment has them now; a web identity's, renewed before they expire."""
        env = self.environ
        if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
            return Credentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env.get("AWS_SESSION_TOKEN"))
        if env.get("AWS_ROLE_ARN") and env.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
            with self._lock:
                if self._cached is None or self._cached.expires - _RENEW_BEFORE < self.clock():
                    self._cached = self._web_identity(env["AWS_ROLE_ARN"], env["AWS_WEB_IDENTITY_TOKEN_FILE"])
                return self._cached
        raise AuthError("CloudWatch: no AWS credentials in the environment: set AWS_ACCESS_KEY_ID and "
                        "AWS_SECRET_ACCESS_KEY, or use IAM roles for service accounts (AWS_ROLE_ARN and "
                        "AWS_WEB_IDENTITY_TOKEN_FILE)", None, 0)

    def _web_identity(self, role: str, token_file: str) -> Credentials:
        endpoint = (self.environ.get("AWS_ENDPOINT_URL_STS") or f"https://sts.{self.region}.amazonaws.com")
        try:
            with open(token_file) as f:
                token = f.read().strip()
            response = requests.post(endpoint, timeout=self.timeout, data={
                "Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": role,
                "RoleSessionName": self.environ.get("AWS_ROLE_SESSION_NAME", "rollout"), "WebIdentityToken": token})
        except (OSError, requests.RequestException) as exc:
            raise UnreachableError(f"CloudWatch: cannot get credentials for {role} from STS at {endpoint}: "
                                   f"{type(exc).__name__}", None) from exc
        if response.status_code >= 400:
            raise AuthError(f"CloudWatch: STS at {endpoint} refused the web identity for {role} "
                            f"({response.status_code})", None, response.status_code)
        found = {el.tag.rpartition("}")[2]: (el.text or "") for el in ET.fromstring(response.text).iter()}
        expires = found.get("Expiration", "")
        return Credentials(found.get("AccessKeyId", ""), found.get("SecretAccessKey", ""), found.get("SessionToken"),
                           _iso_seconds(expires) if expires else time.time() + 900)


class _Signer(requests.auth.AuthBase):
    """Signature V4 with the current credentials (renewed ones included) for each request."""

    def __init__(self, credentials: EnvironmentCredentials, region: str) -> None:
        self.credentials, self.region = credentials, region

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        c = self.credentials.get()
        signed: requests.PreparedRequest = AWS4Auth(c.access_key, c.secret_key, self.region, "monitoring",
                                                    session_token=c.token)(request)
        return signed


class CloudWatchProvider:
    """GetMetricData against one region's CloudWatch (or the endpoint `address`)."""

    def __init__(self, region: str, *, address: str | None = None, credentials: EnvironmentCredentials | None = None,
                 lookback: float | None = None, insecure_skip_verify: bool = False, timeout: float = 10.0,
                 retries: int = 2, api: HttpApi | None = None) -> None:
        self.region = region
        self.lookback = lookback
        credentials = credentials or EnvironmentCredentials(region, timeout=timeout)
        self.api = api or HttpApi("CloudWatch", address or DEFAULT_ENDPOINT.format(region=region),
                                  auth=_Signer(credentials, region), insecure_skip_verify=insecure_skip_verify,
                                  timeout=timeout, retries=retries)
        self.address = self.api.address
        self.where = f"CloudWatch at {self.address}"

    def close(self) -> None:
        self.api.close()

    def get_metric_data(self, query: str, start: float, end: float, *, newest_first: bool,
                        max_datapoints: int | None = None) -> list[Series]:
        """Every returned result as a series (values in the order asked for), all pages read."""
        queries = parse_query(query)
        body: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end,
                                "ScanBy": "TimestampDescending" if newest_first else "TimestampAscending"}
        if max_datapoints:
            body["MaxDatapoints"] = max_datapoints
        results: dict[str, tuple[dict[str, str], list[float], list[float]]] = {}
        for _ in range(_MAX_PAGES):
            answer = self.api.json("POST", "/", data=json.dumps(body), query=query, headers={
                "X-Amz-Target": _TARGET, "Content-Type": "application/x-amz-json-1.0"})
            returned = answer.get("MetricDataResults") if isinstance(answer, Mapping) else None
            for result in returned or []:
                labels = {"id": str(result.get("Id", "")), "label": str(result.get("Label", ""))}
                _, stamps, values = results.setdefault(labels["id"], (labels, [], []))
                stamps += [float(t) for t in result.get("Timestamps") or []]
                values += [float(v) for v in result.get("Values") or []]
                if result.get("StatusCode") == "Forbidden":
                    raise AuthError(f"{self.where} refused to read {labels['id']}: "
                                    f"{result.get('Messages') or 'Forbidden'}", query, 403)
            token = answer.get("NextToken") if isinstance(answer, Mapping) else None
            if not token:
                break
            body["NextToken"] = token
        return [Series(labels, np.array(ts, dtype=np.float64), np.array(vs, dtype=np.float64))
                for labels, ts, vs in results.values()]

    def query(self, query: str, at: TimeLike | None = None) -> list[Series]:
        """Each result's newest datapoint within the ten longest periods before `at` (or now)."""
        end = unix(at) if at is not None else time.time()
        start = end - (self.lookback or _LOOKBACK_PERIODS * longest_period(parse_query(query)))
        found = []
        for series in self.get_metric_data(query, start, end, newest_first=True, max_datapoints=_MAX_DATAPOINTS):
            if len(series.values):  # a result without datapoints in the window is no data
                found.append(Series(series.labels, series.timestamps[:1], series.values[:1]))
        return found

    def query_value(self, query: str, at: TimeLike | None = None) -> float:
        return value_of(self.where, self.query(query, at), query, at)

    def query_range(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> list[Series]:
        """Every result over [start, end] at the queries' own periods (`step` is not sent: the
        `Period` in the query sets the resolution)."""
        # GetMetricData's EndTime is exclusive; a range's end is included, as in Prometheus.
        found = self.get_metric_data(query, unix(start), unix(end) + 1, newest_first=False)
        return [s for s in found if len(s.values)]

    def query_range_series(self, query: str, start: TimeLike, end: TimeLike, step: float | timedelta) -> Series:
        return series_of(self.where, self.query_range(query, start, end, step), query)

    def is_ready(self) -> bool:
        """Flagger's check: GetMetricData without queries answers 400 when CloudWatch is reachable
        and the credentials are accepted."""
        try:
            self.api.request("POST", "/", data=json.dumps({"MetricDataQueries": [], "StartTime": 0, "EndTime": 0}),
                             headers={"X-Amz-Target": _TARGET, "Content-Type": "application/x-amz-json-1.0"})
        except BadQueryError:
            return True
        except Exception:
            return False
        return True


def parse_query(query: str) -> list[dict[str, Any]]:
    """The template's JSON array of MetricDataQuery objects; BadQueryError naming what is wrong."""
    try:
        queries = json.loads(query)
    except ValueError as exc:
        raise BadQueryError(f"CloudWatch query is not JSON: {exc}; it must be a JSON array of MetricDataQuery "
                            "objects", query, 0, "", str(exc)) from exc
    if not isinstance(queries, list) or not queries or not all(isinstance(q, dict) for q in queries):
        raise BadQueryError("CloudWatch query must be a non-empty JSON array of MetricDataQuery objects "
                            '(e.g. [{"Id": "m1", "MetricStat": {...}}])', query, 0, "", "not an array of objects")
    return queries


def longest_period(queries: list[dict[str, Any]]) -> float:
    """The longest `Period` (seconds) among the queries and their MetricStats; 60 when none is given."""
    periods = [q.get("Period") for q in queries] + [(q.get("MetricStat") or {}).get("Period") for q in queries]
    numbers = [float(p) for p in periods if isinstance(p, int | float) and p > 0]
    return max(numbers, default=60.0)


def _iso_seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def build(config: ProviderConfig) -> CloudWatchProvider:
    """The provider for a MetricTemplate of type cloudwatch."""
    if not config.region:
        raise ValueError("a cloudwatch provider needs provider.region, e.g. us-east-1")
    # The rules' default address names the region as {region}.
    address = (config.address or DEFAULT_ENDPOINT).replace("{region}", config.region)
    # Flagger looks back ten metric intervals, when the engine passes the metric's interval.
    interval = getattr(config, "interval", None)
    lookback = _LOOKBACK_PERIODS * float(interval) if isinstance(interval, int | float) and interval > 0 else None
    return CloudWatchProvider(config.region, address=address, lookback=lookback,
                              insecure_skip_verify=config.insecure_skip_verify, timeout=config.timeout,
                              retries=config.retries)
