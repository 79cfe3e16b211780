"""The influxdb provider: InfluxQL against a real InfluxDB, Flux against a documented fake.

InfluxQL: Debian's influxd (1.6, authentication on) gets forty minutes of 10-second points through
the line protocol: the canary `podinfo` serves 100 requests per point with 1 error until a known
instant and 10 after it, its primary 1 error in 200. Numbers read back through the provider are
computed from those counts.

Flux: Debian's InfluxDB 1.6 predates Flux (its /api/v2/query answers 404), so Flux is checked
against a local HTTP server on 127.0.0.1 that answers like InfluxDB 2's query API: annotated CSV
shaped as https://docs.influxdata.com/influxdb/v2/reference/syntax/annotated-csv/ shows (tables,
the `error,reference` table), and the error bodies of https://docs.influxdata.com/influxdb/v2/api/
(`{"code": "unauthorized", ...}`, `{"code": "invalid", ...}`). It records what it receives.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
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
from analysis.providers.influxdb import is_influxql
from analysis.providers.registry import build
from tests.metric_servers import InfluxDB, running_influxdb

pytestmark = pytest.mark.component

STEP = 10
END = (int(time.time()) // 60) * 60 - 120
FIRST = END - 40 * 60
BAD_AT = FIRST + 25 * 60
ERROR_PERCENT = ("SELECT sum(\"errors\") * 100 / sum(\"total\") FROM \"requests\" WHERE \"app\" = '{target}' "
                 "AND time > now() - 1m AND time <= now()")


def _lines() -> list[str]:
    lines = []
    for t in range(FIRST, END + 1, STEP):
        lines += [f"requests,app=podinfo total=100,errors={10 if t >= BAD_AT else 1} {t}",
                  f"requests,app=podinfo-primary total=200,errors=1 {t}"]
    lines.append(f"gaps ok=5 {END}")  # a measurement without the `errors` field
    return lines


@pytest.fixture(scope="module")
def influxdb() -> Iterator[InfluxDB]:
    with running_influxdb() as server:
        server.write(_lines())
        yield server


def influxql(server: InfluxDB, **secret: str) -> MetricSource:
    secret = secret or {"username": server.username, "password": server.password}
    return build(ProviderConfig("influxdb", server.url, secret=secret, options={"database": server.database},
                                timeout=5, retries=0))


@pytest.fixture
def source(influxdb: InfluxDB) -> Iterator[MetricSource]:
    provider = influxql(influxdb)
    yield provider
    provider.close()


def test_the_language_is_told_by_the_first_word() -> None:
    assert is_influxql("SELECT 1") and is_influxql("  -- errors\n select x from y") and is_influxql("SHOW DATABASES")
    assert not is_influxql('from(bucket: "m") |> range(start: -1m)')
    assert not is_influxql('import "math"\nfrom(bucket: "m")')


def test_influxql_values_at_instants(source: MetricSource) -> None:
    assert source.query_value(ERROR_PERCENT.format(target="podinfo"), at=BAD_AT - 30) == pytest.approx(1.0)
    assert source.query_value(ERROR_PERCENT.format(target="podinfo"), at=BAD_AT + 60) == pytest.approx(10.0)
    assert source.query_value(ERROR_PERCENT.format(target="podinfo-primary"), at=END) == pytest.approx(0.5)


def test_influxql_range_over_the_window_shows_the_regression(source: MetricSource) -> None:
    start = FIRST + 120
    canary = source.query_range_series(ERROR_PERCENT.format(target="podinfo"), start, END, 60)
    assert len(canary.values) == (END - start) // 60 + 1
    by_time = dict(zip(canary.timestamps.tolist(), canary.values.tolist(), strict=True))
    # The minute ending at BAD_AT holds one bad point of six.
    assert by_time[BAD_AT - 60] == pytest.approx(1.0) and by_time[BAD_AT] == pytest.approx(2.5)
    failing = canary.timestamps[canary.values > 5]
    assert failing[0] == BAD_AT + 60 and (failing > BAD_AT).all()
    np.testing.assert_allclose(canary.values[canary.timestamps < BAD_AT], 1.0)


def test_influxql_no_series_is_no_data(source: MetricSource) -> None:
    with pytest.raises(NoDataError, match=r"InfluxDB at http://127\.0\.0\.1:\d+: no data"):
        source.query_value(ERROR_PERCENT.format(target="nosuch"), at=END)


def test_influxql_a_null_value_is_nan(source: MetricSource) -> None:
    with pytest.raises(NaNError, match=r"InfluxDB at .*NaN"):
        source.query_value("SELECT mean(errors), mean(ok) FROM gaps WHERE time > now() - 5m AND time <= now()", at=END)


def test_influxql_several_series_are_ambiguous(source: MetricSource) -> None:
    with pytest.raises(AmbiguousResultError, match="2 series"):
        source.query_value("SELECT sum(errors) FROM requests WHERE time > now() - 1m AND time <= now() GROUP BY app",
                           at=END)


def test_influxql_a_parse_error_is_a_bad_query(source: MetricSource) -> None:
    with pytest.raises(BadQueryError, match=r"InfluxDB rejected the query.*error parsing query"):
        source.query_value("SELECT sum(errors FROM requests")


def test_influxql_an_unknown_database_is_a_bad_query(influxdb: InfluxDB) -> None:
    source = build(ProviderConfig("influxdb", influxdb.url, options={"database": "nosuch"}, retries=0,
                                  secret={"username": influxdb.username, "password": influxdb.password}))
    with pytest.raises(BadQueryError, match="database not found: nosuch"):
        source.query_value(ERROR_PERCENT.format(target="podinfo"))


def test_influxql_wrong_credentials_are_refused(influxdb: InfluxDB) -> None:
    source = influxql(influxdb, username=influxdb.username, password="wrong-pass")
    with pytest.raises(AuthError, match=r"InfluxDB at http://127\.0\.0\.1:\d+ refused the credentials \(401\)") as e:
        source.query_value(ERROR_PERCENT.format(target="podinfo"))
    assert "wrong-pass" not in str(e.value)
    with pytest.raises(AuthError):
        influxql(influxdb, username="", password="").query_value(ERROR_PERCENT.format(target="podinfo"))


def test_is_ready(source: MetricSource) -> None:
    assert source.is_ready()


def test_influxql_a_stopped_server_is_unreachable(influxdb: InfluxDB, source: MetricSource) -> None:
    # Last of the InfluxQL tests: it stops the server.
    influxdb.process.stop()
    with pytest.raises(UnreachableError, match=r"InfluxDB at http://127\.0\.0\.1:\d+ is unreachable"):
        source.query_value(ERROR_PERCENT.format(target="podinfo"))
    assert not source.is_ready()


# ------------------------------------------------------------------------------------------- Flux

TOKEN = "flux-t0ken"
# Shaped as the annotated CSV documentation shows it; `{value}` and `{time}` are filled in.
ONE_TABLE = """#group,false,false,true,true,false,false,true,true,true
#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string
#default,_result,,,,,,,,
,result,table,_start,_stop,_time,_value,_field,_measurement,app
,,0,2022-12-31T05:41:24Z,{time},{time},{value},errors,requests,podinfo

