"""The `newrelic` provider against a documented fake of New Relic's Insights query API on 127.0.0.1.

New Relic cannot run here: `tests.vendor_fakes.NewRelic` is a real HTTP server that answers as
https://docs.newrelic.com/docs/apis/insights-apis/query-insights-event-data-api/ documents the API
Flagger uses (and https://docs.newrelic.com/docs/apis/rest-api-v2/basic-functions/api-overload-protection-handling-429-errors/
its 429), so these tests check the provider against the documentation, not against New Relic.
NRQL has no NaN in its JSON (a ratio over no events is null), so New Relic's outcomes are no data,
not NaN.
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
from tests.vendor_fakes import FakeServer, NewRelic, closed_address, constant, serving, step_change

pytestmark = pytest.mark.component

QUERY = ("SELECT filter(sum(nginx_ingress_controller_requests), WHERE status < '500') / "
         "sum(nginx_ingress_controller_requests) * 100 FROM Metric WHERE ingress = 'podinfo'")
REGRESSION = (int(time.time()) // 60) * 60 - 1800
SECRET = {"newrelic_account_id": NewRelic.ACCOUNT, "newrelic_query_key": NewRelic.QUERY_KEY}


def source(address: str, secret: dict[str, str] | None = None, interval: float = 120) -> MetricSource:
    return build(ProviderConfig("newrelic", address, secret=SECRET if secret is None else secret,
                                template="ingress-nginx/newrelic-error-rate", timeout=3, retries=1,
                                interval=interval))


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with serving(NewRelic({QUERY: [step_change(99.5, 90.0, REGRESSION)],
                           "SELECT average(duration) FROM Transaction": [constant(None)],
                           "SELECT count(*) FROM Transaction FACET host": [constant(1.0), constant(2.0)]})) as server:
        yield server


def test_an_instant_query_appends_flaggers_since_and_reads_the_result(fake: FakeServer) -> None:
    """Documented fake: `SINCE <interval> seconds ago` now, `SINCE <ms> UNTIL <ms>` at a past time."""
    with closing(source(fake.url)) as newrelic:
        assert newrelic.query_value(QUERY) == 90.0
        assert fake.requests[-1].params["nrql"] == f"{QUERY} SINCE 120 seconds ago"
        assert newrelic.query_value(QUERY, at=REGRESSION - 60) == 99.5
    sent = fake.requests[-1]
    assert sent.params["nrql"] == f"{QUERY} SINCE {(REGRESSION - 180) * 1000} UNTIL {(REGRESSION - 60) * 1000}"
    assert sent.path == f"/v1/accounts/{NewRelic.ACCOUNT}/query"
    assert sent.headers["x-query-key"] == NewRelic.QUERY_KEY


def test_a_null_result_is_no_data_and_a_facet_is_ambiguous(fake: FakeServer) -> None:
    with closing(source(fake.url)) as newrelic:
        with pytest.raises(NoDataError, match="no events"):
            newrelic.query_value("SELECT average(duration) FROM Transaction")
        with pytest.raises(AmbiguousResultError, match="FACET"):
            newrelic.query_value("SELECT count(*) FROM Transaction FACET host")


def test_a_refused_query_key_is_an_auth_failure(fake: FakeServer) -> None:
    with closing(source(fake.url, {**SECRET, "newrelic_query_key": "NRIQ-wrong"})) as newrelic:
        with pytest.raises(AuthError, match=r"New Relic at .* refused the credentials \(401\): Invalid query key") \
                as refused:
            newrelic.query_value(QUERY)
        assert "NRIQ-wrong" not in str(refused.value)
        assert newrelic.is_ready() is False


def test_nrql_that_does_not_parse_is_a_bad_query_with_new_relics_text(fake: FakeServer) -> None:
    with closing(source(fake.url)) as newrelic, pytest.raises(BadQueryError, match="NRQL Syntax Error"):
        newrelic.query_value("SELEC nothing")


def test_nothing_listening_is_unreachable() -> None:
    address = closed_address()
    with closing(source(address)) as newrelic, pytest.raises(UnreachableError, match=f"New Relic at {address}"):
        newrelic.query_value(QUERY)


def test_a_rate_limit_is_retried_and_recovers(fake: FakeServer) -> None:
    fake.script.append(fake.vendor.rate_limited())
    with closing(source(fake.url)) as newrelic:
        assert newrelic.query_value(QUERY) == 90.0
    assert len(fake.requests) == 2


def test_a_rate_limit_that_lasts_is_unreachable(fake: FakeServer) -> None:
    fake.script.extend([fake.vendor.rate_limited()] * 2)
    with closing(source(fake.url)) as newrelic, pytest.raises(UnreachableError, match="rate-limiting"):
        newrelic.query_value(QUERY)


def test_is_ready_runs_a_small_query(fake: FakeServer) -> None:
    with closing(source(fake.url)) as newrelic:
        assert newrelic.is_ready() is True


def test_the_account_id_must_be_a_number() -> None:
    with pytest.raises(ValueError, match="newrelic_account_id"):
        source("https://insights-api.newrelic.com", {**SECRET, "newrelic_account_id": "acme"})
    with pytest.raises(ValueError, match="newrelic_query_key"):
        source("https://insights-api.newrelic.com", {"newrelic_account_id": "1"})


def test_the_range_series_shows_the_regression_in_the_bucket_where_it_started(fake: FakeServer) -> None:
    """Documented fake: TIMESERIES buckets; the fall from 99.5 to 90 at REGRESSION is in the bucket that
    begins then, stamped with its end."""
    with closing(source(fake.url)) as newrelic:
        series = newrelic.query_range_series(QUERY, REGRESSION - 600, REGRESSION + 600, 60)
    assert fake.requests[-1].params["nrql"].endswith(
        f"SINCE {(REGRESSION - 600) * 1000} UNTIL {(REGRESSION + 600) * 1000} TIMESERIES 60 seconds")
    assert np.all(np.diff(series.timestamps) == 60)
    assert series.timestamps[np.argmax(series.values < 95)] == REGRESSION + 60
    assert set(series.values[series.timestamps <= REGRESSION]) == {99.5}
    assert set(series.values[series.timestamps > REGRESSION]) == {90.0}


def test_a_range_of_empty_buckets_is_no_data(fake: FakeServer) -> None:
    with closing(source(fake.url)) as newrelic, pytest.raises(NoDataError):
        newrelic.query_range_series("SELECT average(duration) FROM Transaction", REGRESSION - 600, REGRESSION, 60)
