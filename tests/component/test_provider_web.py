"""The `web` provider (Argo Rollouts' web metric) against a documented fake JSON endpoint on 127.0.0.1.

`tests.vendor_fakes.WebJson` is a real HTTP server that answers GET and POST as an endpoint behind
https://argoproj.github.io/argo-rollouts/analysis/web/ does: JSON with the number somewhere inside,
401 without the bearer token, 400 for a request it cannot answer, 429 with Retry-After (RFC 9110).
It is a documented fake of "any JSON endpoint"; the JSONPath is evaluated by jsonpath-ng.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest

from analysis.providers.base import (
    AmbiguousResultError,
    AuthError,
    BadQueryError,
    MetricSource,
    NaNError,
    NoDataError,
    ProviderConfig,
    UnreachableError,
)
from analysis.providers.registry import build
from analysis.providers.rules import RULES
from tests.vendor_fakes import FakeServer, WebJson, closed_address, constant, serving, step_change

pytestmark = pytest.mark.component

REGRESSION = (int(time.time()) // 60) * 60 - 1800
SECRET = {"token": f"Bearer {WebJson.TOKEN}"}
AUTH = [{"key": "Authorization", "valueFrom": {"secretKeyRef": {"key": "token"}}}]


def source(address: str, secret: dict[str, str] | None = None, **options: Any) -> MetricSource:
    options = {"jsonPath": "{$.data.successPercent}", "headers": AUTH, **options}
    return build(ProviderConfig("web", address, secret=SECRET if secret is None else secret, options=options,
                                template="test/web-success", timeout=3, retries=1))


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(REGRESSION - 60)


@pytest.fixture
def fake(clock: Clock) -> Iterator[FakeServer]:
    with serving(WebJson({"podinfo": [step_change(99.5, 90.0, REGRESSION)], "idle": [constant(None)],
                          "zero-over-zero": [constant(float("nan"))], "empty": [],
                          "pods": [constant(1.0), constant(2.0)]}), now=clock) as server:
        yield server


def test_get_sends_the_query_as_the_query_string_and_picks_the_value(fake: FakeServer, clock: Clock) -> None:
    """Documented fake: the value before and after a regression that starts at a known time."""
    with closing(source(f"{fake.url}/api/v1/measurement")) as web:
        assert web.query_value("service=podinfo") == 99.5
        clock.now = REGRESSION
        assert web.query_value("service=podinfo") == 90.0
    sent = fake.requests[-1]
    assert (sent.method, sent.path, sent.params) == ("GET", "/api/v1/measurement", {"service": "podinfo"})
    assert sent.headers["authorization"] == f"Bearer {WebJson.TOKEN}"


def test_post_sends_the_query_as_a_json_body(fake: FakeServer) -> None:
    with closing(source(f"{fake.url}/api/v1/measurement", method="POST", jsonPath="$.data.ok")) as web:
        assert web.query_value('{"service": "podinfo"}') == 1.0
    sent = fake.requests[-1]
    assert sent.method == "POST" and sent.body == b'{"service": "podinfo"}'
    assert sent.headers["content-type"] == "application/json"


def test_nothing_matched_or_null_is_no_data_and_nan_is_nan(fake: FakeServer) -> None:
    with closing(source(f"{fake.url}/api/v1/measurement")) as web:
        with pytest.raises(NoDataError, match=f"matched nothing in the answer of {fake.url}/api/v1/measurement"):
            web.query_value("service=empty")
        with pytest.raises(NoDataError, match="picked null"):
            web.query_value("service=idle")
        with pytest.raises(NaNError):
            web.query_value("service=zero-over-zero")


def test_several_matches_are_ambiguous_and_text_is_not_a_number(fake: FakeServer) -> None:
    with closing(source(f"{fake.url}/api/v1/measurement", jsonPath="$.data.samples[*]")) as web, \
            pytest.raises(AmbiguousResultError, match="matched 2 values"):
        web.query_value("service=pods")
    with closing(source(f"{fake.url}/api/v1/measurement", jsonPath="$.data.label")) as web, \
            pytest.raises(BadQueryError, match='picked "requests", which is not a number'):
        web.query_value("service=podinfo")


def test_a_missing_token_is_an_auth_failure(fake: FakeServer) -> None:
    with closing(source(f"{fake.url}/api/v1/measurement", {"token": "Bearer nope"})) as web, \
            pytest.raises(AuthError, match=r"\(401\)") as refused:
        web.query_value("service=podinfo")
    assert "nope" not in str(refused.value)
    with closing(source(f"{fake.url}/api/v1/measurement", {"token": "Bearer nope"})) as web:
        assert web.is_ready() is False


def test_a_request_the_endpoint_refuses_is_a_bad_query(fake: FakeServer) -> None:
    with closing(source(f"{fake.url}/api/v1/measurement")) as web, \
            pytest.raises(BadQueryError, match="unknown service 'nosuch'"):
        web.query_value("service=nosuch")


def test_nothing_listening_is_unreachable() -> None:
    address = closed_address()
    with closing(source(f"{address}/api/v1/measurement")) as web, \
            pytest.raises(UnreachableError, match="unreachable"):
        web.query_value("service=podinfo")


def test_a_rate_limit_waits_for_retry_after_and_recovers(fake: FakeServer) -> None:
    fake.script.append(fake.vendor.rate_limited())
    started = time.monotonic()
    with closing(source(f"{fake.url}/api/v1/measurement")) as web:
        assert web.query_value("service=podinfo") == 99.5
    assert time.monotonic() - started >= 1.0 and len(fake.requests) == 2


def test_a_web_metric_has_no_history(fake: FakeServer) -> None:
    assert RULES["web"].range_queries is False
    with closing(source(f"{fake.url}/api/v1/measurement")) as web:
        with pytest.raises(BadQueryError, match="no history"):
            web.query_range_series("service=podinfo", REGRESSION - 600, REGRESSION, 60)
        with pytest.raises(BadQueryError, match="past time"):
            web.query_value("service=podinfo", at=REGRESSION)
        assert web.is_ready() is True


def test_options_are_checked_by_field() -> None:
    check = RULES["web"].check_options
    assert check({"jsonPath": "{$.data.value}", "method": "post", "timeoutSeconds": 5, "headers": AUTH}) == []
    assert [p for p, _ in check({"method": "DELETE", "jsonPath": "$.[", "timeoutSeconds": 0, "headers": [
        {"key": "X", "value": "a", "valueFrom": {"secretKeyRef": {"key": "k"}}}, {"value": "v"},
        {"key": "Y", "valueFrom": {"secretKeyRef": {}}}]})] == [
        "method", "jsonPath", "timeoutSeconds", "headers[0]", "headers[1]", "headers[2].valueFrom"]
    assert [p for p, _ in check({})] == ["jsonPath"]


def test_a_header_naming_a_key_the_secret_lacks_is_refused_when_built() -> None:
    with pytest.raises(ValueError, match="Authorization: the provider's Secret has no key 'token'"):
        source("https://metrics.example.com/api", secret={})
