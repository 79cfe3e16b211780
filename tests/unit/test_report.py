"""The analysis report: JSON round trip, the one-table Markdown, and a safe self-contained HTML page."""

from __future__ import annotations

import base64
import html.parser
import io
import json
import math
from dataclasses import replace
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from analysis.report import (
    AnalysisRun,
    MetricSeries,
    Outcome,
    Samples,
    Tick,
    Verdict,
    from_json,
    index_entries,
    outcome_line,
    to_html,
    to_json,
    to_markdown,
    write_reports,
)

T0 = 1_790_000_000.0
HOSTILE = '<script>alert("x")</script> & | `'


def make_run(outcome: Outcome = Outcome.FAILED, name: str = "podinfo") -> AnalysisRun:
    ts = np.arange(T0, T0 + 300, 30.0)
    success = np.where(ts < T0 + 200, 99.5, 92.25)
    success[2] = math.nan
    return AnalysisRun(
        name=name,
        namespace="test",
        outcome=outcome,
        decided_at=T0 + 290,
        ticks=[
            Tick(at=T0 + 60, verdict=Verdict.PASS, action="advance", weight=10),
            Tick(at=T0 + 120, verdict=Verdict.PASS, action="advance", weight=20),
            Tick(at=T0 + 240, verdict=Verdict.FAIL, action="rollback", weight=20, message=HOSTILE),
        ],
        metrics=[
            MetricSeries("request-success-rate", Samples.of(ts, success), Samples.of(ts, np.full_like(ts, 99.75)),
                         limit_min=99, verdict=Verdict.FAIL, unit="%",
                         checked=Samples.of([T0 + 60, T0 + 120, T0 + 240], [99.5, 99.5, 92.25])),
            MetricSeries("request-duration", Samples.of(ts, ts - T0 + 100), Samples.of(ts, ts - T0 + 90),
                         limit_max=500, verdict=Verdict.PASS, unit="ms", detail="p=0.2"),
            MetricSeries("errors|5xx", Samples(), None, limit_min=0, limit_max=1, verdict=Verdict.NO_DATA),
        ],
        revision="0123abcd",
        weights=Samples.of([T0, T0 + 60, T0 + 120, T0 + 240], [0, 10, 20, 0]),
        started_at=T0,
    )


def test_json_is_strict_and_round_trips() -> None:
    run = make_run()
    text = to_json(run)
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text)
    first = data["metrics"][0]
    assert first["series"]["canary"]["values"][2] is None  # NaN becomes null
    assert first["canary"] == 92.25 and first["primary"] == 99.75
    assert first["limit"]["min"] == 99 and first["limit"]["max"] is None
    assert data["decidedAt"] == "2026-09-21T14:18:10Z" and data["outcome"] == "failed"
    back = from_json(text)
    assert back.name == run.name and back.outcome is Outcome.FAILED and back.decided_at == run.decided_at
    assert [t.message for t in back.ticks] == [t.message for t in run.ticks]
    assert back.metrics[0].canary.timestamps == run.metrics[0].canary.timestamps
    assert math.isnan(back.metrics[0].canary.values[2])
    assert to_json(back) == text


def test_from_json_rejects_other_documents() -> None:
    with pytest.raises(ValueError, match="not an analysis report"):
        from_json('{"schema": "something/else"}')


def test_markdown_has_one_outcome_line_and_one_table() -> None:
    md = to_markdown(make_run())
    lines = md.strip().splitlines()
    assert lines[0] == outcome_line(make_run())
    assert "rolled back" in lines[0] and "request-success-rate failed" in lines[0]
    assert "no data for errors|5xx" in lines[0]
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 2 + 3 and lines[1] == ""
    assert table[0] == "| metric | canary | primary | limit | verdict |"
    assert table[2] == "| request-success-rate | 92.25 % | 99.75 % | ≥ 99 % | fail |"
    assert table[3] == "| request-duration | 370 ms | 360 ms | ≤ 500 ms | pass |"
    assert table[4] == "| errors\\|5xx | no data | no data | 0 to 1 | no-data |"
    assert len(lines) == 2 + len(table)


@pytest.mark.parametrize(
    ("outcome", "words"),
    [(Outcome.SUCCEEDED, "promoted"), (Outcome.FAILED, "rolled back"), (Outcome.RUNNING, "still running")],
)
def test_outcome_line_says_what_happened(outcome: Outcome, words: str) -> None:
    line = outcome_line(make_run(outcome))
    assert line.startswith(f"test/podinfo {words}") and "3 checks" in line and "\n" not in line


