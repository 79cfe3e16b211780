"""The `splunk` provider against a documented fake of Splunk Observability Cloud's SignalFlow API.

Splunk Observability Cloud cannot run here: `tests.vendor_fakes.Splunk` is a real HTTP server on
127.0.0.1 that answers as https://dev.splunk.com/observability/reference/api/signalflow/latest
documents `POST /v2/signalflow/execute` (a Server-Sent Events stream of the messages that
https://dev.splunk.com/observability/docs/signalflow/messages describes) and `GET /v2/metric`, with
the 401 and 429 answers of the API. SignalFlow values are numbers or null; Flagger drops nulls, so a
program that publishes only nulls is no data, and there is no NaN outcome.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing

import numpy as np
import pytest

from analysis.providers.base import (
    AmbiguousResultError,
    AuthError,
    BadQueryError,
    MetricSource,
    NoDataError,
    ProviderConfig,
    UnreachableError,
)
from analysis.providers.registry import build
from analysis.providers.splunk import api_address, stream_address
from tests.vendor_fakes import FakeServer, Splunk, closed_address, constant, serving, step_change

pytestmark = pytest.mark.component

# Flagger's documented example (docs/gitbook/usage/metrics.md, "Splunk").
QUERY = """total = data('traces.count', filter=filter('sf_service', 'podinfo')).sum().publish(enable=False)
success = data('traces.count', filter=filter('sf_service', 'podinfo') and filter('sf_error', 'false')).sum().publish(enable=False)
((success/total) * 100).publish()"""  # noqa: E501
REGRESSION = (int(time.time()) // 60) * 60 - 1800


def source(address: str, token: str = Splunk.TOKEN) -> MetricSource:
    return build(ProviderConfig("splunk", address, secret={"sf_token_key": token},
                                template="istio-system/success-rate", timeout=3, retries=1, interval=60))


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with serving(Splunk({QUERY: [step_change(99.5, 90.0, REGRESSION)], "data('nothing').publish()": [],
                         "data('gaps').publish()": [constant(None)],
                         "data('traces.count').publish()": [constant(1.0), constant(2.0)]})) as server:
        yield server


def test_the_api_address_becomes_the_stream_address_as_in_flagger() -> None:
    assert stream_address("https://api.us1.signalfx.com") == "https://stream.us1.signalfx.com"
    assert stream_address("wss://stream.eu0.signalfx.com") == "https://stream.eu0.signalfx.com"
    assert api_address("wss://stream.eu0.signalfx.com") == "https://api.eu0.signalfx.com"


def test_an_instant_query_runs_ten_intervals_and_takes_the_last_value(fake: FakeServer) -> None:
    """Documented fake: start/stop in ms, immediate=true, the program as the text/plain body."""
    with closing(source(fake.url)) as splunk:
        assert splunk.query_value(QUERY, at=REGRESSION + 60) == 90.0
        assert splunk.query_value(QUERY, at=REGRESSION - 60) == 99.5
    sent = fake.queries("/v2/signalflow/execute")[-1]
    assert sent.params == {"start": str((REGRESSION - 660) * 1000), "stop": str((REGRESSION - 60) * 1000),
                           "immediate": "true"}
    assert sent.body.decode() == QUERY
    assert sent.headers["x-sf-token"] == Splunk.TOKEN and sent.headers["content-type"] == "text/plain"


def test_no_values_are_no_data_and_several_time_series_are_refused(fake: FakeServer) -> None:
    with closing(source(fake.url)) as splunk:
        with pytest.raises(NoDataError):
            splunk.query_value("data('nothing').publish()")
        with pytest.raises(NoDataError):
            splunk.query_value("data('gaps').publish()")
        with pytest.raises(AmbiguousResultError, match="2 time series"):
            splunk.query_value("data('traces.count').publish()")


def test_a_refused_token_is_an_auth_failure(fake: FakeServer) -> None:
    with closing(source(fake.url, token="sf-wrong")) as splunk:
        with pytest.raises(AuthError, match=r"Splunk Observability at .* refused the credentials \(401\)") as refused:
            splunk.query_value(QUERY)
        assert "sf-wrong" not in str(refused.value)
        assert splunk.is_ready() is False


def test_a_program_that_does_not_compile_is_a_bad_query(fake: FakeServer) -> None:
    with closing(source(fake.url)) as splunk, \
            pytest.raises(BadQueryError, match="ANALYTICS_PROGRAM_COMPILATION_ERROR"):
        splunk.query_value("data('x'.publish(")


def test_nothing_listening_is_unreachable() -> None:
    address = closed_address()
    with closing(source(address)) as splunk, \
            pytest.raises(UnreachableError, match=f"Splunk Observability at {address} is unreachable"):
        splunk.query_value(QUERY)


def test_a_rate_limit_is_retried_and_recovers(fake: FakeServer) -> None:
    fake.script.append(fake.vendor.rate_limited())
    with closing(source(fake.url)) as splunk:
        assert splunk.query_value(QUERY) == 90.0
        fake.script.extend([fake.vendor.rate_limited()] * 2)
        with pytest.raises(UnreachableError, match="rate-limiting"):
            splunk.query_value(QUERY)


def test_is_ready_reads_one_metric(fake: FakeServer) -> None:
    with closing(source(fake.url)) as splunk:
        assert splunk.is_ready() is True
    assert fake.requests[-1].path == "/v2/metric" and fake.requests[-1].params == {"limit": "1"}


def test_the_address_and_token_are_required() -> None:
    with pytest.raises(ValueError, match=r"provider\.address"):
        source("")
    with pytest.raises(ValueError, match="sf_token_key"):
        build(ProviderConfig("splunk", "https://api.us1.signalfx.com"))


def test_the_range_series_shows_the_regression_from_the_minute_it_started(fake: FakeServer) -> None:
    """Documented fake: the success rate falls from 99.5 to 90 at REGRESSION; the step is the resolution."""
    with closing(source(fake.url)) as splunk:
        series = splunk.query_range_series(QUERY, REGRESSION - 600, REGRESSION + 600, 60)
    assert fake.requests[-1].params["resolution"] == "60000"
    assert series.labels["sf_service"] == "svc-0"
    assert series.timestamps[0] == REGRESSION - 600 and np.all(np.diff(series.timestamps) == 60)
    assert series.timestamps[np.argmax(series.values < 95)] == REGRESSION
    assert set(series.values[series.timestamps < REGRESSION]) == {99.5}
