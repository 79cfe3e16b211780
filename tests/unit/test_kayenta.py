"""Kayenta's NetflixACAJudge rules, rule by rule, on the numbers of Kayenta's own tests.

Each reference names the Kayenta test it comes from (spinnaker/kayenta, kayenta-judge/src/test/scala/
com/netflix/kayenta/judge/: ClassifierSuite, StatisticSuite, DetectorSuite, TransformSuite, ScorerSuite).
The MannWhitneyClassifier cases are kept as data in tests/data/kayenta_classifier_suite.json (extracted
from ClassifierSuite.scala, commit a69573be); they run through our compare judge with tolerance 0 and
alpha = 1 - Kayenta's confLevel, then Kayenta's classification.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analysis.judges.compare import compare
from analysis.judges.kayenta import Rules, classify, cles, iqr_outliers, mean_ratio, prepare
from analysis.providers.base import Series
from analysis.report import from_json, markdown_table, to_dict, to_json
from analysis.scoring import ScoreClass, Scored, classify_score, score, summary_score
from analysis.verdicts import Direction, EffectMeasure, NanStrategy, Outcome, Verdict
from rollout.api.errors import FieldError, ValidationError
from rollout.api.parse import parse_canary, parse_resource
from rollout.api.spec import Analysis, CanarySpec, Metric, ThresholdRange
from rollout.api.status import Phase, ReleaseStatus
from rollout.cli.analyzer import tick_line
from rollout.core import CheckResult, Emit, SetWeight
from rollout.engine import judging
from rollout.engine.checks import MetricChecks
from rollout.engine.replay import replay
from rollout.engine.reports import build_report
from rollout.engine.sources import Sources
from tests.unit.test_checks import AT, T0, WINDOW_SAMPLES, MemorySource, points, release
from tests.unit.test_parse import canary as canary_manifest
from tests.unit.world import World, failing, no_data, passing

SUITE = json.loads((Path(__file__).resolve().parents[1] / "data" / "kayenta_classifier_suite.json").read_text())


# -- MannWhitneyClassifier (ClassifierSuite.scala) ---------------------------------------------------


@pytest.mark.parametrize("case", SUITE["cases"], ids=[c["test"] for c in SUITE["cases"]])
def test_classifier_suite(case: dict[str, Any]) -> None:
    effect, crit = case["effectSizeThresholds"], case["criticalThresholds"]
    # The classifier's own defaults apply when a test gives no thresholds: (1, 1), or (0.5, 0.5) for cles.
    rules = Rules(
        measure=EffectMeasure(case["measure"]),
        allowed_decrease=effect[0] if effect else None, allowed_increase=effect[1] if effect else None,
        critical_decrease=crit[0] if crit else None, critical_increase=crit[1] if crit else None,
        effect_limits=True, critical=case["isCritical"], nan_strategy=NanStrategy(case["nanStrategy"]),
    )
    canary, primary = prepare(case["experiment"], rules), prepare(case["control"], rules)
    direction = Direction(case["direction"])
    result = compare(canary, primary, direction=direction, tolerance=0.0, alpha=1 - case["confLevel"], min_samples=1)
    result = classify(result, canary, primary, direction, rules)
    assert result.reason
    if case["classification"] is not None:
        assert result.details["classification"] == case["classification"]
    if case["critical"] is not None:
        assert result.details["critical"] is case["critical"]


def test_a_significant_difference_within_the_allowed_effect_passes() -> None:
    # ClassifierSuite "Critical Effect Size: Pass": meanRatio 23.6 / 1.96 = 12.04 < allowedIncrease 13
    canary, primary = [20.0, 22.0, 21.0, 25.0, 30.0], [1.0, 2.2, 1.1, 2.5, 3.0]
    plain = compare(canary, primary, direction="increase", tolerance=0.0)
    assert plain.failed
    result = classify(plain, canary, primary, Direction.INCREASE, Rules(allowed_increase=13.0, effect_limits=True))
    assert result.passed and result.details["classification"] == "Pass"
    assert result.details["effect_size"] == pytest.approx(23.6 / 1.96)
    assert "below the allowed increase 13: passes" in result.reason


# -- EffectSizes (StatisticSuite.scala) --------------------------------------------------------------


def test_mean_ratio() -> None:
    assert mean_ratio([1.0] * 5, [1.0] * 5) == 1.0  # "Mean Ratio (No Effect)"
    assert mean_ratio([1.0] * 5, [10.0] * 5) == 10.0  # "Mean Ratio (High)"
    assert mean_ratio([100.0] * 5, [10.0] * 5) == 0.1  # "Mean Ratio (Low)"
    assert math.isnan(mean_ratio([0.0] * 5, [10.0] * 5))  # "Mean Ratio (Zero Mean)"


def test_cles() -> None:
    assert cles([1.0, 2, 3, 4, 5], [1.0, 2, 3, 4, 5]) == 0.5  # "CLES Effect Size: Identical"
    experiment = [2.27776335, 2.61149434, 3.26894105, 2.91672701, 1.40656921, 2.18292082, 3.47901292,
                  3.00034118, 3.02402043, 4.69912745]
    control = [25.31531073, 25.19450817, 24.6288846, 24.37991861, 26.40999244, 25.28524759, 24.99788745,
               26.13841676, 22.93604649, 24.56817832]
    assert cles(control, experiment) == 0.0  # "CLES Effect Size: Different (No Overlap)"
    high_e = [29.17644856, 25.16947646, 25.88467948, 29.4900454, 27.05622757, 26.13307864, 27.2711558,
              26.69139944, 29.05412377, 26.39818697, 26.68312641, 24.99600187, 27.99524816, 22.57278291,
              23.72798196, 25.82821505, 28.26624521, 28.02370228, 24.1792213, 26.02914828, 25.90970275,
              31.18337461, 27.44254942, 29.93347686, 26.70848069, 28.12191913, 27.39257837, 30.17636627,
              29.60240485, 30.10635388]
    high_c = [24.69397578, 25.37120574, 25.86186148, 26.93804252, 22.72232309, 24.15894084, 24.80842752,
              26.07830794, 27.35323988, 23.25110886, 24.65909111, 23.88299016, 21.34817847, 26.33198082,
              23.39498829, 26.6734461, 25.33769589, 23.92348759, 25.29740715, 24.21381887, 28.1697053,
              22.2271772, 27.16612837, 25.16639243, 26.85955896, 27.13421926, 25.43350074, 26.32130314,
              23.8854011, 27.86180318]
    assert cles(high_c, high_e) == pytest.approx(0.771, abs=0.001)  # "CLES Effect Size: High Metric"


# -- IQRDetector (DetectorSuite.scala) and Transforms (TransformSuite.scala) ------------------------


def test_iqr_detector() -> None:
    data = [21.0, 23.0, 24.0, 25.0, 50.0, 29.0, 23.0, 21.0]  # "IQR Detection"
    assert iqr_outliers(data, 1.5).tolist() == [False, False, False, False, True, False, False, False]
    two_sided = [1.0, 1.0, 1.0, 5.0, -1.0, -1.0, -1.0, -5.0]  # "IQR Detect Two Sided"
    assert iqr_outliers(two_sided, 1.5).tolist() == [False, False, False, True, False, False, False, True]
    assert iqr_outliers([], 1.5).tolist() == []  # "IQR Empty Data"
    nist = [30, 171, 184, 201, 212, 250, 265, 270, 272, 289, 305, 306, 322, 322, 336, 346, 351, 370, 390, 404,
            409, 411, 436, 437, 439, 441, 444, 448, 451, 453, 470, 480, 482, 487, 494, 495, 499, 503, 514, 521,
            522, 527, 548, 550, 559, 560, 570, 572, 574, 578, 585, 592, 592, 607, 616, 618, 621, 629, 637, 638,
            640, 656, 668, 707, 709, 719, 737, 739, 752, 758, 766, 792, 792, 794, 802, 818, 830, 832, 843, 858,
            860, 869, 918, 925, 953, 991, 1000, 1005, 1068, 1441]  # "IQR NIST Test"
    assert iqr_outliers(nist, 1.5).tolist() == [False] * (len(nist) - 1) + [True]


def test_iqr_reduced_sensitivity_and_infinities() -> None:
    # NetflixACAJudge builds IQRDetector(factor, reduceSensitivity = true): fences reach the 1st/99th percentiles
    data = [5.0] * 8 + [6.0, 6.0]  # IQR 0: Tukey's fences sit at 5, the 99th percentile at 6
    assert iqr_outliers(data, 3.0).tolist() == [False] * 8 + [True, True]
    assert not iqr_outliers(data, 3.0, reduce_sensitivity=True).any()
    # +Inf is the worst value, never an outlier; NaN never reaches the detector
    assert iqr_outliers([1.0, 1.0, 2.0, math.inf], 1.5).tolist() == [False, False, False, False]
    with pytest.raises(ValueError, match="greater than zero"):
        iqr_outliers([1.0], 0)


def test_transforms() -> None:
    remove = Rules(nan_strategy=NanStrategy.REMOVE)
    assert prepare([0.0, 1.0, math.nan, 1.0, 0.0], remove).tolist() == [0.0, 1.0, 1.0, 0.0]  # "Remove Single NaN"
    assert prepare([math.nan] * 3, remove).tolist() == []  # "Remove Multiple NaN"
    replaced = prepare([math.nan, 10.10, 20.20, 30.30, math.nan, 40.40], Rules(nan_strategy=NanStrategy.REPLACE))
    assert replaced.tolist() == [0.0, 10.10, 20.20, 30.30, 0.0, 40.40]  # "Replace NANs"
    # "IQR Outlier Removal" (factor 1.5); the judge's detector also widens to the 1st/99th percentiles
    data = [21.0, 23.0, 24.0, 25.0, 50.0, 29.0, 23.0, 21.0]
    assert [v for v, out in zip(data, iqr_outliers(data, 1.5), strict=True) if not out] == [
        21.0, 23.0, 24.0, 25.0, 29.0, 23.0, 21.0]
    many = [10.0] * 50 + [11.0] * 49 + [500.0]
    assert 500.0 not in prepare(many, Rules(outlier_factor=3.0)).tolist()


# -- no data: critical, mustHaveData, nanStrategy (MannWhitneyClassifier.classify) --------------------


def _nodata(rules: Rules, canary: list[float]) -> Any:
    result = compare(canary, [1.0, 2.0, 3.0, 4.0, 5.0], direction="decrease")
    return classify(result, np.asarray(canary), np.asarray([1.0, 2.0, 3.0, 4.0, 5.0]), Direction.DECREASE, rules)


def test_no_data_rules() -> None:
    plain = _nodata(Rules(), [])  # "Missing Experiment Data"
    assert plain.verdict is Verdict.NO_DATA and plain.details["classification"] == "Nodata"
    critical = _nodata(Rules(critical=True), [])  # "Missing Experiment Data: Critical Metric"
    assert critical.failed and critical.details["critical"] and critical.details["classification"] == "Nodata"
    required = _nodata(Rules(must_have_data=True), [])  # isDataRequired && !isCriticalMetric
    assert required.failed and not required.details["critical"]
    assert required.details["classification"] == "NodataFailMetric"
    replaced = _nodata(Rules(nan_strategy=NanStrategy.REPLACE), [])  # "Missing Experiment Data with NaN Replacement"
    assert replaced.passed and replaced.details["classification"] == "Pass"


# -- WeightedSumScorer and ThresholdScoreClassifier (ScorerSuite.scala), one group per metric ---------


@pytest.mark.parametrize(("metrics", "expected"), [
    ([Scored("a", "Pass")], 100.0),  # "Single Metric Pass"
    ([Scored("a", "High")], 0.0),  # "Single Metric Fail"
    ([Scored("a", "Nodata")], 0.0),  # "Single group Nodata": 50% or more no data
    ([Scored("a", "Pass"), Scored("b", "High")], 50.0),  # "One Group, Two Metrics"
    ([Scored("a", "Pass"), Scored("b", "High"), Scored("c", "Low")], 33.33),  # "One Group, Three Metrics"
    # "Two Groups, Three Metrics": group-1 (75) holds two passing metrics, group-2 (25) a failing one
    ([Scored("a", "Pass", 37.5), Scored("b", "Pass", 37.5), Scored("c", "High", 25)], 75.0),
    # "Two Groups, Three Metrics (Equal Weight)": pass and fail in group-1 (50), fail in group-2 (50)
    ([Scored("a", "Pass", 25), Scored("b", "High", 25), Scored("c", "High", 50)], 25.0),
    # "... (Equal Weight), one NoData": a metric without data counts as 100 (Kayenta's empty group)
    ([Scored("a", "Pass", 25), Scored("b", "Nodata", 25), Scored("c", "High", 50)], 50.0),
    ([Scored("a", "Pass"), Scored("b", "High", critical=True)], 0.0),  # "one good (normal), one fail (critical)"
    ([Scored("a", "Low"), Scored("b", "Pass", critical=True)], 50.0),  # "one low (normal), one good (critical)"
    ([Scored("a", "Pass"), Scored("b", "Nodata", critical=True)], 0.0),  # "one good (normal), one nodata (critical)"
    ([Scored("a", "Pass", 60), Scored("b", "NodataFailMetric")], 60.0),  # mustHaveData: scored as a failure
])
def test_weighted_sum_scorer(metrics: list[Scored], expected: float) -> None:
    assert summary_score(metrics)[0] == expected


def test_score_classes() -> None:
    assert [classify_score(v, 95, 75) for v in (100, 95, 94.99, 75, 74.99)] == [
        ScoreClass.PASS, ScoreClass.PASS, ScoreClass.MARGINAL, ScoreClass.MARGINAL, ScoreClass.FAIL]
    crit = score([Scored("a", "Pass"), Scored("b", "High", critical=True)], 95, 75)
    assert crit.critical and crit.classification is ScoreClass.FAIL and "b failed critically" in crit.reason


# -- the API: fields, errors, judging through the operator's functions -------------------------------


def _compare_canary(compare_block: dict[str, Any], **analysis: Any) -> dict[str, Any]:
    metrics = [{"name": "latency", "query": "histogram_quantile(0.99, x)", "compare": compare_block}]
    return canary_manifest(metrics=metrics, **analysis)


def test_fields_are_read() -> None:
    spec = parse_canary(_compare_canary({
        "direction": "either", "tolerance": 0.05, "critical": True, "mustHaveData": True, "nanStrategy": "replace",
        "effectSize": {"measure": "cles", "allowedIncrease": 0.8, "allowedDecrease": 0.2, "criticalIncrease": 0.9},
        "outliers": {"strategy": "remove", "factor": 2.5}, "weight": 100,
    }, scoring={"pass": 90, "marginal": 60})).spec
    c = spec.analysis.metrics[0].compare
    assert c is not None and c.critical and c.must_have_data and c.nan_strategy is NanStrategy.REPLACE
    assert c.effect_size is not None and c.effect_size.measure is EffectMeasure.CLES
    assert (c.effect_size.allowed_increase, c.effect_size.allowed_decrease) == (0.8, 0.2)
    assert (c.effect_size.critical_increase, c.effect_size.critical_decrease) == (0.9, None)
    assert c.outliers is not None and c.outliers.remove and c.outliers.factor == 2.5 and c.weight == 100
    assert spec.analysis.scoring is not None and (spec.analysis.scoring.pass_at, spec.analysis.scoring.marginal) == (
        90, 60)
    plain = parse_canary(_compare_canary({"tolerance": 0.1})).spec.analysis
    assert plain.scoring is None and judging.rules_of(plain.metrics[0]) is None


def _errors(obj: dict[str, Any]) -> list[FieldError]:
    with pytest.raises(ValidationError) as caught:
        parse_resource(obj)
    return caught.value.errors


M0 = "spec.analysis.metrics[0].compare"


@pytest.mark.parametrize(("obj", "path", "words"), [
    (_compare_canary({"effectSize": {"measure": "cohenD"}}), f"{M0}.effectSize.measure", "known: meanRatio, cles"),
    (_compare_canary({"effectSize": {"measure": "cles", "allowedIncrease": 1.2}}),
     f"{M0}.effectSize.allowedIncrease", "between 0 and 1"),
    (_compare_canary({"effectSize": {"allowedDecrease": 0}}), f"{M0}.effectSize.allowedDecrease", "above 0"),
    (_compare_canary({"effectSize": {"allowed": 1.1}}), f"{M0}.effectSize.allowed", "unknown field"),
    (_compare_canary({"nanStrategy": "zero"}), f"{M0}.nanStrategy", "known: remove, replace"),
    (_compare_canary({"outliers": {"strategy": "drop"}}), f"{M0}.outliers.strategy", "remove, keep"),
    (_compare_canary({"outliers": {"strategy": "remove", "factor": 0}}), f"{M0}.outliers.factor", "greater than zero"),
    (_compare_canary({"critical": "yes"}), f"{M0}.critical", "true or false"),
    (_compare_canary({"mustHaveData": 1}), f"{M0}.mustHaveData", "true or false"),
    (_compare_canary({"weight": 50}), f"{M0}.weight", "add analysis.scoring"),
    (_compare_canary({"weight": 120}, scoring={}), f"{M0}.weight", "between 0 and 100"),
    (_compare_canary({"weight": 50}, scoring={}), "spec.analysis.metrics", "add up to 50"),
    (_compare_canary({}, scoring={"pass": 70, "marginal": 80}), "spec.analysis.scoring.marginal", "must not exceed"),
    (_compare_canary({}, scoring={"pass": 101}), "spec.analysis.scoring.pass", "between 0 and 100"),
    (canary_manifest(judge="sequential", metrics=[{"name": "request-duration", "compare": {"outliers": {}}}]),
     f"{M0}.outliers", "sequential judge"),
])
def test_fields_are_refused_by_name(obj: dict[str, Any], path: str, words: str) -> None:
    errors = _errors(obj)
    assert any(e.path == path and words in e.message for e in errors), errors


def _metric(compare_block: dict[str, Any], name: str = "latency") -> tuple[Analysis, Metric]:
    analysis = parse_canary(_compare_canary(compare_block)).spec.analysis
    return analysis, replace(analysis.metrics[0], name=name)


def test_judge_compare_applies_effect_size_nan_strategy_and_outliers() -> None:
    # ClassifierSuite "Critical Effect Size: Pass" numbers: a significant 12x increase, allowed up to 13x
    canary, primary = [20.0, 22.0, 21.0, 25.0, 30.0], [1.0, 2.2, 1.1, 2.5, 3.0]
    analysis, metric = _metric({"direction": "either", "effectSize": {"allowedIncrease": 13}})
    within = judging.judge_compare(analysis, metric, canary, primary)
    assert within.passed and within.details["effect_size"] == pytest.approx(23.6 / 1.96)
    analysis, metric = _metric({"direction": "either", "effectSize": {"allowedIncrease": 5}})
    beyond = judging.judge_compare(analysis, metric, canary, primary)
    assert beyond.failed and beyond.details["classification"] == "High"
    assert judging.judge_compare(*_metric({"direction": "either"}), canary, primary).failed
    # nanStrategy replace: NaN windows are zeros, so the canary's missing windows are data
    analysis, metric = _metric({"nanStrategy": "replace", "mustHaveData": True})
    result = judging.judge_compare(analysis, metric, [math.nan] * 10, [1.0] * 10)
    assert result.details["canary_samples"] == 10
    removed = judging.judge_compare(*_metric({"mustHaveData": True}), [math.nan] * 10, [1.0] * 10)
    assert removed.failed and removed.details["classification"] == "NodataFailMetric"
    # outliers: one huge spike in the canary's window is dropped before the test
    base = [10.0, 10.5, 11.0, 10.2, 10.8, 10.1, 10.4, 10.9, 10.3, 10.6]
    spiky = [*base[:-1], 1e6]
    analysis, metric = _metric({"outliers": {"strategy": "remove"}})
    assert judging.judge_compare(analysis, metric, spiky, base).details["canary_samples"] == 9


def test_finish_applies_critical_and_must_have_data_to_any_judge() -> None:
    threshold_metric = Metric("errors", query="sum(x)", threshold_range=ThresholdRange(max=1))
    analysis = parse_canary(canary_manifest(metrics=[
        {"name": "errors", "query": "sum(x)", "thresholdRange": {"max": 1}, "compare": {"critical": True}}])).spec
    critical_metric = analysis.analysis.metrics[0]
    fail = CheckResult("errors", Verdict.FAIL, 5.0, None, "<= 1", "5 > 1")
    assert judging.finish(threshold_metric, fail).classification == "High"
    assert not judging.finish(threshold_metric, fail).final
    done = judging.finish(critical_metric, fail)
    assert done.critical and done.final
    nodata = judging.finish(critical_metric, CheckResult("errors", Verdict.NO_DATA, reason="no data"))
    assert nodata.verdict is Verdict.FAIL and nodata.final and nodata.classification == "Nodata"
    required = replace(critical_metric, compare=replace(critical_metric.compare, critical=False, must_have_data=True))
    held = judging.finish(required, CheckResult("errors", Verdict.NO_DATA, reason="no data"))
    assert held.verdict is Verdict.FAIL and not held.final and held.classification == "NodataFailMetric"
    assert judging.finish(threshold_metric, CheckResult("errors", Verdict.NO_DATA)).verdict is Verdict.NO_DATA


# -- the planner: the score passes, holds (marginal) or fails a check --------------------------------


NAMES = ("a", "b", "c", "d")


def _scored_canary(**analysis: Any) -> CanarySpec:
    fields: dict[str, Any] = {"threshold": 2, "scoring": {"pass": 95, "marginal": 70},
                              "metrics": [{"name": n, "query": "x", "thresholdRange": {"max": 1}} for n in NAMES]}
    fields.update(analysis)
    if fields["scoring"] is None:
        del fields["scoring"]
    return parse_canary(canary_manifest(**fields)).spec


def _started(world: World) -> World:
    world.run_until(Phase.INITIALIZED)
    world.release("v2", "c2")
    world.tick()
    assert world.status.phase == Phase.PROGRESSING
    return world


def _weights(world: World) -> list[int]:
    return [a.canary for a in world.actions if isinstance(a, SetWeight)]


def test_a_score_at_pass_advances_despite_a_failing_metric() -> None:
    world = _started(World(_scored_canary(scoring={"pass": 75, "marginal": 50})))
    world.checks = lambda w: (*passing(NAMES[:3]), *failing(NAMES[3:]))  # 75
    world.run_until(Phase.SUCCEEDED)
    assert world.status.failed_checks == 0 and world.primary_hash == "v2"


def test_a_marginal_score_holds_the_step_for_one_interval() -> None:
    world = _started(World(_scored_canary()))
    world.checks = lambda w: (*passing(NAMES[:3]), *failing(NAMES[3:]))  # 75: marginal
    world.tick()  # first step
    world.tick()
    assert _weights(world)[-1] == 10 and world.status.failed_checks == 0
    analysis = world.status.analysis
    assert analysis is not None and analysis.score == 75.0 and analysis.score_classification == "marginal"
    assert [m.classification for m in analysis.metrics] == ["", "", "", ""]  # the test's checks carry none
    held = [e for e in world.actions if isinstance(e, Emit) and e.reason == "Marginal"]
    assert len(held) == 1 and "score 75 (marginal" in held[0].message
    # Held once already: marginal again is a failed check (the step is still held).
    world.tick()
    assert _weights(world)[-1] == 10 and world.status.failed_checks == 1
    world.checks = lambda w: passing(NAMES)
    world.tick()
    assert _weights(world)[-1] == 20
    raw = world.status.to_dict()["analysis"]
    assert raw["score"] == 100.0 and raw["scoreClassification"] == "pass"
    assert ReleaseStatus.from_dict(world.status.to_dict()).analysis == world.status.analysis


def test_a_step_that_stays_marginal_is_rolled_back_after_threshold_failed_checks() -> None:
    world = _started(World(_scored_canary()))
    world.checks = lambda w: (*passing(NAMES[:3]), *failing(NAMES[3:]))  # 75: marginal, every time
    world.run_until(Phase.FAILED)
    assert world.status.failed_checks == 2 and world.primary_hash == "v1"
    assert "marginal again" in world.status.condition("Promoted").message  # type: ignore[union-attr]


def test_a_score_below_marginal_counts_as_a_failed_check() -> None:
    world = _started(World(_scored_canary()))
    world.checks = lambda w: (*passing(NAMES[:2]), *failing(NAMES[2:]))  # 50
    world.run_until(Phase.FAILED)
    assert world.status.failed_checks == 2 and world.primary_hash == "v1"


def test_no_data_under_scoring_follows_kayenta() -> None:
    world = _started(World(_scored_canary()))
    world.checks = lambda w: (*passing(NAMES[:3]), *no_data(NAMES[3:]))  # a metric without data counts as 100
    world.run_until(Phase.SUCCEEDED)
    world = _started(World(_scored_canary()))
    world.checks = lambda w: (*passing(NAMES[:2]), *no_data(NAMES[2:]))  # half without data: 0
    world.run_until(Phase.FAILED)


def test_a_critical_failure_rolls_back_at_once_whatever_the_score_or_threshold() -> None:
    for spec in (_scored_canary(threshold=5), _scored_canary(threshold=5, scoring=None)):
        world = _started(World(spec))
        critical = replace(failing(NAMES[3:])[0], critical=True, final=True, classification="High")
        world.checks = lambda w, c=critical: (*passing(NAMES[:3]), c)  # type: ignore[misc]
        world.run_until(Phase.FAILED)
        assert world.status.failed_checks == 1
        assert world.status.analysis is not None and world.status.analysis.metrics[3].critical


# -- the engine's checks: what the status gets, and nanStrategy on a query without series ------------


def _queries(canary: Any) -> tuple[str, str]:
    checks = MetricChecks(canary, Sources(MemorySource({})))
    metric = canary.spec.analysis.metrics[0]
    return checks.query(metric, "canary"), checks.query(metric, "primary")


def test_checks_carry_classification_effect_size_and_critical() -> None:
    canary = release("compare", [{"name": "errors", "query": "sum(x{pod=~'{{ target }}.*'})",
                                  "compare": {"critical": True, "effectSize": {"criticalIncrease": 1.5}}}])
    q_canary, q_primary = _queries(canary)
    rng = np.random.default_rng(11)
    # The compare judge reads the last three intervals, a sample every interval / 10.
    errors, base = 22 + rng.normal(0, 2, WINDOW_SAMPLES), 11 + rng.normal(0, 0.7, WINDOW_SAMPLES)
    source = MemorySource({q_canary: points(errors), q_primary: points(base)})
    (result,) = MetricChecks(canary, Sources(source)).run(AT, T0)
    assert result.verdict is Verdict.FAIL and result.classification == "High"
    assert result.effect_size == pytest.approx(errors.mean() / base.mean()) and result.critical and result.final


def test_checks_under_nan_replace_read_a_query_without_series_as_zeros() -> None:
    metrics = [{"name": "errors", "query": "sum(x{pod=~'{{ target }}.*'})", "compare": {"nanStrategy": "replace"}}]
    canary = release("compare", metrics)
    q_canary, q_primary = _queries(canary)
    only_primary = MemorySource({q_primary: points([0.0, 1.0, 0.0, 0.0, 2.0, 0.0])})
    (result,) = MetricChecks(canary, Sources(only_primary)).run(AT, T0)
    assert result.verdict is Verdict.PASS and result.classification == "Pass"
    nan_canary = MemorySource({q_canary: points([math.nan] * 6), q_primary: points([0.0, 1.0, 0.0, 0.0, 2.0, 0.0])})
    (result,) = MetricChecks(canary, Sources(nan_canary)).run(AT, T0)
    assert result.verdict is Verdict.PASS and "mostly zero" in result.reason
    plain = release("compare", [{**metrics[0], "compare": {}}])
    (result,) = MetricChecks(plain, Sources(only_primary)).run(AT, T0)
    assert result.verdict is Verdict.NO_DATA and result.classification == "Nodata"


# -- `rollout analyze` (replay) and the report honour the same fields ---------------------------------


def test_replay_holds_on_a_marginal_score_and_reports_score_classification_and_effect() -> None:
    # Two metrics weighted 80/20: the light one fails every check (score 80: marginal under pass 90), so
    # the first step is held, then each marginal check counts as failed until the threshold rolls the
    # release back; with pass at 80 the same data promotes.
    def spec(pass_at: int) -> Any:
        metrics = [
            {"name": "latency", "query": "lat{pod=~'{{ target }}.*'}",
             "compare": {"weight": 80, "effectSize": {"allowedIncrease": 1.2}}},
            {"name": "errors", "query": "err{pod=~'{{ target }}.*'}", "compare": {"weight": 20}},
        ]
        return parse_canary(canary_manifest(judge="compare", metrics=metrics, webhooks=[],
                                            scoring={"pass": pass_at, "marginal": 50}))

    def source(canary: Any) -> MemorySource:
        checks = MetricChecks(canary, Sources(MemorySource({})))
        lat, err = canary.spec.analysis.metrics
        ts = np.arange(0, 3600, 6.0) + T0.timestamp()
        rng = np.random.default_rng(3)
        return MemorySource({
            checks.query(lat, "canary"): [Series({}, ts, 100 + rng.normal(0, 1, ts.size))],
            checks.query(lat, "primary"): [Series({}, ts, 100 + rng.normal(0, 1, ts.size))],
            checks.query(err, "canary"): [Series({}, ts, 5 + rng.normal(0, 0.1, ts.size))],
            checks.query(err, "primary"): [Series({}, ts, 1 + rng.normal(0, 0.1, ts.size))],
        })

    held = spec(90)
    checks = MetricChecks(held, Sources(source(held)), strict=True)
    result = replay(held, checks.run, T0, T0 + timedelta(minutes=12))
    assert result.outcome is Outcome.FAILED and result.final_weight == 0
    assert {t.score for t in result.ticks if t.checks} == {80.0}
    assert max(t.weight for t in result.ticks) == 10  # never advanced past the first step
    assert "marginal again after one interval's hold (failed checks 5/5)" in str(result.decided_at) + repr(result)
    last = result.ticks[-1].checks
    assert [c.classification for c in last] == ["Pass", "High"] and last[1].effect_size == pytest.approx(5, rel=0.05)
    line = tick_line(result.ticks[-1])
    assert "errors canary" in line and "(High, effect" in line and "score 80" in line
    run = build_report(held, checks.readings, result.ticks, result.outcome, result.decided_at)
    data = to_dict(run)
    assert data["metrics"][1]["classification"] == "High" and data["metrics"][1]["effectSize"] > 4
    assert {t.get("score") for t in data["ticks"]} == {80.0}
    assert "[High, effect size" in markdown_table(run)
    assert from_json(to_json(run)).metrics[1].classification == "High"

    passing_spec = spec(80)
    checks = MetricChecks(passing_spec, Sources(source(passing_spec)), strict=True)
    assert replay(passing_spec, checks.run, T0, T0 + timedelta(minutes=12)).outcome is Outcome.SUCCEEDED


def test_under_scoring_a_sequential_tests_final_failure_still_rolls_back_at_once() -> None:
    world = _started(World(_scored_canary(threshold=5, scoring={"pass": 70, "marginal": 50})))
    crossed = replace(failing(NAMES[3:])[0], final=True)  # 75 would pass, but the boundary was crossed
    world.checks = lambda w: (*passing(NAMES[:3]), crossed)
    world.run_until(Phase.FAILED)
    assert world.status.failed_checks == 1


def test_the_batch_judge_applies_the_rules_row_by_row() -> None:
    analysis, metric = _metric({"direction": "either", "effectSize": {"allowedIncrease": 13}})
    rows_c = [[20.0, 22.0, 21.0, 25.0, 30.0], [20.0, 22.0, 21.0, 25.0, 30.0]]
    rows_p = [[1.0, 2.2, 1.1, 2.5, 3.0], [20.0, 22.0, 21.0, 25.0, 30.0]]
    assert judging.compare_verdicts(analysis, metric, rows_c, rows_p).tolist() == ["pass", "pass"]
    analysis, metric = _metric({"direction": "either", "effectSize": {"allowedIncrease": 5}})
    assert judging.compare_verdicts(analysis, metric, rows_c, rows_p).tolist() == ["fail", "pass"]
