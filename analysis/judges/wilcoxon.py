"""The Wilcoxon rank-sum (Mann-Whitney) test with its Hodges-Lehmann interval, number for number as R.

The compare judge's confidence interval must be the one statisticians check it against: R's
`wilcox.test(x, y, conf.int = TRUE, correct = TRUE)` (R's `src/library/stats/R/wilcox.test.R`, the
two-sample branch). R's rules, reproduced here:

- exact when both samples have fewer than 50 values and no value is tied (`exact = NULL`): the p-value
  from the null distribution of W (`pwilcox`), the interval from the order statistics of the pairwise
  differences x_i - y_j at `qwilcox(alpha/2)` (or `alpha` one-sided), the estimate their median;
- otherwise the normal approximation with tie-corrected variance and continuity correction, and the
  interval's ends where the corrected statistic W(d) of the shifted samples crosses the normal
  quantile, found as R does with `uniroot` (Brent's zeroin, R's `src/library/stats/src/zeroin.c`,
  `R_zeroin2`, tolerance 1e-4), ported operation for operation so the ends agree to rounding.

Infinite values (a p99 above the top bucket) are kept and ranked above (+Inf) or below (-Inf) every
finite value; two equal infinities tie. R cannot bracket a root there (its search interval
min(x) - max(y) .. max(x) - min(y) is infinite), so with infinite values the ends are the jump points
of W that R's root-finder approaches, found by bisection over the pairwise differences (an infinite
difference is an infinite end: the interval says "beyond any finite shift"). Either way the interval
and the p-value come from the same W, so 0 lies outside the (1 - alpha) interval exactly when
p < alpha (up to R's root tolerance when the root lies within it of 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import special, stats

FloatArray = npt.NDArray[np.float64]
Alternative = Literal["two.sided", "greater", "less"]

EXACT_BELOW = 50  # R: exact when both n.x < 50 and n.y < 50 (and no ties)
TOL_ROOT = 1e-4  # R's default tol.root
MAXITER = 1000  # uniroot's default
_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class RankSum:
    """What R's wilcox.test returns for two samples with conf.int = TRUE."""

    statistic: float  # W: the Mann-Whitney U of x
    p_value: float
    estimate: float  # "difference in location" x - y
    lower: float
    upper: float
    exact: bool


# ---- the exact null distribution (R's cwilcox / pwilcox / qwilcox) ------------------------------------


@lru_cache(maxsize=64)
def _counts(m: int, n: int) -> tuple[float, ...]:
    """Number of arrangements giving each value 0..m*n of W, for samples of m and n: the recursion
    c(k; m, n) = c(k - n; m - 1, n) + c(k; m, n - 1) of R's cwilcox, over whole arrays of k."""
    m, n = min(m, n), max(m, n)  # the distribution is symmetric in m and n
    # row[j] holds c(.; i, j) for the current i, as arrays of length i*j + 1
    row = [np.ones(1) for _ in range(n + 1)]  # i = 0: W = 0 whatever j
    for i in range(1, m + 1):
        new = [np.ones(1)]  # j = 0: W = 0
        for j in range(1, n + 1):
            c = np.zeros(i * j + 1)
            left = new[j - 1]  # c(.; i, j - 1)
            c[: left.size] += left
            up = row[j]  # c(.; i - 1, j), shifted by j
            c[j : j + up.size] += up
            new.append(c)
        row = new
    return tuple(float(v) for v in row[n])


def pwilcox(q: float, m: int, n: int, *, lower_tail: bool = True) -> float:
    """P(W <= q) (or P(W > q)), as R's pwilcox."""
    counts = _counts(m, n)
    total = math.comb(m + n, n)
    q = math.floor(q + 1e-7)
    if q < 0:
        return 0.0 if lower_tail else 1.0
    if q >= m * n:
        return 1.0 if lower_tail else 0.0
    p = 0.0
    if q <= m * n / 2:
        for i in range(q + 1):
            p += counts[i] / total
    else:
        q = m * n - q
        for i in range(q):
            p += counts[i] / total
        lower_tail = not lower_tail
    return p if lower_tail else 0.5 - p + 0.5


