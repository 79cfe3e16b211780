"""Smoke test of the judge benchmark: a handful of runs through every scenario and judge, so the
benchmark keeps working as the judges change. Checks completeness and that the benchmark's judges
are the operator's (its Canary analysis blocks, its functions), not figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analysis.verdicts import Verdict
from benchmarks.judge import (
    ANALYSES,
    INTERVAL,
    JUDGES,
    LATENCY_SUMMARY,
    PLAN_CHECKS,
    SCRAPE_S,
    Scenario,
    benchmark,
    calibrated,
    canary_analysis,
    fast_threshold,
    scenarios,
    sequential_outcome,
    simulate,
    table,
    threshold_verdicts,
    to_json,
    views,
)
from rollout.api.spec import Judge
from rollout.engine import judging


def test_benchmark_core_covers_every_judge_and_scenario(tmp_path: object) -> None:
    result = benchmark(null_runs=4, bad_runs=3, calibration_runs=4, seed=2)
    rows = result["rows"]
    names = {s.name for s in scenarios()}
    assert {r.scenario for r in rows} == names
    for name in names:
        assert sorted(r.judge for r in rows if r.scenario == name) == sorted(JUDGES)
    for r in rows:
        assert 0.0 <= r.rate <= 1.0 and r.ci[0] <= r.rate <= r.ci[1]
        assert r.runs == (4 if r.kind == "null" else 3)
    text = table(result)
    for j in JUDGES:
        assert j in text
    for name in names:
        assert name in text
    assert "warmup:" in text and "judge: sequential" in text  # the blocks a user copies
    assert set(result["summary"]["false_alarms"]) == set(JUDGES)
    # events to detect a latency regression against the oracle looking every scrape and once per interval
    latency = {d["scenario"] for d in result["summary"]["latency"]}
    assert latency == {n for n in names if n.startswith("latency") and any(k in n for k in LATENCY_SUMMARY)}
    assert "oracle-looks" in text and "seq/oracle-looks" in text
    assert all(d["oracle_2arm_events50"] > 0 for d in result["summary"]["latency"])  # the two-arm reference
    by = {(r.scenario, r.judge): r for r in rows}
    for name in latency:  # the oracle that looks less often never stops sooner than the one that looks each scrape
        assert by[(name, "oracle-looks")].t50 >= by[(name, "oracle")].t50
    json.dumps(to_json(result))  # serialisable, no NaN/inf left


@pytest.mark.parametrize(("name", "judge"), [("threshold", Judge.THRESHOLD), ("compare", Judge.COMPARE),
                                             ("sequential", Judge.SEQUENTIAL)])
def test_each_judge_is_a_canary_analysis_block_the_operator_accepts(name: str, judge: Judge) -> None:
    analysis = canary_analysis(ANALYSES[name])
    assert {judging.judge_for(analysis, m) for m in analysis.metrics} == {judge}
    assert len(analysis.steps) == PLAN_CHECKS and analysis.interval == INTERVAL * 10
    canary_analysis(calibrated(0.02, 0.3))


def test_the_sequential_judge_is_the_operators_function_at_its_looks() -> None:
    sim = simulate(Scenario("x", "errors", 200.0, 0.01, 5.0), 3, np.random.default_rng(0))
    out = sequential_outcome(sim, ANALYSES["sequential"])
    analysis = canary_analysis(ANALYSES["sequential"])
    looks = slice(INTERVAL - 1, PLAN_CHECKS * INTERVAL, INTERVAL)
    for i in range(3):
        r = judging.judge_counts(analysis, analysis.metrics[0], np.arange(PLAN_CHECKS) * 60.0, sim.ce[i, looks],
                                 sim.cn[i, looks], sim.pe[i, looks], sim.pn[i, looks])
        assert r.verdict is Verdict.FAIL and out.rollback[i]
        assert out.at[i] <= (r.details["crossed_at"] + 1) * INTERVAL - 1


def test_batch_twins_give_the_operators_verdicts_on_the_simulated_checks() -> None:
    analysis = canary_analysis(ANALYSES["compare"])
    for sc in (Scenario("good", "null", 20.0, 0.01), Scenario("bad", "errors", 200.0, 0.01, 2.0)):
        v = views(simulate(sc, 6, np.random.default_rng(3)))
        for metric, c, p in ((analysis.metrics[0], v.roll_success_c, v.roll_success_p),
                             (analysis.metrics[1], v.roll_p99_c, v.roll_p99_p)):
            for k in range(0, PLAN_CHECKS, 3):
                # the operator's window: the last COMPARE_INTERVALS intervals
                w = slice(max(0, k + 1 - judging.COMPARE_INTERVALS) * INTERVAL, (k + 1) * INTERVAL)
                batch = judging.compare_verdicts(analysis, metric, c[:, w], p[:, w], step=SCRAPE_S)
                one = [judging.judge_compare(analysis, metric, c[i, w], p[i, w], step=SCRAPE_S).verdict.value
                       for i in range(6)]
                assert list(batch) == one
        limits = canary_analysis(calibrated(0.012, 0.25))
        for metric, values in ((limits.metrics[0], v.success), (limits.metrics[1], v.p99_ms)):
            assert (fast_threshold(metric, values) == threshold_verdicts(metric, values)).all()


def test_the_summary_names_the_worst_good_canary_scenario_and_no_warmup_drops_every_allowance(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import copy

    import benchmarks.judge as bench

    result = benchmark(null_runs=4, bad_runs=3, calibration_runs=4, seed=3)
    worst = result["summary"]["worst_false_alarms"]
    assert set(worst) == set(JUDGES)
    for j, w in worst.items():
        nulls = [r.rate for r in result["rows"] if r.kind == "null" and r.judge == j]
        assert w["rate"] == max(nulls) and w["scenario"].startswith("good")
    assert "worst single good-canary scenario" in table(result)
    monkeypatch.setattr(bench, "ANALYSES", copy.deepcopy(bench.ANALYSES))
    monkeypatch.setattr(bench, "WARMUP_ERR", bench.WARMUP_ERR)
    monkeypatch.setattr(bench, "WARMUP_LAT", bench.WARMUP_LAT)
    assert canary_analysis(bench.ANALYSES["sequential"]).metrics[1].warmup is not None
    bench.drop_warmup()
    assert bench.WARMUP_ERR == bench.WARMUP_LAT == 0.0
    analysis = canary_analysis(bench.ANALYSES["sequential"])
    assert analysis.warmup is None and all(m.warmup is None for m in analysis.metrics)
