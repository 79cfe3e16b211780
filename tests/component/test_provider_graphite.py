"""The graphite provider against a real Graphite: Debian's carbon-cache and graphite-web.

Forty minutes of 10-second points go in through carbon's plaintext protocol: the canary `podinfo`
serves 100 requests per point with 1 error until a known instant and 10 after it, its primary
keeps 1 error in 200. The numbers read back through the provider (built from a ProviderConfig as
a MetricTemplate would give it) are computed from those counts. graphite-web has no
authentication of its own (it is put behind a proxy for that), so refused credentials are checked
in tests/unit/test_provider_graphite.py against a canned answer; the server is stopped last to
check the unreachable outcome.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from analysis.providers.base import (
    AmbiguousResultError,
    BadQueryError,
    MetricSource,
    NaNError,
    NoDataError,
    ProviderConfig,
    UnreachableError,
)
from analysis.providers.registry import build
from tests.metric_servers import Graphite, running_graphite

pytestmark = pytest.mark.component

STEP = 10
END = (int(time.time()) // 60) * 60 - 120
FIRST = END - 40 * 60
BAD_AT = FIRST + 25 * 60  # the canary's errors go from 1% to 10% from here on
ERROR_PERCENT = "target=asPercent(sumSeries(app.{target}.errors), sumSeries(app.{target}.requests))&from=-1min"


def _lines() -> list[str]:
    lines = []
    for t in range(FIRST, END + 1, STEP):
        lines += [f"app.podinfo.requests 100 {t}", f"app.podinfo.errors {10 if t >= BAD_AT else 1} {t}",
                  f"app.podinfo-primary.requests 200 {t}", f"app.podinfo-primary.errors 1 {t}", f"app.zero 0 {t}"]
    return lines


@pytest.fixture(scope="module")
def graphite() -> Iterator[Graphite]:
    with running_graphite() as server:
        server.send(_lines())
        yield server


@pytest.fixture
def source(graphite: Graphite) -> Iterator[MetricSource]:
    provider = build(ProviderConfig("graphite", graphite.url, template="test/error-percent", timeout=5, retries=0))
    yield provider
    provider.close()


def test_the_value_is_the_last_point_before_the_instant_asked_for(source: MetricSource) -> None:
    assert source.query_value(ERROR_PERCENT.format(target="podinfo"), at=BAD_AT - 30) == pytest.approx(1.0)
    assert source.query_value(ERROR_PERCENT.format(target="podinfo"), at=BAD_AT + 30) == pytest.approx(10.0)
    assert source.query_value(ERROR_PERCENT.format(target="podinfo-primary"), at=END) == pytest.approx(0.5)


def test_whitespace_in_the_template_is_collapsed_as_flagger_does(source: MetricSource) -> None:
    query = """
        target=asPercent(
            sumSeries(app.podinfo.errors),
            sumSeries(app.podinfo.requests)
        )
        &from=-2min
    """
    assert source.query_value(query, at=END) == pytest.approx(10.0)


def test_a_range_over_the_window_shows_the_regression_at_its_start(source: MetricSource) -> None:
    start = FIRST + 120
    canary = source.query_range_series(ERROR_PERCENT.format(target="podinfo"), start, END, 60)
    primary = source.query_range_series(ERROR_PERCENT.format(target="podinfo-primary"), start, END, 60)
    assert len(canary.values) == (END - start) // 60 + 1
    # A threshold check of "at most 5%" every minute fails first at the first minute after BAD_AT.
    failing = canary.timestamps[canary.values > 5]
    assert failing[0] == BAD_AT and (failing >= BAD_AT).all()
    np.testing.assert_allclose(canary.values[canary.timestamps < BAD_AT], 1.0)
    np.testing.assert_allclose(primary.values, 0.5)


def test_no_series_is_no_data(source: MetricSource) -> None:
    with pytest.raises(NoDataError, match=r"Graphite at http://127\.0\.0\.1:\d+: no data"):
        source.query_value("target=app.nosuch.errors&from=-5min", at=END)


def test_a_division_by_zero_is_nan(source: MetricSource) -> None:
    # Graphite writes NaN (here 1/0) as null.
    with pytest.raises(NaNError, match=r"Graphite at .*NaN"):
        source.query_value("target=divideSeries(app.podinfo.errors, app.zero)&from=-5min", at=END)


def test_a_window_without_points_is_nan_not_a_number(source: MetricSource) -> None:
    with pytest.raises(NaNError):
        source.query_value("target=app.podinfo.errors&from=-5min", at=FIRST - 3600)


def test_several_targets_where_one_value_is_asked_for_are_ambiguous(source: MetricSource) -> None:
    with pytest.raises(AmbiguousResultError, match="2 series"):
        source.query_value("target=app.podinfo*.errors&from=-5min", at=END)
    assert len(source.query("target=app.podinfo*.errors&from=-5min", at=END)) == 2


def test_an_unknown_function_is_a_bad_query_with_graphites_words(source: MetricSource) -> None:
    with pytest.raises(BadQueryError, match=r"Graphite rejected the query \(400\).*unknown function: nosuchfn"):
        source.query_value("target=nosuchfn(app.podinfo.errors)")


def test_is_ready(source: MetricSource) -> None:
    assert source.is_ready()


def test_a_stopped_server_is_unreachable(graphite: Graphite, source: MetricSource) -> None:
    # Last in the module: it stops the server.
    graphite.web.stop()
    with pytest.raises(UnreachableError, match=r"Graphite at http://127\.0\.0\.1:\d+ is unreachable"):
        source.query_value(ERROR_PERCENT.format(target="podinfo"))
    assert not source.is_ready()
