"""The rank-sum test and Hodges-Lehmann interval against R's own wilcox.test (a table R produced, with the
script and R version that produced it beside it), and the interval's agreement with its own p-value."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from analysis.judges.wilcoxon import pwilcox, qwilcox, rank_sum

TABLE = Path(__file__).parent.parent / "data" / "wilcox_reference.csv"
ROWS = list(csv.DictReader(TABLE.open()))


def _floats(text: str) -> np.ndarray:
    return np.array([float(v) for v in text.split()], dtype=np.float64)


def test_the_table_covers_small_tied_zero_heavy_and_large_samples() -> None:
    kinds = {r["kind"] for r in ROWS}
    assert {"small", "ties", "zeros", "large", "large-ties"} <= kinds
    assert all(r["r_version"].startswith("R version") for r in ROWS)
    sizes = {(len(r["x"].split()), len(r["y"].split())) for r in ROWS if r["kind"] == "small"}
    assert min(min(s) for s in sizes) == 3 and max(max(s) for s in sizes) == 10


@pytest.mark.parametrize("row", ROWS, ids=[f"{i}-{r['kind']}-{r['alternative']}-{r['conf_level']}"
                                           for i, r in enumerate(ROWS)])
def test_matches_r_wilcox_test(row: dict[str, str]) -> None:
    got = rank_sum(_floats(row["x"]), _floats(row["y"]), alternative=row["alternative"],  # type: ignore[arg-type]
                   conf_level=float(row["conf_level"]))
    for name in ("statistic", "p_value", "estimate", "lower", "upper"):
        want = float(row[name])
        have = getattr(got, name)
        if math.isinf(want):
            assert have == want, name
        else:
            assert have == pytest.approx(want, abs=1e-9, rel=0), name


def test_exact_distribution_matches_known_values() -> None:
    # W of 4 and 4 values: 70 arrangements, one with W = 0, one with W = 1, two with W = 2
    assert pwilcox(0, 4, 4) == pytest.approx(1 / 70)
    assert pwilcox(2, 4, 4) == pytest.approx(4 / 70)
    assert pwilcox(15, 4, 4) == pytest.approx(69 / 70) and pwilcox(16, 4, 4) == 1.0
    assert qwilcox(0.025, 4, 4) == 1 and qwilcox(0.5, 4, 4) == 8
    assert pwilcox(7, 3, 5) + pwilcox(7, 3, 5, lower_tail=False) == pytest.approx(1.0)


@pytest.mark.parametrize("alternative", ["two.sided", "greater", "less"])
def test_zero_lies_outside_the_interval_exactly_when_p_is_below_alpha(alternative: str) -> None:
    """Over many random samples (continuous, tied, zero-heavy, small and large): the interval and the
    p-value never contradict each other, within R's root tolerance."""
    rng = np.random.default_rng(16)
    alpha = 0.05
    checked = 0
    for i in range(300):
        n1, n2 = rng.integers(3, 60, 2)
        kind = i % 3
        if kind == 0:
            x, y = rng.normal(rng.normal(0, 0.7), 1, n1), rng.normal(0, 1, n2)
        elif kind == 1:
            x, y = np.round(rng.normal(0.5, 1.5, n1)), np.round(rng.normal(0, 1.5, n2))
        else:
            x = rng.binomial(1, 0.4, n1) * rng.poisson(2, n1)
            y = rng.binomial(1, 0.1, n2) * rng.poisson(2, n2)
        if np.unique(np.concatenate([x, y])).size < 2:
            continue
        r = rank_sum(x, y, alternative=alternative, conf_level=1 - alpha)  # type: ignore[arg-type]
        tol = 0.0 if r.exact else 1e-4  # R finds the normal interval's ends to within tol.root
        if r.p_value < alpha:
            assert not (r.lower < -tol and r.upper > tol), (x, y, r)  # 0 outside the interval
        else:
            assert not (r.lower > tol or r.upper < -tol), (x, y, r)  # 0 inside it
        checked += 1
    assert checked > 280


def test_infinite_values_rank_above_every_finite_value() -> None:
    c = np.array([10.0, 12.0, math.inf, math.inf, 11.0, 13.0, math.inf, 14.0])
    p = np.array([10.0, 9.0, 11.0, 10.5, 9.5, 10.2, 9.8, 10.1])
    r = rank_sum(c, p, alternative="greater", conf_level=0.95)
    finite = rank_sum(np.where(np.isinf(c), 1e9, c), p, alternative="greater", conf_level=0.95)
    assert r.statistic == finite.statistic and r.p_value == pytest.approx(finite.p_value)
    assert r.lower > 0 and r.upper == math.inf
    # equal infinities tie, and -inf ranks below everything
    both = rank_sum([math.inf, 1.0, 2.0], [math.inf, -math.inf, 0.5])
    assert both.statistic == 6.5 and not both.exact
    assert rank_sum([-math.inf] * 3, [1.0, 2.0, 3.0], alternative="less").upper == -math.inf