def test_judged_values_override_last_samples() -> None:
    metric = MetricSeries("m", Samples.of([1, 2], [5, 6]), Samples.of([1, 2], [7, math.nan]),
                          canary_value=1.5, limit_text="≤ primary +10%", verdict=Verdict.PASS)
    run = AnalysisRun("a", "b", Outcome.RUNNING, metrics=[metric])
    assert "| m | 1.5 | 7 | ≤ primary +10% | pass |" in to_markdown(run)


def test_samples_must_be_parallel() -> None:
    with pytest.raises(ValueError, match="2 timestamps but 1 values"):
        Samples((1.0, 2.0), (3.0,))


class _Collector(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.text: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs))
        for key, value in attrs:
            if key in ("href", "src") and value and not value.startswith("data:"):
                self.links.append(value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_is_self_contained_with_one_decodable_plot_per_metric() -> None:
    page = _Collector()
    page.feed(to_html(make_run()))
    assert page.links == [] and "script" not in page.tags and "link" not in page.tags
    assert len(page.images) == 3
    for image in page.images:
        src = image["src"] or ""
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
        assert pixels.shape[0] > 200 and pixels.shape[1] > 500
        assert pixels[..., :3].std() > 0.05  # not a blank image


def test_html_escapes_all_text() -> None:
    run = make_run(name=HOSTILE)
    document = to_html(run)
    assert "<script>" not in document
    page = _Collector()
    page.feed(document)
    assert "script" not in page.tags
    text = "".join(page.text)
    assert HOSTILE in text  # shown literally, as the tick message and the name


def test_write_reports(tmp_path: Path) -> None:
    paths = write_reports(make_run(name="pod/../info"), tmp_path)
    assert {p.suffix for p in paths.values()} == {".json", ".md", ".html"}
    for path in paths.values():
        assert path.parent == tmp_path and path.stat().st_size > 0 and "/" not in path.name
    assert from_json(paths["json"].read_text()).name == "pod/../info"


def test_a_dry_run_metric_is_marked_in_every_format_and_decides_nothing() -> None:
    ts = np.arange(T0, T0 + 300, 30.0)
    shadow = MetricSeries("latency-shadow", Samples.of(ts, ts - T0 + 900), None, limit_max=500,
                          verdict=Verdict.FAIL, unit="ms", dry_run=True)
    passing = MetricSeries("request-success-rate", Samples.of(ts, np.full_like(ts, 99.9)), None, limit_min=99,
                           verdict=Verdict.PASS, unit="%")
    run = AnalysisRun(name="podinfo", namespace="test", outcome=Outcome.SUCCEEDED, decided_at=T0 + 290,
                      metrics=[passing, shadow])
    line = outcome_line(run)
    assert "promoted" in line and "dry run: latency-shadow would have failed" in line
    data = json.loads(to_json(run))
    assert [m["dryRun"] for m in data["metrics"]] == [False, True]
    assert from_json(to_json(run)).metrics[1].dry_run
    md = to_markdown(run)
    assert "| latency-shadow (dry run) |" in md and "fail (dry run: would have failed)" in md
    page = to_html(run)
    assert "latency-shadow (dry run)" in page and 'class="fail dry-run"' in page
    # A failed run names only the metrics that decided it.
    failed = AnalysisRun(name="podinfo", namespace="test", outcome=Outcome.FAILED,
                         metrics=[replace(passing, verdict=Verdict.FAIL), shadow])
    assert ": request-success-rate failed" in outcome_line(failed)


def test_weights_checks_and_start_round_trip() -> None:
    run = make_run()
    back = from_json(to_json(run))
    assert back.weights == run.weights and back.started_at == T0
    assert back.metrics[0].checked == run.metrics[0].checked
    assert back.metrics[1].checked is None


def test_every_report_folder_gets_an_index_of_its_runs(tmp_path: Path) -> None:
    write_reports(make_run(Outcome.SUCCEEDED, name="older"), tmp_path)
    later = replace(make_run(Outcome.FAILED, name=HOSTILE), decided_at=T0 + 900)
    write_reports(later, tmp_path)
    (tmp_path / "notes.json").write_text('{"not": "a report"}')
    entries = index_entries(tmp_path)
    assert [(e["name"], e["outcome"]) for e in entries] == [(HOSTILE, "failed"), ("older", "succeeded")]
    page = (tmp_path / "index.html").read_text()
    assert page.count("<tr>") == 3  # the header and one row per run
    assert HOSTILE not in page and html.escape(HOSTILE) in page
    assert 'href="test-older-analysis.html"' in page and 'class="pass">succeeded' in page
