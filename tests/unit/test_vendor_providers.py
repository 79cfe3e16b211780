"""The pure parts of the vendor providers: answers to numbers, addresses, windows and the web fields."""

from __future__ import annotations

import math

import pytest

from analysis.providers.base import AmbiguousResultError, BadQueryError, NoDataError, UnreachableError
from analysis.providers.newrelic import _result
from analysis.providers.points import first_value, named, seconds, series, window
from analysis.providers.splunk import api_address, stream_address
from analysis.providers.stackdriver import _number, _time, _within
from analysis.providers.web_options import check_options, compile_path, resolve_headers


def test_series_sorts_points_and_turns_null_into_nan() -> None:
    found = series({"a": "b"}, [(120_000 / 1000, None), (60.0, 1.5)])
    assert list(found.timestamps) == [60.0, 120.0]
    assert found.values[0] == 1.5 and math.isnan(found.values[1])


def test_window_and_step() -> None:
    assert window(1000.0, 600, clock=lambda: 0.0) == (400.0, 1000.0)
    assert window(None, 60, clock=lambda: 5000.0) == (4940.0, 5000.0)
    with pytest.raises(ValueError, match="positive"):
        seconds(0)


def test_first_value_needs_a_point() -> None:
    with pytest.raises(NoDataError):
        first_value([series({}, [])], "q", None)
    assert first_value([series({}, [(1.0, 2.0)]), series({}, [(1.0, 3.0)])], "q", None) == 2.0


def test_named_prefixes_the_backend_once() -> None:
    with pytest.raises(NoDataError, match=r"^Dynatrace at https://x\.live: no data$"), named("Dynatrace", "https://x.live"):
        raise NoDataError("no data")
    with pytest.raises(UnreachableError, match=r"^https://x\.live is down$"), named("Dynatrace", "https://x.live"):
        raise UnreachableError("https://x.live is down")


def test_new_relic_results() -> None:
    assert _result([{"result": 99.5}], "q") == 99.5
    assert _result([{"average": 12}], "q") == 12.0
    assert _result([{"average": None}], "q") is None
    with pytest.raises(AmbiguousResultError):
        _result([{"result": 1}, {"result": 2}], "q")
    with pytest.raises(BadQueryError, match="AS result"):
        _result([{"percentiles": {"95": 1.2}}], "q")


def test_google_points() -> None:
    # Google writes RFC 3339 with up to nanoseconds; proto3 JSON writes int64 as a string and NaN as "NaN".
    assert _time({"timeInterval": {"endTime": "2020-07-29T17:40:00.123456789Z"}}) == pytest.approx(1596044400.123456)
    assert _time({"timeInterval": {"endTime": "2020-07-29T17:40:00Z"}}) == 1596044400.0
    assert _number({"values": [{"int64Value": "42"}]}, "q") == 42.0
    assert math.isnan(_number({"values": [{"doubleValue": "NaN"}]}, "q") or 0)
    with pytest.raises(BadQueryError, match="distributionValue"):
        _number({"values": [{"distributionValue": {}}]}, "q")
    assert _within("fetch x\n", 1596044400, 1596048000).endswith(
        "fetch x\n| within d'2020/07/29-17:40:00', d'2020/07/29-18:40:00'")


def test_splunk_addresses_follow_flagger() -> None:
    assert stream_address("https://api.jp0.signalfx.com/") == "https://stream.jp0.signalfx.com/"
    assert stream_address("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert api_address("https://stream.us1.signalfx.com") == "https://api.us1.signalfx.com"


def test_web_json_paths_and_headers() -> None:
    assert compile_path("{$.data.value}").find({"data": {"value": 3}})[0].value == 3
    assert [m.value for m in compile_path("$.items[?(@.name == 'p99')].v").find(
        {"items": [{"name": "p50", "v": 1}, {"name": "p99", "v": 9}]})] == [9]
    assert check_options({"jsonPath": "$.x", "method": "put"}) == []
    assert resolve_headers([{"key": "A", "value": "1"}, {"key": "B", "valueFrom": {"secretKeyRef": {"key": "b"}}}],
                           {"b": "2"}) == {"A": "1", "B": "2"}
