"""The compare judge: is the canary worse than the primary it would replace, by more than we care about?

After Kayenta's NetflixACAJudge: a Mann-Whitney U (Wilcoxon rank-sum) test says whether the two samples
differ, and the Hodges-Lehmann shift with its distribution-free confidence interval says by how much.
The canary fails only when the difference is significant at `alpha` AND the whole interval lies beyond
the tolerance in the bad direction, so a statistically clear but harmless difference passes. Samples
are the metric's values over the analysis window (one per scrape or step); NaNs are dropped. When
they are rates over overlapping windows (`window`), the test's variance is corrected for their
serial correlation (`analysis.judges.serial`): they are then worth fewer independent values.

For independent samples the test and the interval are R's `wilcox.test(canary, primary, alternative,
conf.int = TRUE, correct = TRUE)`, number for number (`analysis.judges.wilcoxon`): exact for small
samples without ties, the corrected normal approximation otherwise. For a one-sided direction the interval is R's
one-sided (1 - alpha) bound, so the interval and the p-value never contradict each other.

Metrics that are mostly zero (error counts in short windows, rare events). When half or more of
either side's values are 0, the median pairwise difference is 0 whatever happens in the other
windows: a canary with errors in 40% of its windows against 5% for the primary has a shift of 0 and
would pass. The rank test still sees the difference (every non-zero window outranks the zeros), so
significance still comes from it; the effect is then measured by the difference in means, with the
tolerance taken relative to the primary's mean (0.1 = the canary's mean may exceed the primary's by
10%). The mean is chosen over the alternatives because, for counts and rates, it is the quantity
that matters (expected errors per window: 40% x 2 errors is worse than 5% x 2 errors by exactly the
ratio a user reads), it is Kayenta's own effect size (`meanRatio`), and it stays in the metric's units
so the one `tolerance` keeps its meaning; the probability of superiority (CLES) carries no magnitude
and the share of non-zero windows ignores how many errors a window had. An infinite mean (some window
at +Inf) is beyond any tolerance.

Infinite values are values, not gaps: a p99 above the top histogram bucket (+Inf) ranks above every
finite value, -Inf below; which of them is the worse is the direction's to say. NaN is no data.

`compare` judges one metric; `compare_batch` does the same for many independent windows at once
(rows), with the asymptotic p-value and the order-statistic form of the same interval, for
simulations.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from analysis.judges import JudgeResult, Verdict, fmt
from analysis.judges.serial import rank_sum_inflation
from analysis.judges.wilcoxon import rank_sum
from analysis.verdicts import Direction

FloatArray = npt.NDArray[np.float64]

# Half or more of a side's values at exactly 0: the median shift says nothing, compare means.
ZERO_HEAVY_SHARE = 0.5

ALTERNATIVE = {Direction.INCREASE: "greater", Direction.DECREASE: "less", Direction.EITHER: "two-sided"}
R_ALTERNATIVE = {Direction.INCREASE: "greater", Direction.DECREASE: "less", Direction.EITHER: "two.sided"}


def _clean(values: npt.ArrayLike) -> FloatArray:
    """The values, NaN (no data) dropped; infinities kept."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    return arr[~np.isnan(arr)]


def _rows(values: npt.ArrayLike) -> FloatArray:
    return np.array(values, dtype=np.float64, ndmin=2)


