"""The judges on the values that break naive statistics: metrics that are mostly zero (error counts in
short windows) and infinite values (a p99 above the top histogram bucket), in every judge."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.judges import Verdict
from analysis.judges.compare import compare, compare_batch
from analysis.judges.sequential import sequential_histogram
from analysis.judges.threshold import threshold

# ---- mostly zero -------------------------------------------------------------------------------------


def windows(share: float, n: int, seed: int, mean_errors: float = 2.0) -> np.ndarray:
    """Error counts of n windows: a window has errors with probability `share`, then Poisson(mean)+1."""
    rng = np.random.default_rng(seed)
    return (rng.random(n) < share) * (1 + rng.poisson(mean_errors - 1, n)).astype(float)


def test_errors_in_40_percent_of_windows_against_5_percent_fail_although_the_median_shift_is_0() -> None:
    canary = np.array([0, 2, 0, 0, 1, 3, 0, 0, 1, 0, 2, 0, 0, 1, 0, 0, 4, 0, 0, 1], dtype=float)  # 40%
    primary = np.array([0] * 19 + [1], dtype=float)  # 5%
    r = compare(canary, primary, direction="increase", tolerance=0.1)
    assert r.details["shift"] == pytest.approx(0.0, abs=1e-4)  # what the judge looked at before: nothing
    assert r.verdict is Verdict.FAIL
    assert r.details["effect"] == "mean difference" and r.details["mean_difference"] == pytest.approx(0.7)
    assert "mostly zero" in r.reason and "40% vs 5% non-zero" in r.reason
    assert r.value == pytest.approx(0.75) and r.primary == pytest.approx(0.05)
    # better or the same passes; the other directions judge the other way
    assert compare(primary, canary, direction="increase").verdict is Verdict.PASS
    assert compare(canary, canary.copy(), direction="increase").verdict is Verdict.PASS
    assert compare(canary, primary, direction="decrease").verdict is Verdict.PASS
    assert compare(primary, canary, direction="decrease").verdict is Verdict.FAIL
    assert compare(canary, primary, direction="either").verdict is Verdict.FAIL
    assert compare(primary, canary, direction="either").verdict is Verdict.FAIL
    assert compare(canary, canary[::-1].copy(), direction="either").verdict is Verdict.PASS


@pytest.mark.parametrize("seed", range(5))
def test_zero_heavy_windows_in_both_directions(seed: int) -> None:
    worse, base = windows(0.4, 30, seed), windows(0.05, 30, seed + 100)
    assert np.mean(worse == 0) >= 0.5 and np.mean(base == 0) >= 0.5
    assert compare(worse, base, direction="increase").verdict is Verdict.FAIL
    assert compare(base, worse, direction="increase").verdict is Verdict.PASS
    assert compare(base, worse, direction="decrease").verdict is Verdict.FAIL
    assert compare(worse, base, direction="decrease").verdict is Verdict.PASS
    assert compare(worse, base, direction="either").verdict is Verdict.FAIL


def test_zero_heavy_tolerance_is_relative_to_the_primary_mean() -> None:
    # significant (many windows) but the canary's mean is only ~33% above the primary's
    canary, primary = windows(0.4, 3000, 1), windows(0.3, 3000, 2)
    assert compare(canary, primary, tolerance=0.1).verdict is Verdict.FAIL
    loose = compare(canary, primary, tolerance=0.6)
    assert loose.details["p_value"] < 0.001 and loose.verdict is Verdict.PASS
    assert "60% of primary mean" in loose.reason


def test_zero_heavy_false_alarms_stay_at_alpha_and_batch_agrees() -> None:
    rng = np.random.default_rng(7)
    runs, n = 3000, 11  # one analysis interval: ten steps a side
    c = (rng.random((runs, n)) < 0.1) * rng.poisson(2, (runs, n)).astype(float)
    p = (rng.random((runs, n)) < 0.1) * rng.poisson(2, (runs, n)).astype(float)
    batch = compare_batch(c, p, alpha=0.05)
    assert np.mean(batch == "fail") <= 0.05
    worse = (rng.random((runs, n)) < 0.5) * (1 + rng.poisson(1, (runs, n))).astype(float)
    power = compare_batch(worse, p, alpha=0.05)
    assert np.mean(power == "fail") >= 0.5
    single = [compare(worse[i], p[i]).verdict.value for i in range(200)]
    assert np.mean(power[:200] == np.array(single)) >= 0.95


def test_ordinary_continuous_data_are_still_judged_by_the_median_shift() -> None:
    rng = np.random.default_rng(3)
    r = compare(rng.normal(130, 5, 20), rng.normal(100, 5, 20))
    assert r.verdict is Verdict.FAIL and r.details["effect"] == "median shift"


# ---- infinite values ---------------------------------------------------------------------------------


def test_threshold_infinity_is_beyond_any_max_and_within_any_min() -> None:
    assert threshold(math.inf, max_value=500).verdict is Verdict.FAIL
    assert threshold(math.inf, min_value=99).verdict is Verdict.PASS
    assert threshold(-math.inf, min_value=99).verdict is Verdict.FAIL
    assert threshold(-math.inf, max_value=500).verdict is Verdict.PASS
    assert threshold([120.0, math.inf, math.nan], max_value=500).verdict is Verdict.FAIL  # latest value
    r = threshold(math.inf, max_value=500, name="latency p99")
    assert r.value == math.inf and "inf > max 500" in r.reason
    assert threshold(math.nan, max_value=500).verdict is Verdict.NO_DATA
    assert threshold([math.nan, math.nan], max_value=500).verdict is Verdict.NO_DATA


def test_compare_ranks_infinity_above_every_finite_value() -> None:
    rng = np.random.default_rng(4)
    primary = rng.normal(100, 5, 20)
    canary = rng.normal(100, 5, 20)
    canary[:8] = math.inf  # 40% of windows had a p99 above the top bucket
    huge = np.where(np.isinf(canary), 1e12, canary)
    slower = compare(canary, primary, direction="increase", tolerance=0.0)
    assert slower.verdict is Verdict.FAIL and slower.details["canary_samples"] == 20
    assert slower.details["p_value"] == pytest.approx(compare(huge, primary, tolerance=0.0).details["p_value"])
    canary[:16] = math.inf  # most windows: the whole interval is infinite
    r = compare(canary, primary, direction="increase")
    assert r.verdict is Verdict.FAIL and r.details["shift"] == math.inf and r.value == math.inf
    assert compare(canary, primary, direction="decrease").verdict is Verdict.PASS
    # a lower-is-better metric: -Inf is the best value, +Inf in the primary makes the canary better
    assert compare(primary, canary, direction="increase").verdict is Verdict.PASS
    best = rng.normal(100, 5, 20)
    best[:16] = -math.inf
    assert compare(best, primary, direction="increase").verdict is Verdict.PASS
    assert compare(best, primary, direction="decrease").verdict is Verdict.FAIL
    # all values infinite on both sides: equal, no evidence
    assert compare([math.inf] * 5, [math.inf] * 5).verdict is Verdict.PASS
    # NaN stays no data
    assert compare([math.nan] * 5 + [1.0, 2.0], primary).verdict is Verdict.NO_DATA


def test_compare_mostly_zero_with_an_infinite_window_is_beyond_any_tolerance() -> None:
    canary = np.array([0, 0, math.inf, 0, 1, 0, 2, 0, 0, 3, 0, 0], dtype=float)
    primary = np.zeros(12)
    r = compare(canary, primary, tolerance=10.0)
    assert r.verdict is Verdict.FAIL and r.details["mean_difference"] == math.inf


def test_compare_batch_keeps_infinities() -> None:
    rng = np.random.default_rng(5)
    primary = rng.normal(100, 5, (4, 20))
    canary = rng.normal(100, 5, (4, 20))
    canary[:, :16] = math.inf
    assert (compare_batch(canary, primary) == "fail").all()
    assert (compare_batch(primary, canary) == "pass").all()


LE = [0.025, 0.05, 0.1, 0.25, 0.5]


def test_sequential_counts_requests_above_the_top_bucket_as_the_slowest() -> None:
    """The sequential latency test's observations are requests; a request above the top finite bucket
    (the one that makes histogram_quantile's p99 run off the end) is slow at every boundary."""
    looks = 20
    per_look = np.array([30.0, 60.0, 80.0, 95.0, 100.0, 100.0])  # cumulative over le, +Inf last
    primary = np.cumsum(np.tile(per_look, (looks, 1)), axis=0)
    beyond = per_look.copy()
    beyond[:-1] *= 0.9  # 10% of the canary's requests only in the +Inf bucket
    canary = np.cumsum(np.tile(beyond, (looks, 1)), axis=0)
    r = sequential_histogram(canary, primary, le=LE)
    assert r.verdict is Verdict.FAIL
    assert r.details["le"] == LE[-1] and r.value == pytest.approx(0.1) and r.primary == 0.0
    # the same requests below the top bucket instead: still slower than the primary, but by less
    assert sequential_histogram(primary, canary, le=LE).verdict is Verdict.PASS


# ---- through the operator's checks --------------------------------------------------------------------


def test_operator_threshold_fails_an_infinite_p99_and_the_status_carries_null() -> None:
    from rollout.api.status import AnalysisStatus, MetricStatus, ReleaseStatus
    from tests.unit.test_checks import MemorySource, check, points, release

    query = 'histogram_quantile(0.99, sum(rate(x_bucket{app="{{ target }}"}[1m])) by (le))'
    canary = release(metrics=[{"name": "p99", "query": query, "thresholdRange": {"max": 500}}])
    rendered = query.replace("{{ target }}", "podinfo")
    (result,) = check(MemorySource({rendered: points([120.0, math.inf])}), canary)
    assert result.verdict is Verdict.FAIL and result.value == math.inf and "inf > max 500" in result.reason
    status = ReleaseStatus(analysis=AnalysisStatus("fail", None, (
        MetricStatus(result.name, result.verdict.value, result.value, None, result.limit, result.reason),)))
    assert status.to_dict()["analysis"]["metrics"][0]["value"] is None  # JSON has no infinity


def test_operator_compare_keeps_infinite_points_and_catches_a_zero_heavy_error_rate() -> None:
    from tests.unit.test_checks import WINDOW_SAMPLES, MemorySource, check, points, release, success_rate_queries

    query = 'p99{app="{{ target }}"}'
    canary = release("compare", [{"name": "p99", "query": query, "compare": {"direction": "increase"}}])
    rng = np.random.default_rng(2)
    slow = rng.normal(100, 5, WINDOW_SAMPLES)
    slow[:25] = math.inf  # most windows above the top bucket
    source = MemorySource({'p99{app="podinfo"}': points(slow),
                           'p99{app="podinfo-primary"}': points(rng.normal(100, 5, WINDOW_SAMPLES))})
    (result,) = check(source, canary)
    assert result.verdict is Verdict.FAIL and result.value == math.inf, result.reason

    # success rate 100% in most windows: judged as an error rate that is mostly zero
    canary = release("compare", [{"name": "request-success-rate"}])
    q_canary, q_primary = success_rate_queries(canary)
    # % of requests failed; the canary's 1 m error rate never drops to 0 (the window counts as ~3
    # independent rates per arm, so a difference must hold throughout to be significant)
    errors_c = np.resize(np.array([1, 2, 1, 3, 1, 2], dtype=float), WINDOW_SAMPLES)
    errors_p = np.resize(np.array([0] * 10 + [1], dtype=float), WINDOW_SAMPLES)
    source = MemorySource({q_canary: points(100 - errors_c), q_primary: points(100 - errors_p)})
    (result,) = check(source, canary)
    assert result.verdict is Verdict.FAIL and "mostly zero" in result.reason, result.reason
    assert result.value == pytest.approx(100 - errors_c.mean())
    source = MemorySource({q_canary: points(100 - errors_p), q_primary: points(100 - errors_c)})
    assert check(source, canary)[0].verdict is Verdict.PASS
