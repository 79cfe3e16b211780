"""The data plane's metric registry: cumulative histogram buckets with inclusive `le`, seconds
scaling, and counters that only grow, in the Prometheus text format."""

from __future__ import annotations

import numpy as np

from sandbox.metrics import BUCKETS_MS, Registry


def lines_of(text: str, prefix: str) -> dict[str, str]:
    return {line.rpartition(" ")[0]: line.rpartition(" ")[2] for line in text.splitlines() if line.startswith(prefix)}


def test_histogram_buckets_are_cumulative_and_inclusive() -> None:
    r = Registry()
    r.histogram("lat_ms", "latency")
    labels = (("pod", "a"),)
    r.observe("lat_ms", labels, np.array([1.0, 1.5, 20.0, 20.0, 99999.0]))
    got = lines_of(r.render(), "lat_ms")
    assert got['lat_ms_bucket{pod="a",le="1"}'] == "1"  # 1.0 lies in le="1"
    assert got['lat_ms_bucket{pod="a",le="2"}'] == "2"
    assert got['lat_ms_bucket{pod="a",le="20"}'] == "4"
    assert got[f'lat_ms_bucket{{pod="a",le="{BUCKETS_MS[-1]:g}"}}'] == "4"
    assert got['lat_ms_bucket{pod="a",le="+Inf"}'] == "5"
    assert got['lat_ms_count{pod="a"}'] == "5"
    assert float(got['lat_ms_sum{pod="a"}']) == 1.0 + 1.5 + 40.0 + 99999.0
    assert "# TYPE lat_ms histogram" in r.render()


def test_seconds_histogram_scales_bounds_and_sum() -> None:
    r = Registry()
    r.histogram("lat_seconds", "latency", seconds=True)
    r.observe("lat_seconds", (), np.array([250.0]))
    got = lines_of(r.render(), "lat_seconds")
    assert got['lat_seconds_bucket{le="0.25"}'] == "1" and got['lat_seconds_bucket{le="0.2"}'] == "0"
    assert float(got["lat_seconds_sum"]) == 0.25


def test_counters_grow_and_escape_label_values() -> None:
    r = Registry()
    r.counter("requests_total", "requests")
    labels = (("path", 'a"b\\c'),)
    r.inc("requests_total", labels, 3)
    r.inc("requests_total", labels, 4)
    assert r.value("requests_total", labels) == 7
    assert 'requests_total{path="a\\"b\\\\c"} 7' in r.render()