def mannwhitney_batch(
    x: npt.ArrayLike, y: npt.ArrayLike, alternative: str = "two-sided", inflation: npt.ArrayLike = 1.0
) -> tuple[FloatArray, FloatArray]:
    """U statistic of x and asymptotic p-value per row, NaNs omitted, with tie and continuity
    correction: the same numbers as `scipy.stats.mannwhitneyu(..., method="asymptotic")` row by row,
    but vectorised. Rows with an empty sample get NaN. `inflation` (per row) multiplies U's variance
    (serially correlated samples, `analysis.judges.serial`)."""
    xr, yr = _rows(x), _rows(y)
    n1 = np.sum(~np.isnan(xr), axis=1).astype(np.float64)
    n2 = np.sum(~np.isnan(yr), axis=1).astype(np.float64)
    both = np.concatenate([xr, yr], axis=1)
    ranks = stats.rankdata(both, axis=1, nan_policy="omit")
    r1 = np.nansum(ranks[:, : xr.shape[1]], axis=1)
    u1 = r1 - n1 * (n1 + 1) / 2
    u2 = n1 * n2 - u1
    tie_size = stats.rankdata(both, method="max", axis=1, nan_policy="omit") - stats.rankdata(
        both, method="min", axis=1, nan_policy="omit"
    ) + 1
    tie_term = np.nansum(tie_size**2 - 1, axis=1)  # sum over tie groups of t^3 - t
    n = n1 + n2
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))) * np.asarray(inflation))
        if alternative == "greater":
            u = u1
        elif alternative == "less":
            u = u2
        elif alternative == "two-sided":
            u = np.maximum(u1, u2)
        else:
            raise ValueError(f"unknown alternative {alternative!r}")
        z = (u - n1 * n2 / 2 - 0.5) / s
        p = stats.norm.sf(z)
        if alternative == "two-sided":
            p = np.minimum(2 * p, 1.0)
    p = np.where((n1 == 0) | (n2 == 0), np.nan, p)
    # all values tied: no evidence of any difference
    p = np.where((n1 > 0) & (n2 > 0) & (s == 0), 1.0, p)
    return u1, np.asarray(p, dtype=np.float64)