def qwilcox(x: float, m: int, n: int) -> int:
    """The smallest q with P(W <= q) >= x, as R's qwilcox (with its 10 * DBL_EPSILON fuzz)."""
    if x <= 0:
        return 0
    if x >= 1:
        return m * n
    counts = _counts(m, n)
    total = math.comb(m + n, n)
    p, q = 0.0, 0
    if x <= 0.5:
        x = x - 10 * _EPS
        while True:
            p += counts[q] / total
            if p >= x:
                return q
            q += 1
    x = 1 - x + 10 * _EPS
    while True:
        p += counts[q] / total
        if p > x:
            return m * n - q
        q += 1


# ---- R's uniroot ------------------------------------------------------------------------------------


def zeroin2(f: Callable[[float], float], ax: float, bx: float, fa: float, fb: float, tol: float = TOL_ROOT,
            maxit: int = MAXITER) -> float:
    """R's R_zeroin2 (Brent's method), step for step, so that roots agree with R's to rounding."""
    a, b = ax, bx
    c, fc = a, fa
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    for _ in range(maxit + 1):
        prev_step = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * _EPS * abs(b) + tol / 2
        new_step = (c - b) / 2
        if abs(new_step) <= tol_act or fb == 0.0:
            return b
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:
                q = fa / fc
                t1 = fb / fc
                t2 = fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2) and p < abs(prev_step * q / 2):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    return b


# ---- the test ---------------------------------------------------------------------------------------


def _differences(x: FloatArray, y: FloatArray) -> FloatArray:
    """All x_i - y_j, sorted; two equal infinities differ by 0 (they tie in the ranks)."""
    with np.errstate(invalid="ignore"):
        d = np.subtract.outer(x, y).ravel()
    d[np.isnan(d)] = 0.0  # inf - inf: only equal infinities give NaN here
    d.sort()
    return d


def _tie_sum(ranks: FloatArray) -> float:
    _, t = np.unique(ranks, return_counts=True)
    return float(np.sum(t.astype(np.float64) ** 3 - t))


def _correction(z: float, alternative: Alternative) -> float:
    """R's continuity correction: half a rank toward the null, sign(z) * 0.5 when two-sided."""
    if alternative == "greater":
        return 0.5
    if alternative == "less":
        return -0.5
    return math.copysign(0.5, z) if z != 0 else 0.0


def _w_function(x: FloatArray, y: FloatArray, alternative: Alternative, correct: bool,
                inflation: float = 1.0) -> Callable[[float], float]:
    """R's W(d): the continuity-corrected standardised statistic of x - d against y (its variance times
    `inflation`)."""
    nx, ny = float(x.size), float(y.size)

    def w(d: float) -> float:
        dr = stats.rankdata(np.concatenate([x - d, y]))
        dz = float(np.sum(dr[: x.size])) - nx * (nx + 1) / 2 - nx * ny / 2
        corr = _correction(dz, alternative) if correct else 0.0
        sigma = math.sqrt((nx * ny / 12) * ((nx + ny + 1) - _tie_sum(dr) / ((nx + ny) * (nx + ny - 1)))
                          * inflation)
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.float64(dz - corr) / np.float64(sigma))

    return w


def _jump_root(w: Callable[[float], float], diffs: FloatArray, zq: float) -> float:
    """Where the nonincreasing step function w crosses zq: the pairwise difference at which it drops
    to zq or below (the point R's uniroot approaches), by bisection over the distinct differences."""
    v = np.unique(diffs)

    def between(k: int) -> float:  # a point of the open segment after v[k-1] and before v[k]
        a = v[k - 1] if k > 0 else -math.inf
        b = v[k] if k < v.size else math.inf
        if math.isinf(a) and math.isinf(b):
            return 0.0
        if math.isinf(a):
            return float(b - 1 - abs(b))
        if math.isinf(b):
            return float(a + 1 + abs(a))
        return float(a + (b - a) / 2)

    segments = [k for k in range(v.size + 1) if not (
        (k == 0 and v[0] == -math.inf) or (k == v.size and v[-1] == math.inf))]
    lo, hi = 0, len(segments)  # first segment whose w <= zq
    while lo < hi:
        mid = (lo + hi) // 2
        if w(between(segments[mid])) - zq <= 0:
            hi = mid
        else:
            lo = mid + 1
    if lo == 0:
        return float(v[0])
    if lo == len(segments):
        return float(v[-1])
    return float(v[segments[lo] - 1])


