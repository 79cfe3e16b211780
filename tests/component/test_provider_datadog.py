"""The `datadog` provider against a documented fake of Datadog's API on 127.0.0.1.

Datadog cannot run here: `tests.vendor_fakes.Datadog` is a real HTTP server that answers as
https://docs.datadoghq.com/api/latest/metrics/#query-timeseries-points documents the v1 query API
(and https://docs.datadoghq.com/api/latest/rate-limits/ its 429), so these tests check the provider
against the documentation, not against Datadog itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing

import numpy as np
import pytest

from analysis.providers.base import (
    AuthError,
    BadQueryError,
    MetricSource,
    NaNError,
    NoDataError,
    ProviderConfig,
    UnreachableError,
)
from analysis.providers.registry import build
from tests.vendor_fakes import Datadog, FakeServer, closed_address, constant, serving, step_change

pytestmark = pytest.mark.component

QUERY = "sum:trace.http.request.hits{service:podinfo,http.status_class:2xx}.as_count()"
# The regression starts at a whole minute half an hour ago.
REGRESSION = (int(time.time()) // 60) * 60 - 1800
SECRET = {"datadog_api_key": Datadog.API_KEY, "datadog_application_key": Datadog.APP_KEY}


def source(address: str, secret: dict[str, str] | None = None, retries: int = 2) -> MetricSource:
    return build(ProviderConfig("datadog", address, secret=SECRET if secret is None else secret,
                                template="monitoring/success-rate", timeout=3, retries=retries, interval=60))


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with serving(Datadog({QUERY: [step_change(99.5, 90.0, REGRESSION)],
                          "avg:none{*}": [], "avg:gaps{*}": [constant(None)],
                          "avg:by_pod{*} by {pod}": [constant(1.0), constant(2.0)]})) as server:
        yield server


def test_an_instant_query_takes_the_oldest_point_ten_intervals_back_as_flagger_does(fake: FakeServer) -> None:
    """Documented fake: the window is [at - 10 x interval, at] and the FIRST point is the value."""
    with closing(source(fake.url)) as datadog:
        # Ten minutes after the regression began, the oldest point of the window is its first minute.
        assert datadog.query_value(QUERY, at=REGRESSION + 600) == 90.0
        # Five minutes after, the window still starts before it: Flagger's pick reads the old value.
        assert datadog.query_value(QUERY, at=REGRESSION + 300) == 99.5
    sent = fake.queries("/api/v1/query")[-1]
    assert sent.params == {"from": str(REGRESSION - 300), "to": str(REGRESSION + 300), "query": QUERY}
    assert sent.headers["dd-api-key"] == Datadog.API_KEY
    assert sent.headers["dd-application-key"] == Datadog.APP_KEY


def test_several_series_give_the_first_as_in_flagger(fake: FakeServer) -> None:
    with closing(source(fake.url)) as datadog:
        assert datadog.query_value("avg:by_pod{*} by {pod}") == 1.0
        assert [s.values[0] for s in datadog.query("avg:by_pod{*} by {pod}")] == [1.0, 2.0]


def test_no_series_is_no_data_and_a_null_point_is_nan(fake: FakeServer) -> None:
    with closing(source(fake.url)) as datadog:
        with pytest.raises(NoDataError, match=f"^Datadog at {fake.url}: no data"):
            datadog.query_value("avg:none{*}")
        with pytest.raises(NaNError):
            datadog.query_value("avg:gaps{*}")


def test_refused_keys_are_an_auth_failure_that_never_shows_them(fake: FakeServer) -> None:
    with closing(source(fake.url, {"datadog_api_key": "wrong-key", "datadog_application_key": "wrong-app"})) as dd:
        with pytest.raises(AuthError, match=r"Datadog at http://127\.0\.0\.1:\d+ refused the credentials \(403\)") \
                as refused:
            dd.query_value(QUERY)
        assert "wrong-key" not in str(refused.value) and "wrong-key" not in repr(dd)
        assert dd.is_ready() is False


def test_a_query_datadog_cannot_parse_is_a_bad_query_with_its_text(fake: FakeServer) -> None:
    with closing(source(fake.url)) as datadog, pytest.raises(BadQueryError, match="Error parsing query") as bad:
        datadog.query_value("avg:{")
    assert bad.value.status == 400 and bad.value.query == "avg:{"


def test_nothing_listening_is_unreachable_naming_datadog_and_the_address() -> None:
    address = closed_address()
    with closing(source(address, retries=1)) as datadog, \
            pytest.raises(UnreachableError, match=f"Datadog at {address} is unreachable"):
        datadog.query_value(QUERY)


def test_a_rate_limit_waits_for_the_documented_reset_header_then_recovers(fake: FakeServer) -> None:
    fake.script.append(fake.vendor.rate_limited())
    started = time.monotonic()
    with closing(source(fake.url)) as datadog:
        assert datadog.query_value(QUERY, at=REGRESSION) == 99.5
    # X-RateLimit-Reset: 1 (seconds), not the 0.5 s default backoff.
    assert time.monotonic() - started >= 1.0
    assert len(fake.queries("/api/v1/query")) == 2


def test_a_rate_limit_that_lasts_is_unreachable(fake: FakeServer) -> None:
    fake.vendor.reset_seconds = 0  # type: ignore[attr-defined]
    fake.script.extend([fake.vendor.rate_limited()] * 3)
    with closing(source(fake.url, retries=2)) as datadog, \
            pytest.raises(UnreachableError, match=r"is rate-limiting requests.*\(after 3 attempts\)"):
        datadog.query_value(QUERY)


def test_is_ready_asks_the_key_validation_endpoint(fake: FakeServer) -> None:
    with closing(source(fake.url)) as datadog:
        assert datadog.is_ready() is True
    assert fake.queries("/api/v1/validate")


def test_a_missing_secret_key_is_named() -> None:
    with pytest.raises(ValueError, match="datadog_application_key"):
        source("https://api.datadoghq.com", {"datadog_api_key": "k"})


def test_the_range_series_shows_the_regression_from_the_minute_it_started(fake: FakeServer) -> None:
    """Documented fake: a window where the success rate falls from 99.5 to 90 at REGRESSION."""
    with closing(source(fake.url)) as datadog:
        series = datadog.query_range_series(QUERY, REGRESSION - 600, REGRESSION + 600, 60)
    assert series.timestamps[0] == REGRESSION - 600 and series.timestamps[-1] == REGRESSION + 600
    assert np.all(np.diff(series.timestamps) == 60)
    assert series.timestamps[np.argmax(series.values < 95)] == REGRESSION
    assert set(series.values[series.timestamps < REGRESSION]) == {99.5}
    assert set(series.values[series.timestamps >= REGRESSION]) == {90.0}
