"""Unit tests of the three judges: verdicts, no-data handling, agreement with scipy, and the sequential
judge's error guarantees (never flags a better canary, stops a clear regression, false alarms <= alpha)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analysis.judges import JudgeResult, Verdict
from analysis.judges.compare import compare, compare_batch, hodges_lehmann_batch, mannwhitney_batch
from analysis.judges.sequential import (
    count_log_evalues,
    first_crossing,
    histogram_log_evalues,
    increments,
    sequential_counts,
    sequential_histogram,
)
from analysis.judges.threshold import threshold
from analysis.verdicts import Direction

# ---- threshold ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "lo", "hi", "verdict"),
    [
        (99.5, 99.0, None, Verdict.PASS),
        (99.0, 99.0, None, Verdict.PASS),  # bounds are inclusive, as in Flagger
        (98.9, 99.0, None, Verdict.FAIL),
        (0.4, None, 0.5, Verdict.PASS),
        (0.6, None, 0.5, Verdict.FAIL),
        (5.0, 1.0, 10.0, Verdict.PASS),
        (0.5, 1.0, 10.0, Verdict.FAIL),
        (11.0, 1.0, 10.0, Verdict.FAIL),
        (3.0, None, None, Verdict.PASS),
        (None, 99.0, None, Verdict.NO_DATA),
        (math.nan, 99.0, None, Verdict.NO_DATA),
        ([], None, 0.5, Verdict.NO_DATA),
        ([math.nan, math.nan], None, 0.5, Verdict.NO_DATA),
        ([0.9, 0.3, math.nan], None, 0.5, Verdict.PASS),  # the last finite sample counts
    ],
)
def test_threshold(value: object, lo: float | None, hi: float | None, verdict: Verdict) -> None:
    result = threshold(value, min_value=lo, max_value=hi, name="m")  # type: ignore[arg-type]
    assert result.verdict is verdict
    assert isinstance(result, JudgeResult)
    assert result.reason.startswith("m")
    if verdict is Verdict.NO_DATA:
        assert result.value is None


def test_threshold_rejects_inverted_range() -> None:
    with pytest.raises(ValueError, match="above max"):
        threshold(1.0, min_value=2.0, max_value=1.0)


def test_threshold_reason_has_the_numbers() -> None:
    r = threshold(97.5, min_value=99, name="request-success-rate")
    assert r.failed and "97.5" in r.reason and "99" in r.reason


# ---- compare -----------------------------------------------------------------------------------------


def test_compare_p_value_agrees_with_scipy() -> None:
    # R's rule: exact below 50 values a side without ties, the corrected normal approximation otherwise
    rng = np.random.default_rng(3)
    for _ in range(20):
        c = rng.lognormal(0.1, 0.3, rng.integers(4, 70))
        p = rng.lognormal(0.0, 0.3, rng.integers(4, 70))
        method = "exact" if c.size < 50 and p.size < 50 else "asymptotic"
        for d, alt in [("increase", "greater"), ("decrease", "less"), ("either", "two-sided")]:
            r = compare(c, p, direction=d, tolerance=0.0)
            ref = stats.mannwhitneyu(c, p, alternative=alt, method=method).pvalue
            assert r.details["p_value"] == pytest.approx(ref)
            assert r.details["exact"] is (method == "exact")


def test_batch_mannwhitney_agrees_with_scipy_asymptotic_with_ties_and_nans() -> None:
    rng = np.random.default_rng(4)
    x = rng.poisson(3, (30, 12)).astype(float)
    y = rng.poisson(2, (30, 15)).astype(float)
    x[rng.random(x.shape) < 0.1] = np.nan
    y[rng.random(y.shape) < 0.1] = np.nan
    for alt in ("greater", "less", "two-sided"):
        u, p = mannwhitney_batch(x, y, alt)
        for i in range(len(x)):
            ref = stats.mannwhitneyu(x[i][~np.isnan(x[i])], y[i][~np.isnan(y[i])], alternative=alt,
                                     method="asymptotic")
            assert p[i] == pytest.approx(ref.pvalue)
            assert u[i] == pytest.approx(ref.statistic)  # U of x, whatever the alternative


def test_hodges_lehmann_is_the_median_pairwise_difference_and_ci_covers_it() -> None:
    rng = np.random.default_rng(5)
    c, p = rng.normal(1.0, 1, 25), rng.normal(0.0, 1, 30)
    est, lo, hi = (float(a[0]) for a in hodges_lehmann_batch(c, p, 0.9))
    assert est == pytest.approx(np.median(np.subtract.outer(c, p)))
    assert lo < est < hi
    # a wider confidence gives a wider interval
    _, lo2, hi2 = (float(a[0]) for a in hodges_lehmann_batch(c, p, 0.99))
    assert lo2 <= lo and hi2 >= hi


def test_compare_fails_a_clear_regression_in_the_bad_direction_only() -> None:
    rng = np.random.default_rng(6)
    primary = rng.normal(100, 5, 30)
    slower = rng.normal(130, 5, 30)
    assert compare(slower, primary, direction="increase").verdict is Verdict.FAIL
    assert compare(slower, primary, direction="decrease").verdict is Verdict.PASS
    assert compare(slower, primary, direction="either").verdict is Verdict.FAIL
    faster = rng.normal(70, 5, 30)
    assert compare(faster, primary, direction="increase").verdict is Verdict.PASS
    assert compare(faster, primary, direction=Direction.DECREASE).verdict is Verdict.FAIL


def test_compare_tolerance_lets_a_significant_but_small_shift_pass() -> None:
    rng = np.random.default_rng(7)
    primary = rng.normal(100, 1, 200)
    canary = rng.normal(103, 1, 200)  # clearly significant, but 3% of the median
    tight = compare(canary, primary, tolerance=0.0)
    loose = compare(canary, primary, tolerance=0.1)
    assert tight.details["p_value"] < 1e-6
    assert tight.verdict is Verdict.FAIL
    assert loose.verdict is Verdict.PASS
    assert "10% of primary median" in loose.reason


def test_compare_no_data_nan_and_constant() -> None:
    assert compare([], [1, 2, 3]).verdict is Verdict.NO_DATA
    assert compare([1, 2], [1, 2, 3]).verdict is Verdict.NO_DATA
    assert compare([np.nan] * 10, [1, 2, 3]).verdict is Verdict.NO_DATA
    r = compare([5.0, 5.0, 5.0, 5.0], [5.0, 5.0, 5.0])
    assert r.verdict is Verdict.PASS and r.value == 5.0 and r.primary == 5.0
    # NaNs are dropped, not treated as values
    rng = np.random.default_rng(8)
    c, p = rng.normal(0, 1, 20), rng.normal(0, 1, 20)
    with_nan = np.concatenate([c, [np.nan, np.nan]])
    assert compare(with_nan, p).details["p_value"] == compare(c, p).details["p_value"]
    # an infinite value is a value (the worst one), not a gap
    assert compare(np.concatenate([c, [np.inf]]), p).details["canary_samples"] == 21


def test_compare_batch_matches_compare_on_large_samples() -> None:
    rng = np.random.default_rng(9)
    c = rng.lognormal(0.15, 0.2, (40, 60))
    p = rng.lognormal(0.0, 0.2, (40, 60))
    batch = compare_batch(c, p, tolerance=0.05)
    single = [compare(c[i], p[i], tolerance=0.05).verdict.value for i in range(40)]
    # large samples, no ties: scipy's exact/asymptotic choice rarely changes a verdict
    assert np.mean(batch == np.array(single)) >= 0.95
    assert (batch == "fail").any()
    assert compare_batch(np.full((2, 2), np.nan), p[:2]).tolist() == ["no-data", "no-data"]


# ---- sequential: counts ----------------------------------------------------------------------------


def simulate_counts(rng: np.random.Generator, runs: int, looks: int, rate: float, ratio: float,
                    canary_rps: float | np.ndarray, primary_rps: float | np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    nc = rng.poisson(np.broadcast_to(canary_rps, (runs, looks)))
    npr = rng.poisson(np.broadcast_to(primary_rps, (runs, looks)))
    ec = rng.binomial(nc, min(rate * ratio, 1.0))
    ep = rng.binomial(npr, rate)
    return tuple(np.cumsum(a, axis=1).astype(float) for a in (ec, nc, ep, npr))  # type: ignore[return-value]


def test_increments_handle_missing_and_resets() -> None:
    inc = increments([1.0, np.nan, 5.0, 4.0, 9.0])
    assert inc.tolist() == [1.0, 0.0, 4.0, 0.0, 5.0]
    assert increments([2.0, 3.0, 7.0], start=1).tolist() == [0.0, 1.0, 4.0]


def test_sequential_rejects_a_clear_5x_regression_quickly() -> None:
    rng = np.random.default_rng(10)
    ce, cn, pe, pn = simulate_counts(rng, 1, 60, 0.01, 5.0, 20.0, 180.0)
    r = sequential_counts(ce[0], cn[0], pe[0], pn[0])
    assert r.verdict is Verdict.FAIL
    assert r.details["crossed_at"] is not None and r.details["crossed_at"] <= 5
    assert r.details["max_evalue"] >= 20
    assert r.value is not None and r.primary is not None and r.value > 3 * r.primary
    assert "vs primary" in r.reason and ">= 20" in r.reason


def test_sequential_never_rejects_a_better_canary() -> None:
    rng = np.random.default_rng(11)
    ce, cn, pe, pn = simulate_counts(rng, 300, 60, 0.02, 0.5, 50.0, 50.0)
    log_e = count_log_evalues(ce, cn, pe, pn)
    assert (first_crossing(log_e, 0.05) < 0).all()
    assert np.median(log_e[:, -1]) < 0  # evidence goes against "worse"


def test_sequential_false_alarms_stay_below_alpha_with_changing_split() -> None:
    """Monte-Carlo null check: same error rate on both sides, canary weight rising look by look,
    a look at every increment. Ville's inequality bounds the rate at alpha whatever the looks."""
    rng = np.random.default_rng(12)
    runs, looks = 4000, 60
    weight = np.minimum(0.05 * (1 + np.arange(looks) // 6), 0.5)
    ce, cn, pe, pn = simulate_counts(rng, runs, looks, 0.01, 1.0, 400 * weight, 400 * (1 - weight))
    far = float((first_crossing(count_log_evalues(ce, cn, pe, pn), 0.05) >= 0).mean())
    upper = stats.binomtest(round(far * runs), runs).proportion_ci(method="exact").high
    assert far <= 0.05 + 0.01 and upper <= 0.07, far


def test_sequential_margin_tolerates_small_differences() -> None:
    rng = np.random.default_rng(13)
    ce, cn, pe, pn = simulate_counts(rng, 200, 60, 0.02, 1.08, 300.0, 300.0)
    strict = (first_crossing(count_log_evalues(ce, cn, pe, pn), 0.05) >= 0).mean()
    lenient = (first_crossing(count_log_evalues(ce, cn, pe, pn, margin=1.15), 0.05) >= 0).mean()
    assert lenient <= 0.05 < strict


def test_sequential_is_restart_safe_and_batched_equals_single() -> None:
    rng = np.random.default_rng(14)
    ce, cn, pe, pn = simulate_counts(rng, 5, 30, 0.01, 3.0, 20.0, 20.0)
    batch = count_log_evalues(ce, cn, pe, pn)
    for i in range(5):
        a = sequential_counts(ce[i], cn[i], pe[i], pn[i])
        b = sequential_counts(ce[i].tolist(), cn[i].tolist(), pe[i].tolist(), pn[i].tolist())
        assert a == b  # the same arrays always give the same verdict
        assert np.allclose(np.log(a.details["evalues"]), batch[i])
    # a verdict at look k only depends on data up to look k
    full = sequential_counts(ce[0], cn[0], pe[0], pn[0])
    part = sequential_counts(ce[0][:10], cn[0][:10], pe[0][:10], pn[0][:10])
    assert np.allclose(full.details["evalues"][:10], part.details["evalues"])


def test_sequential_counts_no_data_and_missing_looks() -> None:
    assert sequential_counts([], [], [], []).verdict is Verdict.NO_DATA
    assert sequential_counts([0, 0], [0, 0], [0, 1], [10, 20]).verdict is Verdict.NO_DATA
    assert sequential_counts([np.nan] * 3, [np.nan] * 3, [1, 2, 3], [9, 9, 9]).verdict is Verdict.NO_DATA
    # a lost scrape delays the counts to the next look but loses nothing
    ce, cn, pe, pn = (np.array(a, dtype=float) for a in ([5, 10, 20], [100, 200, 300], [1, 2, 3],
                                                         [100, 200, 300]))
    holed = [a.copy() for a in (ce, cn, pe, pn)]
    holed[0][1] = np.nan
    a, b = sequential_counts(ce, cn, pe, pn), sequential_counts(*holed)
    assert a.details["evalue"] == pytest.approx(b.details["evalue"], rel=0.3)
    assert b.details["looks_with_data"] == 2
    with pytest.raises(ValueError):
        sequential_counts([1], [1, 2], [1], [1])
    with pytest.raises(ValueError):
        sequential_counts([1], [2], [1], [2], margin=0.9)


# ---- sequential: histograms ------------------------------------------------------------------------

LE = np.array([0.05, 0.1, 0.2, 0.4, 0.8])


def histograms(rng: np.random.Generator, runs: int, looks: int, n: float, median: float,
               tail: float = 0.0) -> np.ndarray:
    """Prometheus-style cumulative (over time and le) buckets of lognormal latencies."""
    cdf = stats.norm.cdf((np.log(LE) - np.log(median)) / 0.5)
    slow = stats.norm.cdf((np.log(LE) - np.log(3 * median)) / 0.5)
    cdf = (1 - tail) * cdf + tail * slow
    probs = np.diff(np.concatenate([[0.0], cdf, [1.0]]))
    counts = rng.multinomial(rng.poisson(n, (runs, looks)), probs)
    return np.cumsum(np.cumsum(counts, axis=2), axis=1).astype(float)


def test_histogram_flags_slower_canary_and_tail_regression() -> None:
    rng = np.random.default_rng(15)
    primary = histograms(rng, 1, 30, 100, 0.1)
    slower = sequential_histogram(histograms(rng, 1, 30, 100, 0.13)[0], primary[0], le=LE)
    assert slower.verdict is Verdict.FAIL and slower.value is not None and slower.primary is not None
    assert slower.value > slower.primary and "of canary requests >" in slower.reason
    tail = sequential_histogram(histograms(rng, 1, 30, 100, 0.1, tail=0.05)[0], primary[0], le=LE)
    assert tail.verdict is Verdict.FAIL


def test_histogram_never_flags_a_faster_canary_and_controls_false_alarms() -> None:
    rng = np.random.default_rng(16)
    primary = histograms(rng, 500, 40, 30, 0.1)
    faster = histogram_log_evalues(histograms(rng, 500, 40, 30, 0.08), primary)
    assert (first_crossing(faster, 0.05) < 0).all()
    same = histogram_log_evalues(histograms(rng, 500, 40, 30, 0.1), primary)
    assert (first_crossing(same, 0.05) >= 0).mean() <= 0.05


def test_histogram_no_data_and_shape_errors() -> None:
    empty = np.zeros((3, 6))
    assert sequential_histogram(empty, empty, le=LE).verdict is Verdict.NO_DATA
    with pytest.raises(ValueError):
        sequential_histogram(np.zeros((3, 6)), np.zeros((3, 5)))
    with pytest.raises(ValueError):
        sequential_histogram(empty, empty, le=[0.1])