def rank_sum(x: npt.ArrayLike, y: npt.ArrayLike, *, alternative: Alternative = "two.sided",
             conf_level: float = 0.95, correct: bool = True, exact: bool | None = None,
             inflation: float = 1.0) -> RankSum:
    """R's `wilcox.test(x, y, alternative, conf.int = TRUE, conf.level, correct, exact)`, two samples.

    NaNs must be removed by the caller; infinities are values (see the module docstring). `inflation` > 1
    is a variance correction for serially correlated samples (`analysis.judges.serial`): the normal
    approximation with the statistic's variance multiplied by it, for the p-value and the interval alike
    (the exact distribution assumes independence, so it is not used then). At 1 the result is R's."""
    if not inflation >= 1:
        raise ValueError("inflation must be >= 1")
    xa = np.asarray(x, dtype=np.float64).ravel()
    ya = np.asarray(y, dtype=np.float64).ravel()
    if xa.size == 0 or ya.size == 0 or np.isnan(xa).any() or np.isnan(ya).any():
        raise ValueError("both samples need at least one value and no NaN")
    nx, ny = float(xa.size), float(ya.size)
    r = stats.rankdata(np.concatenate([xa, ya]))
    if inflation > 1:
        exact = False
    elif exact is None:
        exact = xa.size < EXACT_BELOW and ya.size < EXACT_BELOW
    statistic = float(np.sum(r[: xa.size])) - nx * (nx + 1) / 2
    ties = np.unique(r).size != r.size
    alpha = 1 - conf_level
    m, n = xa.size, ya.size
    if exact and not ties:
        if alternative == "two.sided":
            upper_half = statistic > nx * ny / 2
            p = pwilcox(statistic - 1, m, n, lower_tail=False) if upper_half else pwilcox(statistic, m, n)
            p_value = min(2 * p, 1.0)
        elif alternative == "greater":
            p_value = pwilcox(statistic - 1, m, n, lower_tail=False)
        else:
            p_value = pwilcox(statistic, m, n)
        diffs = _differences(xa, ya)
        qu = qwilcox(alpha / 2 if alternative == "two.sided" else alpha, m, n)
        qu = qu or 1
        ql = m * n - qu
        lower = float(diffs[qu - 1]) if alternative != "less" else -math.inf
        upper = float(diffs[ql]) if alternative != "greater" else math.inf
        return RankSum(statistic, p_value, float(np.median(diffs)), lower, upper, True)

    z = statistic - nx * ny / 2
    sigma = math.sqrt((nx * ny / 12) * ((nx + ny + 1) - _tie_sum(r) / ((nx + ny) * (nx + ny - 1))) * inflation)
    corr = _correction(z, alternative) if correct else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        zz = float(np.float64(z - corr) / np.float64(sigma))
    if alternative == "less":
        p_value = float(special.ndtr(zz))
    elif alternative == "greater":
        p_value = float(special.ndtr(-zz))
    else:
        p_value = 2 * min(float(special.ndtr(zz)), float(special.ndtr(-zz)))

    w = _w_function(xa, ya, alternative, correct, inflation)
    w0 = _w_function(xa, ya, alternative, False)  # R sets correct <- FALSE before the estimate
    if np.isinf(xa).any() or np.isinf(ya).any():
        diffs = _differences(xa, ya)

        def root(zq: float) -> float:
            return _jump_root(w, diffs, zq)

        estimate = _jump_root(w0, diffs, 0.0)
    else:
        mumin = float(np.min(xa) - np.max(ya))
        mumax = float(np.max(xa) - np.min(ya))
        w_min, w_max = w(mumin), w(mumax)

        def root(zq: float) -> float:
            f_lower = w_min - zq
            if f_lower <= 0:
                return mumin
            f_upper = w_max - zq
            if f_upper >= 0:
                return mumax
            return zeroin2(lambda d: w(d) - zq, mumin, mumax, f_lower, f_upper)

        estimate = zeroin2(w0, mumin, mumax, w0(mumin), w0(mumax))
    if alternative == "two.sided":
        lower, upper = root(float(stats.norm.isf(alpha / 2))), root(float(stats.norm.ppf(alpha / 2)))
    elif alternative == "greater":
        lower, upper = root(float(stats.norm.isf(alpha))), math.inf
    else:
        lower, upper = -math.inf, root(float(stats.norm.ppf(alpha)))
    return RankSum(statistic, p_value, estimate, lower, upper, False)
