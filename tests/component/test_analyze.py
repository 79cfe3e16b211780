"""`rollout analyze` against a real Prometheus holding a known incident.

Two workloads share the window: `podinfo`'s canary starts failing 8% of requests at a known
time, `stable`'s never does; their primaries stay healthy. The replay must roll the first back
within the expected ticks and promote the second, with every judge.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rollout.api.status import format_time
from rollout.cli import main
from tests.prom import RunningPrometheus, running_prometheus

pytestmark = pytest.mark.component

NS = "test"
STEP = 15
STEPS = 4 * 40  # forty minutes of samples
END = (int(time.time()) // 60) * 60 - 600
FIRST = END - (STEPS - 1) * STEP
START = FIRST + 120  # the replayed release starts here: rate windows are full by then
BAD_AT = START + 270  # podinfo's canary regresses 4m30s into the release
LATENCY = {25: 100, 50: 60, 100: 30, 250: 9, 500: 1}


def _series(workload: str, ok: int, errors_before: int, errors_after: int) -> list[str]:
    labels = f'reporter="destination",destination_workload_namespace="{NS}",destination_workload="{workload}"'
    lines: list[str] = []
    ok_total = err_total = 0
    buckets = dict.fromkeys([*LATENCY, "+Inf"], 0)
    for k in range(STEPS):
        t = FIRST + k * STEP
        ok_total += ok
        err_total += errors_after if t > BAD_AT else errors_before
        lines.append(f'istio_requests_total{{{labels},response_code="200"}} {ok_total} {t}')
        lines.append(f'istio_requests_total{{{labels},response_code="500"}} {err_total} {t}')
        running = 0  # buckets are cumulative over le
        for le, n in LATENCY.items():
            running += n * ok // 200
            buckets[le] += running
            lines.append(f'istio_request_duration_milliseconds_bucket{{{labels},le="{le}"}} {buckets[le]} {t}')
        buckets["+Inf"] += running
        lines.append(f'istio_request_duration_milliseconds_bucket{{{labels},le="+Inf"}} {buckets["+Inf"]} {t}')
    return lines


def _openmetrics() -> str:
    lines = [
        *_series("podinfo", 184, 1, 16),
        *_series("podinfo-primary", 398, 2, 2),
        *_series("stable", 199, 1, 1),
        *_series("stable-primary", 398, 2, 2),
    ]
    # OpenMetrics wants each family's samples together.
    lines.sort(key=lambda line: line.split("{")[0])
    return "\n".join([*lines, "# EOF"]) + "\n"


CANARY = """
apiVersion: rollout.gitops.dev/v1alpha1
kind: Canary
metadata:
  name: {target}
  namespace: test
spec:
  provider: istio
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {target}
  service:
    port: 9898
  analysis:
    interval: 1m
    threshold: 2
    maxWeight: 50
    stepWeight: 10
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
        interval: 1m
      - name: request-duration
        thresholdRange:
          max: 500
        interval: 1m
