"""Ranges made of instant queries, the provider-named outcomes, and InfluxDB's annotated CSV."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.providers.base import BadQueryError, NaNError, NoDataError, Series
from analysis.providers.influxdb import parse_annotated_csv
from analysis.providers.instants import MAX_INSTANTS, instants, range_of_instants
from analysis.providers.values import first_point, last_point, series_of, value_of


def one(labels: dict[str, str], value: float, t: float = 0.0) -> Series:
    return Series(labels, np.array([t]), np.array([value]))


def test_instants_include_both_ends_and_refuse_bad_steps() -> None:
    assert instants(100, 220, 60) == [100, 160, 220]
    assert instants(100, 219, 60) == [100, 160]
    for start, end, step in ((100, 220, 0), (220, 100, 60)):
        with pytest.raises(ValueError):
            instants(start, end, step)
    with pytest.raises(ValueError, match="use a larger step"):
        instants(0, MAX_INSTANTS * 10, 1)


def test_a_range_of_instants_keeps_label_sets_apart_and_fills_gaps_with_nan() -> None:
    answers = {0.0: [one({"a": "1"}, 1.0)], 10.0: [], 20.0: [one({"a": "1"}, 3.0), one({"a": "2"}, 5.0)]}
    found = {s.labels["a"]: s for s in range_of_instants(lambda t: answers[t], 0, 20, 10)}
    assert found["1"].timestamps.tolist() == [0, 10, 20]
    np.testing.assert_equal(found["1"].values, [1.0, np.nan, 3.0])
    np.testing.assert_equal(found["2"].values, [np.nan, np.nan, 5.0])
    assert range_of_instants(lambda t: [], 0, 20, 10) == []


def test_outcomes_name_where_they_come_from() -> None:
    with pytest.raises(NoDataError, match=r"^Graphite at http://g: no data"):
        value_of("Graphite at http://g", [], "q", None)
    with pytest.raises(NaNError, match=r"^InfluxDB at http://i: every point"):
        series_of("InfluxDB at http://i", [Series({}, np.array([1.0]), np.array([np.nan]))], "q")
    assert value_of("X", [one({}, 2.5)], "q", None) == 2.5


def test_last_and_first_points() -> None:
    series = Series({}, np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, np.nan]))
    assert last_point(series).values.tolist() == [5.0] and last_point(series).timestamps.tolist() == [2.0]
    assert first_point(series).values.tolist() == [4.0]
    assert np.isnan(last_point(Series({}, np.array([1.0]), np.array([np.nan]))).values[0])
    assert np.isnan(last_point(Series({}, np.array([]), np.array([]))).values[0])


# Two results (two yields) in one answer, both with table 0: each block has its own annotations
# (the result's name is its #default) and header, after a blank line, as
# https://docs.influxdata.com/influxdb/v2/reference/syntax/annotated-csv/ shows.
TWO_RESULTS = """#group,false,false,true,true,false,false,true
#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string
#default,canary,,,,,,
,result,table,_start,_stop,_time,_value,app
,,0,2023-01-01T00:00:00Z,2023-01-01T00:01:00Z,2023-01-01T00:00:30Z,1.5,podinfo
,,0,2023-01-01T00:00:00Z,2023-01-01T00:01:00Z,2023-01-01T00:01:00Z,,podinfo

#group,false,false,true,true,false,true
#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,double,string
#default,primary,,,,,
,result,table,_start,_stop,_value,app
,,0,2023-01-01T00:00:00Z,2023-01-01T00:01:00Z,0.5,podinfo-primary
"""


def test_annotated_csv_tables_become_series() -> None:
    canary, primary = parse_annotated_csv(TWO_RESULTS.replace("\n", "\r\n"), "q")
    assert canary.labels == {"app": "podinfo"} and primary.labels == {"app": "podinfo-primary"}
    np.testing.assert_equal(canary.values, [1.5, np.nan])
    assert canary.timestamps.tolist() == [1672531230.0, 1672531260.0]
    # An aggregate has no _time: the table's _stop stands for it.
    assert primary.timestamps.tolist() == [1672531260.0] and primary.values.tolist() == [0.5]
    assert parse_annotated_csv("\r\n", "q") == []


def test_an_error_table_is_a_bad_query() -> None:
    text = "#datatype,string,string\n#group,true,true\n#default,,\n,error,reference\n,panic: boom,\n"
    with pytest.raises(BadQueryError, match="panic: boom"):
        parse_annotated_csv(text, "q")
