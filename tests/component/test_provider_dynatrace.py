"""The `dynatrace` provider against a documented fake of Dynatrace's metrics API v2 on 127.0.0.1.

Dynatrace cannot run here: `tests.vendor_fakes.Dynatrace` is a real HTTP server that answers as
https://docs.dynatrace.com/docs/dynatrace-api/environment-api/metric-v2/get-data-points documents the
query endpoint (and https://docs.dynatrace.com/docs/dynatrace-api/basics/access-limit its 429), so
these tests check the provider against the documentation, not against Dynatrace. Dynatrace's values
are numbers or null (a slot without data points), never NaN: null is no data.
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
from tests.vendor_fakes import Dynatrace, FakeServer, closed_address, constant, serving, step_change

pytestmark = pytest.mark.component

QUERY = "builtin:service.response.time:filter(eq(dt.entity.service,SERVICE-ABCDEFG0123456789)):percentile(95)"
BY_SERVICE = "builtin:service.response.time:splitBy(dt.entity.service)"
# The regression starts at a whole ten minutes, half an hour ago or more.
REGRESSION = (int(time.time()) // 600) * 600 - 1800


def source(address: str, token: str = Dynatrace.TOKEN) -> MetricSource:
    return build(ProviderConfig("dynatrace", address, secret={"dynatrace_token": token},
                                template="istio-system/response-time-95pct", timeout=3, retries=1, interval=60))


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with serving(Dynatrace({QUERY: [step_change(210.0, 950.0, REGRESSION)], "builtin:nothing": [],
                            "builtin:gaps": [constant(None)], BY_SERVICE: [constant(100.0), constant(300.0)]})) as s:
        yield s


def test_an_instant_query_asks_one_point_over_ten_intervals_as_flagger_does(fake: FakeServer) -> None:
    """Documented fake: resolution=Inf over [at - 10 x interval, at] in milliseconds."""
    with closing(source(fake.url)) as dynatrace:
        assert dynatrace.query_value(QUERY, at=REGRESSION + 60) == 950.0
        assert dynatrace.query_value(QUERY, at=REGRESSION - 60) == 210.0
    sent = fake.queries("/api/v2/metrics/query")[-1]
    assert sent.params == {"metricSelector": QUERY, "resolution": "Inf",
                           "from": str((REGRESSION - 660) * 1000), "to": str((REGRESSION - 60) * 1000)}
    assert sent.headers["authorization"] == f"Api-Token {Dynatrace.TOKEN}"


def test_several_data_entries_give_the_last_as_in_flagger(fake: FakeServer) -> None:
    with closing(source(fake.url)) as dynatrace:
        assert dynatrace.query_value(BY_SERVICE) == 300.0
        with pytest.raises(AmbiguousResultError):
            dynatrace.query_range_series(BY_SERVICE, REGRESSION - 600, REGRESSION, 60)


def test_no_data_entries_and_null_values_are_no_data(fake: FakeServer) -> None:
    with closing(source(fake.url)) as dynatrace:
        with pytest.raises(NoDataError):
            dynatrace.query_value("builtin:nothing")
        with pytest.raises(NoDataError, match="null"):
            dynatrace.query_value("builtin:gaps")
        with pytest.raises(NoDataError):
            dynatrace.query_range_series("builtin:gaps", REGRESSION - 600, REGRESSION, 60)


def test_a_refused_token_is_an_auth_failure(fake: FakeServer) -> None:
    with closing(source(fake.url, token="dt0c01.WRONG")) as dynatrace:
        with pytest.raises(AuthError, match=r"Dynatrace at .* refused the credentials \(401\)") as refused:
            dynatrace.query_value(QUERY)
        assert "WRONG" not in str(refused.value)
        assert dynatrace.is_ready() is False


def test_a_selector_dynatrace_refuses_is_a_bad_query_with_its_violations(fake: FakeServer) -> None:
    with closing(source(fake.url)) as dynatrace, pytest.raises(BadQueryError, match="could not be parsed") as bad:
        dynatrace.query_value("builtin:service.response.time:filter(")
    assert bad.value.status == 400


def test_nothing_listening_is_unreachable() -> None:
    address = closed_address()
    with closing(source(address)) as dynatrace, pytest.raises(UnreachableError, match=f"Dynatrace at {address}"):
        dynatrace.query_value(QUERY)


def test_a_full_request_queue_is_retried_and_recovers(fake: FakeServer) -> None:
    fake.script.append(fake.vendor.rate_limited())
    with closing(source(fake.url)) as dynatrace:
        assert dynatrace.query_value(QUERY) == 950.0
    assert len(fake.requests) == 2


def test_a_rate_limit_that_lasts_is_unreachable(fake: FakeServer) -> None:
    fake.script.extend([fake.vendor.rate_limited()] * 2)
    with closing(source(fake.url)) as dynatrace, pytest.raises(UnreachableError, match="rate-limiting"):
        dynatrace.query_value(QUERY)


def test_is_ready_lists_one_metric(fake: FakeServer) -> None:
    with closing(source(fake.url)) as dynatrace:
        assert dynatrace.is_ready() is True
    assert fake.requests[-1].params == {"pageSize": "1"}


def test_the_address_is_required() -> None:
    with pytest.raises(ValueError, match=r"provider\.address"):
        source("")


def test_the_range_series_shows_the_regression_from_the_minute_it_started(fake: FakeServer) -> None:
    """Documented fake: p95 latency jumps from 210 to 950 ms at REGRESSION; the step is whole minutes."""
    with closing(source(fake.url)) as dynatrace:
        series = dynatrace.query_range_series(QUERY, REGRESSION - 600, REGRESSION + 600, 90)
    assert fake.requests[-1].params["resolution"] == "2m"
    assert np.all(np.diff(series.timestamps) == 120)
    assert series.timestamps[np.argmax(series.values > 500)] == REGRESSION
    assert set(series.values[series.timestamps < REGRESSION]) == {210.0}
    assert set(series.values[series.timestamps >= REGRESSION]) == {950.0}