"""


@pytest.fixture(scope="module")
def prom() -> Iterator[RunningPrometheus]:
    with running_prometheus(_openmetrics()) as server:
        yield server


def canary_file(tmp_path: Path, target: str, step_weight: int = 10) -> Path:
    path = tmp_path / f"{target}.yaml"
    path.write_text(CANARY.format(target=target).replace("stepWeight: 10", f"stepWeight: {step_weight}"))
    return path


def analyze(prom: RunningPrometheus, path: Path, *extra: str) -> list[str]:
    return ["analyze", "-f", str(path), "--prometheus", prom.url, "--start", str(START),
            "--end", str(END), *extra]


def at(seconds_after_start: int) -> str:
    return format_time(datetime.fromtimestamp(START + seconds_after_start, tz=UTC))


def test_regression_rolls_back_within_the_expected_ticks(
    prom: RunningPrometheus, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(analyze(prom, canary_file(tmp_path, "podinfo")))
    out = capsys.readouterr().out.splitlines()
    assert code == 3
    # Ticks every minute: weight 10 at 1m, checks from 2m; the 5m and 6m checks see the 8% errors.
    assert out[-1].startswith(f"rollback at {at(360)} (")
    assert "request-success-rate" in out[-1] and "failed checks 2/2" in out[-1]
    lines = {line.split()[0]: line for line in out[:-1]}
    assert "weight  40" in lines[at(240)] and lines[at(240)].endswith("advance")
    assert "request-success-rate canary 99.46 primary 99.5 pass" in lines[at(240)]
    # Half of the 5m check's window is after the regression.
    assert "request-success-rate canary 95.58 primary 99.5 fail" in lines[at(300)]
    assert lines[at(300)].endswith("hold")
    assert lines[at(360)].endswith("rollback")


def test_clean_window_promotes(prom: RunningPrometheus, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(analyze(prom, canary_file(tmp_path, "stable")))
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[-1] == f"promote at {at(360)}"
    weights = [int(line.split()[2]) for line in out[:-1]]
    assert weights == [0, 10, 20, 30, 40, 50, 50]


@pytest.mark.parametrize(("judge", "within"), [("compare", 5 * 60), ("sequential", 4 * 60)])
def test_statistical_judges_agree_on_the_incident(
    prom: RunningPrometheus, tmp_path: Path, capsys: pytest.CaptureFixture[str], judge: str, within: int
) -> None:
    # A plan of ten steps, so that the regression (4m30s in) lasts several checks: the compare judge
    # reads its last three intervals of overlapping 1 m rates and fails once most of them are worse
    # (the third or fourth check after the regression; threshold 2).
    assert main(analyze(prom, canary_file(tmp_path, "stable", 5), "--judge", judge)) == 0
    capsys.readouterr()
    code = main(analyze(prom, canary_file(tmp_path, "podinfo", 5), "--judge", judge, "--json"))
    result = json.loads(capsys.readouterr().out)
    assert code == 3 and result["outcome"] == "rollback"
    decided = datetime.fromisoformat(result["decided_at"].replace("Z", "+00:00")).timestamp()
    assert BAD_AT < decided <= BAD_AT + within
    failed = [m for m in result["metrics"] if m["verdicts"]["fail"]]
    assert [m["name"] for m in failed] == ["request-success-rate"]
    assert failed[0]["judge"] == judge


def test_json_and_html_report_through_the_installed_command(prom: RunningPrometheus, tmp_path: Path) -> None:
    report = tmp_path / "out" / "podinfo.html"
    done = subprocess.run(
        [str(Path(sys.executable).parent / "rollout"), *analyze(prom, canary_file(tmp_path, "podinfo")), "--json",
         "--report", str(report)],
        capture_output=True, text=True, timeout=120, check=False, env={**os.environ},
    )
    assert done.returncode == 3, done.stderr
    result = json.loads(done.stdout)
    assert set(result) >= {"outcome", "decided_at", "ticks", "metrics"}
    assert result["ticks"][0]["at"] == at(0) and len(result["ticks"]) == 7
    html = report.read_text()
    assert html.count("<img") >= 2 and "request-success-rate" in html and "rolled back" in html


def test_unreachable_prometheus_and_bad_input_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = canary_file(tmp_path, "podinfo")
    base = ["analyze", "-f", str(path), "--start", "now-1h"]
    assert main([*base, "--prometheus", "http://127.0.0.1:9"]) == 2
    assert "cannot reach Prometheus" in capsys.readouterr().err
    assert main([*base, "--prometheus", "http://127.0.0.1:9", "--end", "now-2h"]) == 2
    assert "--end must be after --start" in capsys.readouterr().err
    assert main(["analyze", "-f", str(path), "--prometheus", "http://x", "--start", "yesterday"]) == 2
    assert "'yesterday' is not a time" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(CANARY.format(target="podinfo").replace("stepWeight: 10", "stepWeight: 80"))
    assert main(["analyze", "-f", str(bad), "--prometheus", "http://x", "--start", "now-1h"]) == 2
    assert "spec.analysis.stepWeight: must not exceed maxWeight (50), got 80" in capsys.readouterr().err


def test_window_too_short_is_incomplete(prom: RunningPrometheus, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    code = main(["analyze", "-f", str(canary_file(tmp_path, "stable")), "--prometheus", prom.url,
                 "--start", str(START), "--end", str(START + 150)])
    out = capsys.readouterr().out.splitlines()
    assert code == 0 and out[-1] == "incomplete: no decision by the end of the window (weight 20)"


def test_step_interval_changes_the_tick_rate(prom: RunningPrometheus, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    main(analyze(prom, canary_file(tmp_path, "stable"), "--step-interval", "30s"))
    out = capsys.readouterr().out.splitlines()
    # The first step comes as soon as the canary is ready, then one step per analysis interval.
    assert out[-1] == f"promote at {at(330)}"
    assert len(out) - 1 == 12
    _ = timedelta


KAYENTA = """
apiVersion: rollout.gitops.dev/v1alpha1
kind: Canary
metadata: {{name: podinfo, namespace: test}}
spec:
  provider: istio
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: podinfo}}
  service: {{port: 9898}}
  analysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    judge: compare
{scoring}
    metrics:
      - {{name: request-success-rate, compare: {{direction: decrease, effectSize: {{allowedIncrease: 1.5}}, {rules}}}}}
      - {{name: request-duration, compare: {{tolerance: 0.5, weight: 50}}}}
