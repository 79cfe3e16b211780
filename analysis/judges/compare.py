"""The compare judge: is the canary worse than the primary it would replace, by more than we care about?

After Kayenta's NetflixACAJudge: a Mann-Whitney U test says whether the two samples differ, and the
Hodges-Lehmann shift with its distribution-free confidence interval says by how much. The canary fails
only when the difference is significant at `alpha` AND the whole interval lies beyond the tolerance in
the bad direction, so a statistically clear but harmless difference passes. Samples are the metric's
values over the analysis window (one per scrape or step); NaNs are dropped.

`compare` judges one metric; `compare_batch` does the same for many independent windows at once
(rows), with the asymptotic p-value, for simulations.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from analysis.judges import JudgeResult, Verdict, fmt
from analysis.verdicts import Direction

FloatArray = npt.NDArray[np.float64]


ALTERNATIVE = {Direction.INCREASE: "greater", Direction.DECREASE: "less", Direction.EITHER: "two-sided"}


def _clean(values: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    return arr[np.isfinite(arr)]


def _rows(values: npt.ArrayLike) -> FloatArray:
    arr = np.array(values, dtype=np.float64, ndmin=2)
    arr[~np.isfinite(arr)] = np.nan
    return arr


def mannwhitney_batch(
    x: npt.ArrayLike, y: npt.ArrayLike, alternative: str = "two-sided"
) -> tuple[FloatArray, FloatArray]:
    """U statistic of x and asymptotic p-value per row, NaNs omitted, with tie and continuity
    correction: the same numbers as `scipy.stats.mannwhitneyu(..., method="asymptotic")` row by row,
    but vectorised. Rows with an empty sample get NaN."""
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
        s = np.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))))
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
    x: npt.ArrayLike, y: npt.ArrayLike, confidence: float = 0.95
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Hodges-Lehmann estimate of the shift x - y (median of all pairwise differences) and the
    two-sided distribution-free confidence interval from order statistics of those differences
    (normal approximation of the U distribution, as R's wilcox.test with conf.int). Per row, NaNs
    omitted; rows with an empty sample get NaN."""
    xr, yr = _rows(x), _rows(y)
    diffs = (xr[:, :, None] - yr[:, None, :]).reshape(xr.shape[0], -1)
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
    z = stats.norm.ppf(0.5 + confidence / 2)
    c = np.floor(npairs / 2 - z * np.sqrt(npairs * (n1 + n2 + 1) / 12)).astype(np.int64)
    c = np.clip(c, 0, last)
    lower = order_stat(c)
    upper = order_stat(last - c)
    return estimate, lower, upper


def _decide(
    p: FloatArray, lower: FloatArray, upper: FloatArray, tol: FloatArray, direction: Direction, alpha: float
) -> npt.NDArray[np.bool_]:
    significant = p < alpha
    if direction is Direction.INCREASE:
        beyond = lower > tol
    elif direction is Direction.DECREASE:
        beyond = upper < -tol
    else:
        beyond = (lower > tol) | (upper < -tol)
    return np.asarray(significant & beyond, dtype=np.bool_)


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
) -> JudgeResult:
    """Judge the canary's samples against the primary's over the same window.

    `tolerance` is relative to the primary's median (0.1 = a shift of 10% of it is acceptable).
    Fewer than `min_samples` finite values on either side is NO_DATA; two identical constant series
    PASS. The p-value is `scipy.stats.mannwhitneyu`'s (one-sided in the bad direction)."""
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
    tol = tolerance * abs(p_med)
    if np.all(c == c[0]) and np.all(p == c[0]):
        reason = f"{name}: canary and primary both constant at {fmt(c_med)}"
        details = {**counts, "p_value": 1.0, "shift": 0.0, "ci": [0.0, 0.0], "tolerance": tol}
        return JudgeResult(Verdict.PASS, c_med, p_med, limit, reason, details)
    p_value = float(stats.mannwhitneyu(c, p, alternative=ALTERNATIVE[direction]).pvalue)
    confidence = _confidence(direction, alpha)
    est, lo, hi = (float(a[0]) for a in hodges_lehmann_batch(c, p, confidence))
    failed = bool(_decide(np.array([p_value]), np.array([lo]), np.array([hi]), np.array([tol]), direction,
                          alpha)[0])
    verdict = Verdict.FAIL if failed else Verdict.PASS
    reason = (
        f"{name} median {fmt(c_med)} vs primary {fmt(p_med)}: shift {fmt(est)} "
        f"[{fmt(lo)}, {fmt(hi)}] ({fmt(confidence * 100)}% CI), tolerance {fmt(tol)} "
        f"({fmt(tolerance * 100)}% of primary median), "
        f"p {fmt(p_value)} {'<' if p_value < alpha else '>='} {fmt(alpha)}"
    )
    details = {**counts, "p_value": p_value, "shift": est, "ci": [lo, hi], "confidence": confidence,
               "tolerance": tol, "direction": direction.value}
    return JudgeResult(verdict, c_med, p_med, limit, reason, details)


def compare_batch(
    canary: npt.ArrayLike,
    primary: npt.ArrayLike,
    *,
    direction: Direction | str = Direction.INCREASE,
    tolerance: float = 0.1,
    alpha: float = 0.05,
    min_samples: int = 3,
) -> npt.NDArray[np.str_]:
    """`compare` for many windows (rows) at once, with the asymptotic p-value: an array of Verdict
    values, one per row."""
    direction = Direction(direction)
    c, p = _rows(canary), _rows(primary)
    nc = np.sum(~np.isnan(c), axis=1)
    npr = np.sum(~np.isnan(p), axis=1)
    _, pv = mannwhitney_batch(c, p, ALTERNATIVE[direction])
    _, lo, hi = hodges_lehmann_batch(c, p, _confidence(direction, alpha))
    with np.errstate(all="ignore"):
        tol = tolerance * np.abs(np.nanmedian(np.where(npr[:, None] > 0, p, 0.0), axis=1))
    failed = _decide(np.nan_to_num(pv, nan=1.0), lo, hi, tol, direction, alpha)
    out = np.where(failed, Verdict.FAIL.value, Verdict.PASS.value)
    return np.where((nc < min_samples) | (npr < min_samples), Verdict.NO_DATA.value, out)
