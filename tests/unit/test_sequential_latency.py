"""The sequential latency test on simulated histograms: false alarms <= alpha on good canaries (equal,
faster, slower within the margin or the allowed slowdown, uneven traffic), power on median shifts and a
tail-only regression, and bets that only use the looks before (so the verdict never changes when later
data arrive)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats
from scipy.special import logsumexp

from analysis.judges.sequential import (
    BOUNDARY_WEIGHT,
    LATENCY_SHIFTS,
    LATENCY_TAILS,
    TAIL_WEIGHT,
    boundary_log_evalues,
    combine,
    first_crossing,
    histogram_log_evalues,
    sequential_histogram,
    shift_log_evalues,
    slowed,
    tail_log_evalues,
)

ALPHA = 0.05
LE = np.array([0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5])


def histograms(rng: np.random.Generator, runs: int, looks: int, n: float, median: float, *, tail: float = 0.0,
               sigma: float = 0.5) -> npt.NDArray[np.float64]:
    """Prometheus-style buckets (cumulative over time and le, +Inf last) of lognormal latencies."""
    cdf = stats.norm.cdf((np.log(LE) - np.log(median)) / sigma)
    slow = stats.norm.cdf((np.log(LE) - np.log(3 * median)) / sigma)
    cdf = (1 - tail) * cdf + tail * slow
    probs = np.diff(np.concatenate([[0.0], cdf, [1.0]]))
    counts = rng.multinomial(rng.poisson(n, (runs, looks)), probs)
    return np.cumsum(np.cumsum(counts, axis=2), axis=1).astype(float)


def alarms(log_e: npt.NDArray[np.float64]) -> float:
    return float((first_crossing(log_e, ALPHA) >= 0).mean())


def upper_95(rate: float, runs: int) -> float:
    k = round(rate * runs)
    return float(stats.binomtest(k, runs).proportion_ci(0.95, method="exact").high)


@pytest.mark.parametrize(("canary_n", "canary_median", "margin"), [
    (200.0, 0.1, 1.0),     # the same service, even split
    (20.0, 0.1, 1.0),      # the same service, the canary at 1/11 of the traffic
    (200.0, 0.103, 1.5),   # 3% slower, within a 1.5x margin on every slow share
])
def test_false_alarms_at_most_alpha_on_good_canaries(canary_n: float, canary_median: float, margin: float) -> None:
    rng = np.random.default_rng(7)
    runs = 1000
    primary = histograms(rng, runs, 20, 200.0, 0.1)
    canary = histograms(rng, runs, 20, canary_n, canary_median)
    for log_e in (histogram_log_evalues(canary, primary, margin=margin),
                  logsumexp(shift_log_evalues(canary, primary, margin=margin), axis=-1) - np.log(len(LATENCY_SHIFTS)),
                  logsumexp(tail_log_evalues(canary, primary, margin=margin), axis=-1) - np.log(len(LATENCY_TAILS))):
        rate = alarms(log_e)
        assert rate <= ALPHA and upper_95(rate, runs) <= 0.07


def test_never_flags_a_faster_canary() -> None:
    rng = np.random.default_rng(8)
    primary = histograms(rng, 300, 30, 200.0, 0.1)
    faster = histograms(rng, 300, 30, 200.0, 0.085)
    assert (first_crossing(histogram_log_evalues(faster, primary), ALPHA) < 0).all()
    assert (shift_log_evalues(faster, primary)[:, -1] < 0).all()  # the shift bets lose on a faster canary
    assert (tail_log_evalues(faster, primary)[:, -1] < 0).all()  # and so do the tail bets


@pytest.mark.parametrize(("canary_n", "median", "tail"), [(100.0, 0.11, 0.0), (20.0, 0.125, 0.0), (200.0, 0.1, 0.03)])
def test_power_on_median_shifts_and_a_tail_regression(canary_n: float, median: float, tail: float) -> None:
    """10% and 25% median shifts and 3% of requests 3x slower: caught, the median shifts sooner than by
    the boundaries alone (the first test), and the tail sooner than without the tail bets."""
    rng = np.random.default_rng(9)
    runs, looks = 300, 20
    primary = histograms(rng, runs, looks, 200.0, 0.1)
    canary = histograms(rng, runs, looks, canary_n, median, tail=tail)
    now = first_crossing(histogram_log_evalues(canary, primary), ALPHA)
    per = boundary_log_evalues(canary, primary)
    before = first_crossing(logsumexp(per, axis=-1) - np.log(per.shape[-1]), ALPHA)
    assert (now >= 0).mean() >= 0.9
    looks_now = np.mean(np.where(now >= 0, now, looks))
    looks_before = np.mean(np.where(before >= 0, before, looks))
    if tail == 0:
        assert looks_now < 0.9 * looks_before
    else:
        first_look = np.broadcast_to(np.arange(looks) == 0, (runs, looks))  # every look here has requests
        held = np.zeros((runs, looks, 1))  # the tail bets' stake held, not bet
        without = first_crossing(combine(per, shift_log_evalues(canary, primary), first_look, held), ALPHA)
        assert looks_now < 0.85 * np.mean(np.where(without >= 0, without, looks))


def test_bets_use_only_earlier_looks() -> None:
    rng = np.random.default_rng(10)
    primary = histograms(rng, 1, 12, 200.0, 0.1)[0]
    canary = histograms(rng, 1, 12, 100.0, 0.12)[0]
    for bets in (shift_log_evalues, tail_log_evalues):
        full = bets(canary, primary)
        assert np.all(full[0] == 0.0)  # nothing seen before the first look: no bet
        assert np.allclose(bets(canary[:6], primary[:6]), full[:6])
    later = canary.copy()
    later[6:] *= 3  # a different future leaves the past e-values as they were
    assert np.allclose(histogram_log_evalues(later, primary)[:6], histogram_log_evalues(canary, primary)[:6])
    # until the shift bets have seen data, their half bets as the other half does, where the boundaries
    # bet and the tail bets (no data either) hold their stake
    per = boundary_log_evalues(canary, primary)
    on_boundaries = BOUNDARY_WEIGHT / (BOUNDARY_WEIGHT + TAIL_WEIGHT)
    first = np.log(on_boundaries * np.exp(logsumexp(per[0]) - np.log(per.shape[-1])) + 1 - on_boundaries)
    assert np.isclose(histogram_log_evalues(canary, primary)[0], first)


def test_missing_looks_and_the_operators_function_use_the_same_e_process() -> None:
    rng = np.random.default_rng(11)
    primary = histograms(rng, 1, 10, 200.0, 0.1)[0]
    canary = histograms(rng, 1, 10, 100.0, 0.13)[0]
    gappy = canary.copy()
    gappy[4] = np.nan  # a lost scrape: its requests count at the next look
    e_full = histogram_log_evalues(canary, primary)
    e_gap = histogram_log_evalues(gappy, primary)
    assert np.isfinite(e_gap).all() and e_gap[4] == e_gap[3]
    result = sequential_histogram(canary, primary, le=LE, alpha=ALPHA)
    assert np.allclose(np.log(result.details["evalues"]), np.minimum(e_full, 700.0))
    with pytest.raises(ValueError):
        shift_log_evalues(canary, primary, shifts=[0.0])
    with pytest.raises(ValueError):
        tail_log_evalues(canary, primary, fractions=[1.5])


def test_a_margin_of_exactly_one_lets_the_shift_bets_use_the_fast_buckets() -> None:
    """Above a margin of 1 the shift bets may not bet below 1 on fast buckets (that keeps them valid);
    a margin only tending to 1 (a warm-up allowance that never ended) cost them about half their power."""
    rng = np.random.default_rng(12)
    runs, looks = 300, 20
    primary = histograms(rng, runs, looks, 200.0, 0.1)
    canary = histograms(rng, runs, looks, 20.0, 0.11)

    def mean_looks(margin: float) -> float:
        bets = shift_log_evalues(canary, primary, margin=margin)
        crossed = first_crossing(logsumexp(bets, axis=-1) - np.log(len(LATENCY_SHIFTS)), ALPHA)
        return float(np.mean(np.where(crossed >= 0, crossed, looks)))

    assert mean_looks(1.0) < 0.8 * mean_looks(1.0 + 1e-9)


def lognormal_tails(median: float, sigma: float = 0.5) -> npt.NDArray[np.float64]:
    return np.asarray(stats.norm.sf((np.log(LE) - np.log(median)) / sigma), dtype=np.float64)


def test_slowing_a_histogram_keeps_its_requests_and_moves_them_as_the_factor_does() -> None:
    rng = np.random.default_rng(13)
    primary = histograms(rng, 1, 30, 20000.0, 0.1)[0]
    assert np.array_equal(slowed(primary, LE, 1.0), primary)
    for factor in (1.1, 1.35, 2.0):
        out = slowed(primary, LE, factor)
        assert np.allclose(out[:, -1], primary[:, -1])  # every request kept, at every look
        assert np.all(np.diff(out, axis=-1) >= -1e-9) and np.all(np.diff(out, axis=0) >= -1e-9)
        tails = 1 - out[-1, :-1] / out[-1, -1]
        truth = lognormal_tails(0.1 * factor)
        seen = truth > 1e-3
        # each boundary reads the share above le / factor, within the bucket as the tail falls there
        assert np.allclose(tails[seen], truth[seen], rtol=0.2, atol=2e-3), (factor, tails, truth)
    gappy = primary.copy()
    gappy[5] = np.nan
    out = slowed(gappy, LE, [1.5] * 5 + [1.0] * 25)
    assert np.isnan(out[5]).all() and np.isfinite(np.delete(out, 5, axis=0)).all()
    # look 6 holds look 5's requests too, slowed by the larger factor of the two
    assert out[6, -1] == primary[6, -1] and np.all(out[6, :-1] <= primary[6, :-1])
    # several factors per look (an allowance read across the look's interval): the slowed looks averaged
    spread = slowed(primary, LE, np.tile([1.1, 1.5], (30, 1)))
    assert np.allclose(spread, (slowed(primary, LE, 1.1) + slowed(primary, LE, 1.5)) / 2)
    with pytest.raises(ValueError):
        slowed(primary, LE[:-1], 1.2)


@pytest.mark.parametrize(("canary_n", "factor", "allowed"), [
    (200.0, 1.3, 1.3),   # exactly as slow as allowed
    (20.0, 1.35, 1.35),  # the canary at 1/11 of the traffic
    (200.0, 1.1, 1.2),   # within the allowance
])
def test_a_canary_within_the_allowed_slowdown_is_not_failed(canary_n: float, factor: float, allowed: float) -> None:
    rng = np.random.default_rng(14)
    runs = 1000
    primary = histograms(rng, runs, 20, 200.0, 0.1)
    canary = histograms(rng, runs, 20, canary_n, 0.1 * factor)
    rate = alarms(histogram_log_evalues(canary, primary, slowdown=allowed, le=LE))
    assert rate <= ALPHA and upper_95(rate, runs) <= 0.07


def test_a_slowdown_beyond_the_allowance_is_caught_and_a_fading_allowance_forgives_a_warm_up() -> None:
    rng = np.random.default_rng(15)
    runs, looks = 300, 20
    primary = histograms(rng, runs, looks, 200.0, 0.1)
    slower = histograms(rng, runs, looks, 100.0, 0.16)  # 60% slower, 20% allowed
    assert (first_crossing(histogram_log_evalues(slower, primary, slowdown=1.2, le=LE), ALPHA) >= 0).mean() >= 0.95
    # a warm-up: 50% slower for three looks, then as fast as the primary
    warm = histograms(rng, runs, looks, 100.0, 0.1)
    start = histograms(rng, runs, 3, 100.0, 0.15)
    inc = np.diff(warm, axis=1, prepend=0.0)
    inc[:, :3] = np.diff(start, axis=1, prepend=0.0)
    warm = np.cumsum(inc, axis=1)
    fading = [1.5, 1.5, 1.5] + [1.0] * (looks - 3)
    assert alarms(histogram_log_evalues(warm, primary)) > 0.5
    assert alarms(histogram_log_evalues(warm, primary, slowdown=fading, le=LE)) <= ALPHA
    with pytest.raises(ValueError):
        histogram_log_evalues(warm, primary, slowdown=1.2)  # a slowdown needs the boundaries