"""


def test_kayenta_critical_metric_rolls_back_at_its_first_failure(
    prom: RunningPrometheus, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "critical.yaml"
    path.write_text(KAYENTA.format(scoring="", rules="critical: true").replace(", weight: 50", ""))
    code = main(analyze(prom, path, "--json"))
    result = json.loads(capsys.readouterr().out)
    assert code == 3 and "(conclusive)" in result["reason"]
    # Before the incident the canary's error rate is 1.08x the primary's: significant, but within the
    # allowed 1.5x, so it passes; the first check that sees the incident fails the release at once.
    decided = datetime.fromisoformat(result["decided_at"].replace("Z", "+00:00")).timestamp()
    assert BAD_AT < decided <= BAD_AT + 2 * 60
    last = next(c for c in result["ticks"][-1]["checks"] if c["name"] == "request-success-rate")
    assert last["verdict"] == "fail" and last["critical"] and last["classification"] == "High"
    assert last["effectSize"] > 1  # the error rate's mean ratio, canary over primary
    fails = [c for t in result["ticks"] for c in t["checks"] if c["verdict"] == "fail"]
    assert len(fails) == 1  # threshold 5 never counted: the first failure was final


def test_kayenta_marginal_score_holds_once_then_counts_as_a_failed_check(
    prom: RunningPrometheus, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "scored.yaml"
    path.write_text(KAYENTA.format(scoring="    scoring: {pass: 95, marginal: 40}", rules="weight: 50"))
    code = main(analyze(prom, path))
    out = capsys.readouterr().out.splitlines()
    # Advances while the error rate is within the allowed 1.5x (score 100), then holds on a score of 50
    # (marginal) for one interval; marginal again counts as a failed check, up to the threshold.
    assert "weight  40" in out[4] and "score 100" in out[4] and "(Pass, effect 1.081)" in out[4]
    scored = [line for line in out if "score 50" in line]
    assert scored[0].endswith("  hold") and "weight  40" in scored[0]
    assert len(scored) >= 2  # the hold, then failed checks
    assert code == 3 and "marginal again after one interval's hold" in out[-1], out


def test_looks_between_checks_roll_back_sooner(prom: RunningPrometheus, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """`analysis.lookInterval`: the sequential judge looks every 30 s between the 1 m checks, and the
    look that crosses rolls the release back then, sooner than the check after it would have."""
    start = START + 30  # the checks fall on BAD_AT and a minute after it; a look falls between them
    decided: dict[str, float] = {}
    for name, extra in (("checks", ""), ("looks", "    lookInterval: 30s\n")):
        path = canary_file(tmp_path, "podinfo", 5)
        sequential = f"    threshold: 2\n    judge: sequential\n{extra}"
        path.write_text(path.read_text().replace("    threshold: 2\n", sequential))
        code = main(["analyze", "-f", str(path), "--prometheus", prom.url, "--start", str(start), "--end", str(END),
                     "--json"])
        result = json.loads(capsys.readouterr().out)
        assert code == 3 and result["outcome"] == "rollback", result
        decided[name] = datetime.fromisoformat(result["decided_at"].replace("Z", "+00:00")).timestamp()
    assert decided["checks"] == BAD_AT + 60  # the first check that sees the regression
    assert decided["looks"] == BAD_AT + 30  # the first look that does, half a minute sooner


def test_the_report_plots_each_metric_at_the_sources_resolution(
    prom: RunningPrometheus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rollout analyze --report`: like the operator's, the report draws each metric as Prometheus
    recorded it over the replayed run, not only at the seven checks."""
    from analysis.report import AnalysisRun
    from rollout.cli import analyzer

    drawn: list[AnalysisRun] = []
    real = analyzer.to_html
    monkeypatch.setattr(analyzer, "to_html", lambda run: drawn.append(run) or real(run))
    report = tmp_path / "podinfo.html"
    assert main([*analyze(prom, canary_file(tmp_path, "podinfo")), "--report", str(report)]) == 3
    capsys.readouterr()
    [run] = drawn
    success = next(m for m in run.metrics if m.name == "request-success-rate")
    assert len(success.canary.timestamps) > 5 * 7 and success.primary is not None
    steps = {round(b - a) for a, b in zip(success.canary.timestamps, success.canary.timestamps[1:], strict=False)}
    assert max(steps) <= STEP  # every sample Prometheus holds (15 s apart), from the run's start to its end
    assert success.canary.timestamps[0] <= START + STEP and success.canary.timestamps[-1] >= START + 360 - STEP
    assert report.read_text().count("<img") >= 2
