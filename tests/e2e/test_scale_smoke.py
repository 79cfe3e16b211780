"""Smoke test of the scale benchmark: its short form (20 releases, 1 s steps) runs the sandbox and
the operator as processes and prints the table with every column and numbers that make sense. It
checks the figures' sanity, never their speed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks.scale import COLUMNS, main, quantile

pytestmark = pytest.mark.e2e


def test_the_short_form_prints_the_table_with_sane_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    out = tmp_path / "scale.json"
    assert main(["--quick", "--sizes", "20", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    header = next(line for line in text.splitlines() if line.lstrip().startswith("N "))
    for title, _, _ in COLUMNS:
        assert title in header
    [row] = json.loads(out.read_text())["rows"]
    assert row["n"] == 20 and row["progressing"] == 2 and row["initialized"] == 20, row["notes"]
    assert row["succeeded"] == 2 and row["to_succeed_median"] >= 1.0  # no release beats its own steps
    assert row["to_succeed_max"] >= row["to_succeed_median"]
    assert row["idle_ticks_per_s"] > 0 and row["progressing_ticks"] >= 1 and row["progressing_ticks_counted"]
    assert row["progressing_writes_per_tick"] > 0  # a release that progresses writes its status
    assert row["idle_writes_per_tick"] <= row["progressing_writes_per_tick"]
    for key in ("idle_reads_per_tick", "idle_writes_per_tick", "progressing_reads_per_tick"):
        assert 0 <= row[key] < 100, key
    # the two processes' own figures, told apart
    assert 0 < row["operator_cpu_ms_per_tick_idle"] < 10_000
    assert 0 < row["operator_cores_progressing"] <= 2.5 and 0 < row["sandbox_cores_progressing"] <= 2.5
    assert 30 < row["operator_rss_mib"] < 4096 and 10 < row["sandbox_rss_mib"] < 4096
    assert row["lag_p50_s"] is not None and 0 <= row["lag_p50_s"] <= row["lag_p99_s"]
    # the benchmark's own set-up (POST of every Deployment and Canary) is not counted as the operator's
    assert not any(key.startswith("POST /apis/apps/v1/") for key in row["progressing_requests_by_shape"])


def test_lag_quantiles_interpolate_in_the_buckets() -> None:
    buckets = {0.1: 50.0, 1.0: 90.0, 10.0: 100.0, math.inf: 100.0}
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.7, buckets) == pytest.approx(0.55)
    assert quantile(0.99, buckets) == pytest.approx(9.1)
    assert quantile(0.5, {0.1: 0.0, math.inf: 0.0}) is None
    assert quantile(0.99, {1.0: 1.0, math.inf: 10.0}) == math.inf
