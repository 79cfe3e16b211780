"""The metric source registry, and a Prometheus provider speaking through an injected session."""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import closing
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter

from analysis.providers.base import AuthError, BadQueryError, MetricSource, ProviderConfig, UnreachableError
from analysis.providers.http import HttpApi
from analysis.providers.prometheus import Auth, PrometheusProvider
from analysis.providers.registry import PROMETHEUS, UnknownSourceError, build, known_types, register_kind
from analysis.providers.rules import RULES


class CannedAdapter(BaseAdapter):
    """Answers every request with one status and JSON body, and keeps the requests it saw."""

    def __init__(self, status: int, body: Mapping[str, Any]) -> None:
        super().__init__()
        self.status, self.body = status, body
        self.seen: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        self.seen.append(request)
        response = requests.Response()
        response.status_code = self.status
        response._content = json.dumps(self.body).encode()
        response.headers["Content-Type"] = "application/json"
        response.request, response.url = request, request.url or ""
        return response

    def close(self) -> None:
        pass


def vector(value: str) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, value]}]}}


def test_prometheus_is_registered() -> None:
    assert "prometheus" in known_types()
    with closing(build(ProviderConfig("prometheus", "http://prometheus.test:9090", timeout=3))) as source:
        assert isinstance(source, PrometheusProvider) and source.timeout == 3


def test_an_unknown_type_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(UnknownSourceError, match=r"unknown metric provider type 'nosuch'; known: .*prometheus"):
        build(ProviderConfig("nosuch", "https://metrics.example.com"))


def test_every_registered_type_has_rules_and_every_rule_a_builder() -> None:
    assert set(known_types()) == set(RULES)


def test_a_type_is_registered_once() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_kind(PROMETHEUS)


def test_the_provider_sends_through_the_session_it_is_given() -> None:
    session = requests.Session()
    adapter = CannedAdapter(200, vector("42.5"))
    # Longer than the provider's own mount on its address, so it wins.
    session.mount("http://prometheus.test:9090/api/", adapter)
    source: MetricSource = PrometheusProvider("http://prometheus.test:9090", session=session,
                                              auth=Auth(bearer_token="t0k"))
    assert source.query_value("up") == 42.5
    assert adapter.seen[0].headers["Authorization"] == "Bearer t0k"
    assert session.verify is True


def test_errors_through_an_injected_session_are_the_shared_outcomes() -> None:
    session = requests.Session()
    session.mount("http://prometheus.test:9090/api/",
                  CannedAdapter(400, {"status": "error", "errorType": "bad_data", "error": "parse error"}))
    with PrometheusProvider("http://prometheus.test:9090", session=session, retries=3) as source, \
            pytest.raises(BadQueryError, match="parse error") as caught:
        source.query_value("sum(")
    assert caught.value.status == 400 and caught.value.query == "sum("


class Answers(BaseAdapter):
    """Answers requests with the (status, body, headers) it is given, one after the other."""

    def __init__(self, *answers: tuple[int, Any, Mapping[str, str]]) -> None:
        super().__init__()
        self.answers = list(answers)
        self.seen: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        self.seen.append(request)
        status, body, headers = self.answers.pop(0)
        response = requests.Response()
        response.status_code = status
        response._content = (body if isinstance(body, str) else json.dumps(body)).encode()
        response.headers.update(headers)
        response.request, response.url = request, request.url or ""
        return response

    def close(self) -> None:
        pass


def api_with(*answers: tuple[int, Any, Mapping[str, str]], retries: int = 2) -> tuple[HttpApi, Answers, list[float]]:
    session = requests.Session()
    adapter = Answers(*answers)
    session.mount("https://vendor.test/", adapter)
    sleeps: list[float] = []
    api = HttpApi("Vendor", "https://vendor.test", headers={"DD-API-KEY": "k3y"}, retries=retries,
                  sleep=sleeps.append, session=session)
    return api, adapter, sleeps


def test_http_api_retries_rate_limits_honouring_retry_after() -> None:
    api, adapter, sleeps = api_with((429, {"errors": ["Rate limit exceeded"]}, {"Retry-After": "2"}),
                                    (200, {"value": 1}, {}))
    assert api.json("GET", "/api/v1/query", params={"q": "x"}) == {"value": 1}
    assert sleeps == [2.0] and adapter.seen[0].headers["DD-API-KEY"] == "k3y"


def test_http_api_waits_for_the_reset_header_a_vendor_documents() -> None:
    session = requests.Session()
    session.mount("https://vendor.test/", Answers((429, {"errors": ["Too many requests"]},
                                                   {"X-RateLimit-Reset": "7", "X-RateLimit-Period": "60"}),
                                                  (200, {"value": 1}, {})))
    sleeps: list[float] = []
    api = HttpApi("Datadog", "https://vendor.test", retry_after=("X-RateLimit-Reset", "Retry-After"),
                  max_backoff=10, sleep=sleeps.append, session=session)
    assert api.json("GET", "/api/v1/query") == {"value": 1}
    assert sleeps == [7.0]


def test_http_api_gives_up_on_rate_limits_after_its_retries() -> None:
    api, _, sleeps = api_with(*[(429, {"errors": ["Rate limit exceeded"]}, {})] * 3, retries=2)
    with pytest.raises(UnreachableError, match=r"Vendor at https://vendor.test is rate-limiting requests: "
                                               r'\["Rate limit exceeded"\] \(after 3 attempts\)'):
        api.json("GET", "/q", query="avg:x")
    assert sleeps == [0.5, 1.0]


def test_http_api_tells_refused_credentials_from_bad_queries() -> None:
    api, _, sleeps = api_with((403, {"errors": ["Forbidden"]}, {}), (400, {"error": "unknown metric foo"}, {}))
    with pytest.raises(AuthError, match=r"refused the credentials \(403\)") as refused:
        api.json("GET", "/q")
    assert "k3y" not in str(refused.value)
    with pytest.raises(BadQueryError, match="Vendor rejected the query \\(400\\): unknown metric foo") as bad:
        api.json("GET", "/q", query="foo")
    assert bad.value.query == "foo" and sleeps == []


def test_http_api_refuses_an_answer_that_is_not_json() -> None:
    api, _, _ = api_with((200, "<html>login</html>", {}))
    with pytest.raises(UnreachableError, match="did not answer like Vendor"):
        api.json("GET", "/q")