def hodges_lehmann_batch(
    x: npt.ArrayLike, y: npt.ArrayLike, confidence: float = 0.95, inflation: npt.ArrayLike = 1.0
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Hodges-Lehmann estimate of the shift x - y (median of all pairwise differences) and the
    two-sided distribution-free confidence interval: the pairwise differences at which R's
    continuity-corrected normal statistic crosses its quantile (the points R's wilcox.test root-finder
    approaches), with the tie correction of the pooled samples. Per row, NaNs omitted, infinities kept
    (two equal infinities differ by 0); rows with an empty sample get NaN. `inflation` (per row) multiplies
    the statistic's variance, as in `mannwhitney_batch`."""
    xr, yr = _rows(x), _rows(y)
    with np.errstate(invalid="ignore"):
        diffs = xr[:, :, None] - yr[:, None, :]
    valid = ~np.isnan(xr)[:, :, None] & ~np.isnan(yr)[:, None, :]
    diffs = np.where(valid, np.where(np.isnan(diffs), 0.0, diffs), np.nan).reshape(xr.shape[0], -1)
    diffs.sort(axis=1)  # NaNs sort last
    n1 = np.sum(~np.isnan(xr), axis=1)
    n2 = np.sum(~np.isnan(yr), axis=1)
    npairs = n1 * n2
    ok = npairs > 0
    last = np.maximum(npairs - 1, 0)

    def order_stat(k: npt.NDArray[np.int64]) -> FloatArray:
        idx = np.clip(k, 0, last)[:, None]
        vals = np.take_along_axis(diffs, idx, axis=1)[:, 0] if diffs.shape[1] else np.zeros(len(k))
        return np.where(ok, vals, np.nan)

    lo_mid = (last // 2).astype(np.int64)
    hi_mid = (npairs // 2).astype(np.int64)
    estimate = (order_stat(lo_mid) + order_stat(hi_mid)) / 2
    z = stats.norm.isf((1 - confidence) / 2)
    both = np.concatenate([xr, yr], axis=1)
    tie_size = stats.rankdata(both, method="max", axis=1, nan_policy="omit") - stats.rankdata(
        both, method="min", axis=1, nan_policy="omit") + 1
    tie_term = np.nansum(tie_size**2 - 1, axis=1)  # sum over tie groups of t^3 - t
    n = (n1 + n2).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = np.sqrt(npairs / 12 * ((n + 1) - tie_term / (n * (n - 1))) * np.asarray(inflation))
        # W(d) <= z once d passes the k-th smallest difference, k = ceil(N/2 - 1/2 - z sigma) (1-based)
        k = np.ceil(npairs / 2 - 0.5 - z * sigma) - 1
    c = np.clip(np.nan_to_num(k, nan=0.0), 0, last).astype(np.int64)
    lower = order_stat(c)
    upper = order_stat(last - c)
    return estimate, lower, upper


def _zero_heavy(values: FloatArray) -> npt.NDArray[np.bool_]:
    """Per row: half or more of the (non-NaN) values are exactly 0."""
    n = np.sum(~np.isnan(values), axis=1)
    zeros = np.sum(values == 0, axis=1)
    return np.asarray((n > 0) & (zeros >= ZERO_HEAVY_SHARE * n), dtype=np.bool_)


def _beyond(lower: FloatArray, upper: FloatArray, tol: FloatArray, direction: Direction) -> npt.NDArray[np.bool_]:
    if direction is Direction.INCREASE:
        beyond = lower > tol
    elif direction is Direction.DECREASE:
        beyond = upper < -tol
    else:
        beyond = (lower > tol) | (upper < -tol)
    return np.asarray(beyond, dtype=np.bool_)


def _decide(
    p: FloatArray, lower: FloatArray, upper: FloatArray, tol: FloatArray, direction: Direction, alpha: float
) -> npt.NDArray[np.bool_]:
    return np.asarray((p < alpha) & _beyond(lower, upper, tol, direction), dtype=np.bool_)


def _mean_effect(canary: FloatArray, primary: FloatArray, tolerance: float
                 ) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """Per row: the difference in means, its tolerance (relative to the primary's mean), and whether it
    is a usable measure (finite; +Inf on one side only is infinite and so usable)."""
    def mean(a: FloatArray) -> FloatArray:
        n = np.sum(~np.isnan(a), axis=1)
        return np.asarray(np.nansum(a, axis=1) / np.where(n > 0, n, np.nan), dtype=np.float64)

    with np.errstate(invalid="ignore"):
        cm, pm = mean(canary), mean(primary)
        diff = cm - pm
    tol = tolerance * np.abs(np.where(np.isfinite(pm), pm, 0.0))
    return diff, tol, np.asarray(~np.isnan(diff), dtype=np.bool_)


def _confidence(direction: Direction, alpha: float) -> float:
    # a one-sided (1 - alpha) bound is one end of a two-sided (1 - 2 alpha) interval
    return 1 - alpha if direction is Direction.EITHER else 1 - 2 * alpha


def compare(
    canary: npt.ArrayLike,
    primary: npt.ArrayLike,
    *,
    direction: Direction | str = Direction.INCREASE,
    tolerance: float = 0.1,
    alpha: float = 0.05,
    min_samples: int = 3,
    name: str = "value",
    window: float | None = None,
) -> JudgeResult:
    """Judge the canary's samples against the primary's over the same window.

    `tolerance` is relative to the primary's median (0.1 = a shift of 10% of it is acceptable), or to
    its mean when the metric is mostly zero. Fewer than `min_samples` values (NaN is no value) on
    either side is NO_DATA; two identical constant series PASS. The p-value and interval are R's
    wilcox.test's (one-sided in the bad direction), for independent samples. `window` says the samples are
    a series of rates each over `window` steps (overlapping when > 1): the test's variance is then
    corrected for their serial correlation (`analysis.judges.serial`) and the interval widens with it."""
    direction = Direction(direction)
    if tolerance < 0 or not 0 < alpha < 1:
        raise ValueError("tolerance must be >= 0 and alpha in (0, 1)")
    c, p = _clean(canary), _clean(primary)
    limit = (
        f"fail if Mann-Whitney p < {fmt(alpha)} and the Hodges-Lehmann interval is beyond "
        f"{fmt(tolerance * 100)}% of the primary median ({direction.value} is bad)"
    )
    counts: dict[str, Any] = {"canary_samples": int(c.size), "primary_samples": int(p.size)}
    if c.size < min_samples or p.size < min_samples:
        reason = f"{name}: {c.size} canary and {p.size} primary samples, need {min_samples} each"
        return JudgeResult(Verdict.NO_DATA, None, None, limit, reason, counts)
    c_med, p_med = float(np.median(c)), float(np.median(p))
    if np.all(c == c[0]) and np.all(p == c[0]):
        reason = f"{name}: canary and primary both constant at {fmt(c_med)}"
        details = {**counts, "p_value": 1.0, "shift": 0.0, "ci": [0.0, 0.0], "tolerance": 0.0}
        return JudgeResult(Verdict.PASS, c_med, p_med, limit, reason, details)
    confidence = 1 - alpha
    inflation = 1.0 if window is None else float(rank_sum_inflation(c, p, window)[0])
    test = rank_sum(c, p, alternative=R_ALTERNATIVE[direction], conf_level=confidence,  # type: ignore[arg-type]
                    inflation=inflation)
    p_value, est, lo, hi = test.p_value, test.estimate, test.lower, test.upper
    significant = p_value < alpha
    verdict_word = f"p {fmt(p_value)} {'<' if significant else '>='} {fmt(alpha)}"
    details = {**counts, "p_value": p_value, "shift": est, "ci": [lo, hi], "confidence": confidence,
               "exact": test.exact, "direction": direction.value}
    if window is not None:
        # as many independent samples as the correlated ones are worth
        details["effective_samples"] = (c.size + p.size) / inflation
    zero_heavy = bool(_zero_heavy(c[None, :])[0] or _zero_heavy(p[None, :])[0])
    diffs, tols, usable = _mean_effect(c[None, :], p[None, :], tolerance)
    mean_diff = float(diffs[0])
    if zero_heavy and usable[0]:
        tol = float(tols[0])
        beyond = bool(_beyond(np.array([mean_diff]), np.array([mean_diff]), np.array([tol]), direction)[0])
        c_mean, p_mean = float(np.mean(c)), float(np.mean(p))
        limit = (
            f"fail if Mann-Whitney p < {fmt(alpha)} and the mean differs by more than "
            f"{fmt(tolerance * 100)}% of the primary mean ({direction.value} is bad; mostly zero)"
        )
        reason = (
            f"{name} mostly zero: mean {fmt(c_mean)} vs primary {fmt(p_mean)} "
            f"({fmt(100 * np.mean(c != 0))}% vs {fmt(100 * np.mean(p != 0))}% non-zero), "
            f"difference {fmt(mean_diff)}, tolerance {fmt(tol)} ({fmt(tolerance * 100)}% of primary mean), "
            f"{verdict_word}"
        )
        details |= {"effect": "mean difference", "mean_difference": mean_diff, "tolerance": tol}
        verdict = Verdict.FAIL if significant and beyond else Verdict.PASS
        return JudgeResult(verdict, c_mean, p_mean, limit, reason, details)
    tol = tolerance * abs(p_med) if math.isfinite(p_med) else 0.0
    sided = "" if direction is Direction.EITHER else "one-sided "
    beyond = bool(_beyond(np.array([lo]), np.array([hi]), np.array([tol]), direction)[0])
    verdict = Verdict.FAIL if significant and beyond else Verdict.PASS
    reason = (
        f"{name} median {fmt(c_med)} vs primary {fmt(p_med)}: shift {fmt(est)} "
        f"[{fmt(lo)}, {fmt(hi)}] ({fmt(confidence * 100)}% {sided}CI), tolerance {fmt(tol)} "
        f"({fmt(tolerance * 100)}% of primary median), {verdict_word}"
    )
    details |= {"effect": "median shift", "tolerance": tol}
    return JudgeResult(verdict, c_med, p_med, limit, reason, details)


def compare_batch(
    canary: npt.ArrayLike,
    primary: npt.ArrayLike,
    *,
    direction: Direction | str = Direction.INCREASE,
    tolerance: float = 0.1,
    alpha: float = 0.05,
    min_samples: int = 3,
    window: float | None = None,
) -> npt.NDArray[np.str_]:
    """`compare` for many windows (rows) at once, with the asymptotic p-value: an array of Verdict
    values, one per row."""
    direction = Direction(direction)
    c, p = _rows(canary), _rows(primary)
    nc = np.sum(~np.isnan(c), axis=1)
    npr = np.sum(~np.isnan(p), axis=1)
    inflation = np.ones(c.shape[0]) if window is None else rank_sum_inflation(c, p, window)
    _, pv = mannwhitney_batch(c, p, ALTERNATIVE[direction], inflation)
    _, lo, hi = hodges_lehmann_batch(c, p, _confidence(direction, alpha), inflation)
    with np.errstate(all="ignore"):
        med = np.nanmedian(np.where(npr[:, None] > 0, p, 0.0), axis=1)
        tol = tolerance * np.abs(np.where(np.isfinite(med), med, 0.0))
    mean_diff, mean_tol, usable = _mean_effect(c, p, tolerance)
    zero_heavy = (_zero_heavy(c) | _zero_heavy(p)) & usable
    beyond = np.where(zero_heavy, _beyond(mean_diff, mean_diff, mean_tol, direction),
                      _beyond(lo, hi, tol, direction))
    failed = (np.nan_to_num(pv, nan=1.0) < alpha) & beyond
    out = np.where(failed, Verdict.FAIL.value, Verdict.PASS.value)
    return np.where((nc < min_samples) | (npr < min_samples), Verdict.NO_DATA.value, out)