"""
TWO_TABLES = """#group,false,false,true,true,false,false,true,true,true,true
#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string,string
#default,mean,,,,,,,,,
,result,table,_start,_stop,_time,_value,_field,_measurement,host,region
,,0,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:52:00Z,15.43,mem,m,A,east
,,1,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:52:00Z,59.25,mem,m,B,east

"""
ERROR_TABLE = """#datatype,string,string
#group,true,true
#default,,
,error,reference
,failed to execute query: out of memory,897

"""


class FluxAPI(http.server.BaseHTTPRequestHandler):
    """InfluxDB 2's POST /api/v2/query: the answer depends on the query's text."""

    seen: ClassVar[list[tuple[dict[str, str], dict[str, Any], str]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((dict(self.headers), body, self.path))
        query: str = body["query"]
        if self.headers.get("Authorization") != f"Token {TOKEN}":
            self._answer(401, "application/json",
                         json.dumps({"code": "unauthorized", "message": "unauthorized access"}))
        elif "syntax" in query:
            self._answer(400, "application/json", json.dumps(
                {"code": "invalid", "message": "compilation failed: error at @1:1-1:7: invalid expression"}))
        elif "nothing" in query:
            self._answer(200, "text/csv; charset=utf-8", "\r\n")
        elif "two" in query:
            self._answer(200, "text/csv; charset=utf-8", TWO_TABLES)
        elif "oom" in query:
            self._answer(200, "text/csv; charset=utf-8", ERROR_TABLE)
        else:
            value = {"nan": "NaN", "null": ""}.get(query.split('"')[1], "2.5")
            self._answer(200, "text/csv; charset=utf-8",
                         ONE_TABLE.format(value=value, time=body.get("now", "2023-01-31T05:41:24.001Z")))

    def _answer(self, status: int, content_type: str, text: str) -> None:
        data = text.replace("\n", "\r\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def flux_api() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FluxAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def flux(url: str, token: str = TOKEN) -> MetricSource:
    return build(ProviderConfig("influxdb", url, secret={"token": token, "org": "my-org"}, retries=0))


def test_flux_sends_flaggers_request_and_reads_the_first_record(flux_api: str) -> None:
    FluxAPI.seen.clear()
    query = 'from(bucket: "value") |> range(start: -1m) |> sum()'
    assert flux(flux_api).query_value(query) == 2.5
    headers, body, path = FluxAPI.seen[-1]
    assert path == "/api/v2/query?org=my-org" and body["query"] == query and body["type"] == "flux"
    assert headers["Accept"] == "application/csv" and "now" not in body


def test_flux_at_an_instant_sets_the_query_apis_now(flux_api: str) -> None:
    source = flux(flux_api)
    series = source.query('from(bucket: "value") |> range(start: -1m) |> sum()', at=1_700_000_000)
    assert FluxAPI.seen[-1][1]["now"] == "2023-11-14T22:13:20.000000Z"
    assert series[0].timestamps[0] == 1_700_000_000 and series[0].labels == {"_field": "errors",
                                                                            "_measurement": "requests",
                                                                            "app": "podinfo"}
    ranged = source.query_range_series('from(bucket: "value") |> range(start: -1m)', 1_700_000_000,
                                       1_700_000_120, 60)
    assert ranged.timestamps.tolist() == [1_700_000_000, 1_700_000_060, 1_700_000_120]
    assert ranged.values.tolist() == [2.5, 2.5, 2.5]


@pytest.mark.parametrize(("query", "outcome", "message"), [
    ('from(bucket: "nothing")', NoDataError, "no data"),
    ('from(bucket: "nan")', NaNError, "NaN"),
    ('from(bucket: "null")', NaNError, "NaN"),
    ('from(bucket: "two")', AmbiguousResultError, "2 series"),
    ('from(bucket: "syntax")', BadQueryError, r"\(400\): compilation failed"),
    ('from(bucket: "oom")', BadQueryError, "out of memory"),
])
def test_flux_outcomes(flux_api: str, query: str, outcome: type[Exception], message: str) -> None:
    with pytest.raises(outcome, match=message):
        flux(flux_api).query_value(query)


def test_flux_a_wrong_token_is_refused_without_showing_it(flux_api: str) -> None:
    with pytest.raises(AuthError, match="refused the credentials \\(401\\): unauthorized access") as caught:
        flux(flux_api, token="wrong-t0ken").query_value('from(bucket: "value")')
    assert "wrong-t0ken" not in str(caught.value)
