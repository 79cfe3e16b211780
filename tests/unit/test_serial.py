"""The compare judge's correction for serially correlated samples: on simulated correlated nulls the
corrected Mann-Whitney rejects about as often as its alpha (the uncorrected one several times more), on
independent samples the judge is R's test unchanged, and the operator's samples (overlapping 1 m rates)
are judged with it."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from analysis.judges.compare import compare, compare_batch, hodges_lehmann_batch, mannwhitney_batch
from analysis.judges.serial import arm_factor, autocorrelations, rank_sum_inflation
from analysis.judges.wilcoxon import rank_sum
from analysis.verdicts import Verdict
from rollout.engine import judging
from tests.unit.test_checks import release

FloatArray = npt.NDArray[np.float64]
RUNS = 1500
ALPHA = 0.05


def ar1(rng: np.random.Generator, rho: float, runs: int, n: int) -> FloatArray:
    z = np.empty((runs, n))
    z[:, 0] = rng.normal(size=runs)
    eps = rng.normal(size=(runs, n)) * np.sqrt(1 - rho**2)
    for t in range(1, n):
        z[:, t] = rho * z[:, t - 1] + eps[:, t]
    return z


def rates(rng: np.random.Generator, window: int, runs: int, n: int) -> FloatArray:
    """Sums over the last `window` steps of independent noise, at every step: overlapping rates."""
    c = np.cumsum(rng.normal(size=(runs, n + window)), axis=1)
    return np.asarray(c[:, window:] - c[:, :-window], dtype=np.float64)


def rejections(x: FloatArray, y: FloatArray, inflation: npt.ArrayLike = 1.0) -> float:
    _, p = mannwhitney_batch(x, y, "greater", inflation)
    return float(np.mean(p < ALPHA))


@pytest.mark.parametrize(("window", "n"), [(6, 30), (6, 84), (10, 101)])
def test_overlapping_rates_are_rejected_at_about_alpha_once_corrected(window: int, n: int) -> None:
    rng = np.random.default_rng(window * 1000 + n)
    x, y = rates(rng, window, RUNS, n), rates(rng, window, RUNS, n)
    assert rejections(x, y) > 0.2  # Mann-Whitney taking them as independent
    assert 0.025 <= rejections(x, y, rank_sum_inflation(x, y, window)) <= 0.075


@pytest.mark.parametrize(("rho", "n", "most"), [(0.5, 120, 0.07), (0.8, 120, 0.075), (0.5, 60, 0.075)])
def test_ar1_nulls_are_rejected_near_alpha_once_corrected(rho: float, n: int, most: float) -> None:
    """Without a known overlap the correlation is estimated; from short, strongly correlated series it is
    underestimated (the residual excess shrinks as n grows), never anywhere near the uncorrected rate."""
    rng = np.random.default_rng(int(rho * 10) + n)
    x, y = ar1(rng, rho, RUNS, n), ar1(rng, rho, RUNS, n)
    raw = rejections(x, y)
    corrected = rejections(x, y, rank_sum_inflation(x, y, 1))
    assert raw > 0.15 and 0.02 <= corrected <= most, (raw, corrected)


def test_independent_samples_keep_their_size() -> None:
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(RUNS, 60)), rng.normal(size=(RUNS, 60))
    f = rank_sum_inflation(x, y, 1)
    assert np.median(f) < 1.3
    assert 0.025 <= rejections(x, y, f) <= 0.065


def test_on_independent_samples_compare_is_r_exact() -> None:
    """Without `window` the judge's p-value and interval are R's wilcox.test (exact here: no ties, < 50)."""
    rng = np.random.default_rng(11)
    c, p = rng.normal(1.3, 0.2, 12), rng.normal(1.0, 0.2, 12)
    r = rank_sum(c, p, alternative="greater", conf_level=0.95)
    got = compare(c, p, tolerance=0.1, alpha=0.05)
    assert r.exact and got.details["exact"]
    assert got.details["p_value"] == r.p_value and got.details["ci"] == [r.lower, r.upper]
    assert "effective_samples" not in got.details
    assert rank_sum(c, p, inflation=1.0) == rank_sum(c, p)


def test_the_inflated_test_is_the_normal_approximation_with_a_wider_variance() -> None:
    rng = np.random.default_rng(12)
    c, p = rng.normal(1.2, 0.3, 40), rng.normal(1.0, 0.3, 40)
    plain = rank_sum(c, p, alternative="greater", conf_level=0.95, exact=False)
    wide = rank_sum(c, p, alternative="greater", conf_level=0.95, inflation=4.0)
    assert not wide.exact and wide.p_value > plain.p_value and wide.lower < plain.lower
    # z halves when the variance quadruples (continuity correction included)
    from scipy import stats
    z_plain = stats.norm.isf(plain.p_value)
    assert stats.norm.isf(wide.p_value) == pytest.approx(z_plain / 2, rel=1e-9)
    # the batch twin gives the same p-value and (to the root's tolerance) the same bound
    _, pv = mannwhitney_batch(c, p, "greater", 4.0)
    _, lo, _ = hodges_lehmann_batch(c, p, 0.9, 4.0)
    assert float(pv[0]) == pytest.approx(wide.p_value, rel=1e-9)
    assert float(lo[0]) == pytest.approx(wide.lower, abs=1e-3)
    with pytest.raises(ValueError, match="inflation"):
        rank_sum(c, p, inflation=0.5)


def test_autocorrelations_close_up_gaps_and_the_overlap_is_a_floor() -> None:
    rng = np.random.default_rng(3)
    x = ar1(rng, 0.7, 1, 80)
    gappy = np.insert(x, [10, 40], np.nan, axis=1)
    assert autocorrelations(gappy, 3) == pytest.approx(autocorrelations(x, 3))
    assert autocorrelations(np.ones((1, 10)), 2).tolist() == [[0.0, 0.0]]
    noise = rng.normal(size=(1, 60))
    # rates over 6 steps: each shares 5/6 of its window with the next, whatever the estimate says
    floor = 1 + 2 * sum((1 - k / 60) * (1 - k / 6) for k in range(1, 6))
    assert arm_factor(noise, 6)[0] >= floor - 1e-12 and arm_factor(noise, 6)[0] == pytest.approx(floor)


def test_the_operators_compare_counts_overlapping_samples_as_what_they_are_worth() -> None:
    """One interval of 1 m rates sampled every 6 s is about one independent rate per arm: a canary ahead
    in all of them is no evidence; the same gap over the judge's window of three intervals is."""
    analysis = release("compare", [{"name": "latency", "query": "q", "compare": {"tolerance": 0.1}}]).spec.analysis
    metric = analysis.metrics[0]
    rng = np.random.default_rng(4)
    last = (130 + rng.normal(0, 1, 11), 100 + rng.normal(0, 1, 11))
    assert compare(*last, tolerance=0.1).verdict is Verdict.FAIL  # as if independent
    one = judging.judge_compare(analysis, metric, *last, step=6.0)
    assert one.verdict is Verdict.PASS and one.details["effective_samples"] < 6, one.reason
    window = (130 + rng.normal(0, 1, 31), 100 + rng.normal(0, 1, 31))
    three = judging.judge_compare(analysis, metric, *window, step=6.0)
    assert three.verdict is Verdict.FAIL, three.reason
    batch = judging.compare_verdicts(analysis, metric, np.stack([last[0], window[0][:11]]),
                                     np.stack([last[1], window[1][:11]]), step=6.0)
    assert batch.tolist() == ["pass", "pass"]
    assert judging.compare_verdicts(analysis, metric, window[0], window[1], step=6.0).tolist() == ["fail"]
    assert compare_batch(*last, window=10).tolist() == ["pass"]


def test_the_operator_reads_the_last_three_intervals() -> None:
    """Ten minutes into the run, a canary that was bad until four minutes ago and is like the primary
    since passes; one that turned bad two and a half minutes ago fails."""
    from tests.unit.test_checks import MemorySource, check, points, success_rate_queries

    assert judging.COMPARE_INTERVALS == 3
    canary = release("compare", [{"name": "request-success-rate"}])
    q_canary, q_primary = success_rate_queries(canary)
    rng = np.random.default_rng(9)
    good, primary = 99.9 + rng.normal(0, 0.02, 101), points(99.9 + rng.normal(0, 0.02, 101))
    healed = good.copy()
    healed[:61] = 90.0
    (result,) = check(MemorySource({q_canary: points(healed), q_primary: primary}), canary)
    assert result.verdict is Verdict.PASS, result.reason
    broken = good.copy()
    broken[-25:] = 90.0
    (result,) = check(MemorySource({q_canary: points(broken), q_primary: primary}), canary)
    assert result.verdict is Verdict.FAIL, result.reason
