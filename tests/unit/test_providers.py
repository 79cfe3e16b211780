"""The metric source registry, and a Prometheus provider speaking through an injected session."""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import closing
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter

from analysis.providers.base import BadQueryError, MetricSource
from analysis.providers.prometheus import Auth, PrometheusProvider
from analysis.providers.registry import UnknownSourceError, known_types, register, source_for


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
    with closing(source_for("prometheus", "http://prometheus.test:9090", timeout=3)) as source:
        assert isinstance(source, PrometheusProvider) and source.timeout == 3


def test_an_unknown_type_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(UnknownSourceError, match=r"unknown metric provider type 'datadog'; known: prometheus"):
        source_for("datadog", "https://api.datadoghq.com")


def test_a_type_is_registered_once() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register("prometheus", PrometheusProvider)


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
