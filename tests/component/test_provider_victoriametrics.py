"""VictoriaMetrics as a second PromQL source: the prometheus provider against Debian's victoria-metrics.

A MetricTemplate of type `prometheus` whose address is a VictoriaMetrics server works unchanged:
VictoriaMetrics serves Prometheus' query API (`/api/v1/query`, `/api/v1/query_range`). Forty minutes
of 15-second counter samples are imported through `/api/v1/import/prometheus`: the canary `podinfo`
answers 200 requests per sample with 2 errors until a known instant and 20 after it; the numbers
read back are computed from those counts. vmauth (from the same package) stands in front with basic
auth for the refused-credentials outcome. The incident of tests/component/test_analyze.py is
imported too, and `rollout analyze --prometheus <VictoriaMetrics>` must decide as it does on
Prometheus.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from analysis.providers.base import (
    AuthError,
    BadQueryError,
    MetricSource,
    MetricSourceError,
    NoDataError,
    ProviderConfig,
    UnreachableError,
)
from analysis.providers.registry import build
from rollout.cli import main
from tests.component import test_analyze as incident
from tests.metric_servers import VictoriaMetrics, running_victoria_metrics

pytestmark = pytest.mark.component

STEP = 15
END = (int(time.time()) // 60) * 60 - 120
FIRST = END - 40 * 60
BAD_AT = FIRST + 25 * 60
ERROR_PERCENT = ('sum(rate(http_requests_total{{app="{target}",code="500"}}[1m])) * 100 '
                 '/ sum(rate(http_requests_total{{app="{target}"}}[1m]))')


def _exposition() -> str:
    lines = []
    totals = {"podinfo": [0, 0], "podinfo-primary": [0, 0]}
    for t in range(FIRST, END + 1, STEP):
        for app, counts in totals.items():
            bad = app == "podinfo" and t >= BAD_AT
            counts[0] += 180 if bad else 198
            counts[1] += 20 if bad else 2
            lines.append(f'http_requests_total{{app="{app}",code="200"}} {counts[0]} {t * 1000}')
            lines.append(f'http_requests_total{{app="{app}",code="500"}} {counts[1]} {t * 1000}')
        lines.append(f'idle_requests_total{{app="idle"}} 7 {t * 1000}')
    return "\n".join(lines) + "\n"


def _incident() -> str:
    """test_analyze's incident (OpenMetrics, seconds) as Prometheus text with milliseconds."""
    lines = []
    for line in incident._openmetrics().splitlines():
        if line and not line.startswith("#"):
            series, value, stamp = line.rsplit(" ", 2)
            lines.append(f"{series} {value} {int(stamp) * 1000}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def victoria() -> Iterator[VictoriaMetrics]:
    with running_victoria_metrics() as server:
        server.import_prometheus(_exposition())
        server.import_prometheus(_incident())
        yield server


@pytest.fixture
def source(victoria: VictoriaMetrics) -> Iterator[MetricSource]:
    provider = build(ProviderConfig("prometheus", victoria.url, timeout=5, retries=0))
    yield provider
    provider.close()


def test_instant_values(source: MetricSource) -> None:
    assert source.query_value(ERROR_PERCENT.format(target="podinfo"), at=BAD_AT - 60) == pytest.approx(1.0)
    assert source.query_value(ERROR_PERCENT.format(target="podinfo"), at=BAD_AT + 120) == pytest.approx(10.0)
    assert source.query_value(ERROR_PERCENT.format(target="podinfo-primary"), at=END) == pytest.approx(1.0)


def test_a_range_over_the_window_shows_the_regression(source: MetricSource) -> None:
    start = FIRST + 120
    canary = source.query_range_series(ERROR_PERCENT.format(target="podinfo"), start, END, 60)
    primary = source.query_range_series(ERROR_PERCENT.format(target="podinfo-primary"), start, END, 60)
    assert canary.timestamps[0] == start and canary.timestamps[-1] == END
    before, after = canary.timestamps < BAD_AT, canary.timestamps >= BAD_AT + 60
    np.testing.assert_allclose(canary.values[before], 1.0)
    np.testing.assert_allclose(canary.values[after], 10.0)
    np.testing.assert_allclose(primary.values, 1.0)


def test_no_series_is_no_data(source: MetricSource) -> None:
    with pytest.raises(NoDataError, match="no data"):
        source.query_value(ERROR_PERCENT.format(target="nosuch"), at=END)


def test_zero_over_zero_is_no_data_here(source: MetricSource) -> None:
    # Unlike Prometheus (which answers NaN, see test_prometheus.py), VictoriaMetrics drops NaN
    # results from its answers, so 0/0 comes back as no series at all.
    query = 'sum(rate(idle_requests_total[1m])) / sum(rate(idle_requests_total[1m]))'
    with pytest.raises(NoDataError):
        source.query_value(query, at=END)


def test_a_parse_error_is_a_bad_query(source: MetricSource) -> None:
    with pytest.raises(BadQueryError, match="Prometheus rejected the query") as caught:
        source.query_value("sum(rate(http_requests_total[1m])")
    assert caught.value.status in (400, 422)


def test_through_vmauth_with_basic_auth(victoria: VictoriaMetrics) -> None:
    good = build(ProviderConfig("prometheus", victoria.auth_url, retries=0,
                                secret={"username": victoria.username, "password": victoria.password}))
    assert good.query_value(ERROR_PERCENT.format(target="podinfo"), at=END) == pytest.approx(10.0)
    anonymous = build(ProviderConfig("prometheus", victoria.auth_url, retries=0))
    with pytest.raises(AuthError, match=r"refused the credentials \(401\)"):
        anonymous.query_value(ERROR_PERCENT.format(target="podinfo"), at=END)
    # vmauth 1.79 answers unknown credentials with 400 and echoes the Authorization header it got.
    bad = build(ProviderConfig("prometheus", victoria.auth_url, retries=0,
                               secret={"username": victoria.username, "password": "wrong-pass"}))
    with pytest.raises(MetricSourceError, match="auth token") as caught:
        bad.query_value(ERROR_PERCENT.format(target="podinfo"), at=END)
    echoed = base64.b64encode(f"{victoria.username}:wrong-pass".encode()).decode()
    assert "wrong-pass" not in str(caught.value) and echoed not in str(caught.value)


def test_rollout_analyze_replays_the_incident_from_victoria_metrics(
    victoria: VictoriaMetrics, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The replay of tests/component/test_analyze.py, with VictoriaMetrics as `--prometheus`."""
    args = ["analyze", "-f", str(incident.canary_file(tmp_path, "podinfo")), "--prometheus", victoria.url,
            "--start", str(incident.START), "--end", str(incident.END)]
    code = main(args)
    out = capsys.readouterr().out.splitlines()
    assert code == 3 and out[-1].startswith(f"rollback at {incident.at(360)} ("), out
    lines = {line.split()[0]: line for line in out[:-1]}
    assert lines[incident.at(240)].endswith("advance") and lines[incident.at(300)].endswith("hold")
    code = main([*args[:2], str(incident.canary_file(tmp_path, "stable")), *args[3:]])
    assert code == 0 and capsys.readouterr().out.splitlines()[-1] == f"promote at {incident.at(360)}"


def test_a_stopped_server_is_unreachable(victoria: VictoriaMetrics, source: MetricSource) -> None:
    # Last in the module: it stops the server.
    victoria.process.stop()
    with pytest.raises(UnreachableError, match=r"Prometheus at http://127\.0\.0\.1:\d+ is unreachable"):
        source.query_value(ERROR_PERCENT.format(target="podinfo"))
