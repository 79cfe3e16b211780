"""Judge benchmark: how often each judge stops a good canary, and how fast it stops a bad one.

Synthetic releases with known truth are simulated with numpy, vectorised over runs (Poisson requests,
binomial errors and multinomial latency buckets per 10 s scrape, per-pod AR(1) noise, a benign warm-up
on the canary, missing scrapes). Every judge sees the same simulated data.

The operator's judges are configured as a user configures them: each is a Canary `analysis` block
(`ANALYSES`, printed with the table), parsed by the operator's own parser, and each check's verdict
comes from the function the operator calls (`rollout.engine.judging`), fed what its queries would
return at that check; the planner's rules then decide (a failed check halts the step and counts
toward `threshold`, no data holds, a sequential failure is final):

  threshold      Flagger as usually configured: success rate >= 99% and P99 <= 500 ms per 1 m
                 interval, rollback after 5 failed checks
  threshold-cal  the same block with both limits set from the good canary's own history so that its
                 false-alarm rate equals the sequential judge's (measured on separate calibration null
                 runs, pooled; limits set per base rate and traffic; printed per scenario in --json)
  compare        `judge: compare`: the last three intervals' samples of each metric (1 m rates and P99s
                 at every scrape) against the primary's, Mann-Whitney + Hodges-Lehmann beyond a 10%
                 tolerance, the test's variance corrected for the samples' serial correlation
  sequential     `judge: sequential` with `warmup` and `lookInterval`: error counts and latency
                 histograms since the run started, a look every 10 s scrape (a crossing rolls back
                 at that look), alpha split over the two metrics

Four references no Canary can express:

  mannwhitney    Kayenta-style: one-sided Mann-Whitney per metric at every 1 m look, data since the
                 end of the first minute, fail at p < alpha
  oracle         an SPRT that knows the true rates and the size of the regression (the floor)
  oracle-looks   the same SPRT, looking only when the operator does (once per interval): the floor
                 for any judge that looks once per interval; oracle / oracle-looks is what the look
                 frequency alone costs
  oracle-2arm    the same SPRT at every scrape, on the canary's share of each bucket's requests (and
                 of the errors) given both arms' counts, as the sequential judge sees them: it knows
                 the regression but not the primary's rates, so oracle-2arm / oracle is what comparing
                 two arms alone costs, and sequential / oracle-2arm what not knowing the regression does

Releases follow the blocks' plan (stepWeight 5%, maxWeight 50%, interval 1 m: promotion after 10
passing checks); `rps` is the per-arm traffic at the 50/50 step (the service serves 2 x rps).
Simplification: traffic follows the nominal schedule even while a judge halts a step.

Run: python -m benchmarks.judge [--quick] [--json PATH] [--seed N]. Prints ratios; never asserts.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml
from scipy import stats

from analysis.judges.compare import mannwhitney_batch
from analysis.judges.sequential import increments
from analysis.verdicts import Verdict
from rollout.api.parse import parse_canary
from rollout.api.spec import Analysis, Judge, Metric
from rollout.engine import judging

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# The operator's judges as a user writes them: the `analysis` block of a Canary, one per judge.
PLAN = {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 5}
ANALYSES: dict[str, dict[str, Any]] = {
    "threshold": {**PLAN, "metrics": [
        {"name": "request-success-rate", "interval": "1m", "thresholdRange": {"min": 99}},
        {"name": "request-duration", "interval": "1m", "thresholdRange": {"max": 500}},
    ]},
    "compare": {**PLAN, "judge": "compare", "alpha": 0.05, "metrics": [
        {"name": "request-success-rate", "interval": "1m", "compare": {"direction": "decrease", "tolerance": 0.1}},
        {"name": "request-duration", "interval": "1m", "compare": {"direction": "increase", "tolerance": 0.1}},
    ]},
    # The warm-up allowances cover the simulated warm-up with its time constant: errors 1 + exp(-t / 20 s)
    # times the primary's (allowance 1), latency exp(0.3 exp(-t / 20 s)) times as slow, which is at most
    # 1 + 0.35 exp(-t / 20 s) (request-duration's own allowance 0.35: a latency allowance is a slowdown).
    # The judge looks at every 10 s scrape (`lookInterval`) and a crossing rolls back at that look; steps
    # still advance once a minute. No tolerance: the smallest regressions the test bets on (2x the slow
    # share above a boundary, a shift of a fifth of the spread) already ignore the per-pod wobble.
    "sequential": {**PLAN, "judge": "sequential", "alpha": 0.05, "lookInterval": "10s",
                   "warmup": {"allowance": 1, "decay": "20s"},
                   "metrics": [
                       {"name": "request-success-rate"},
                       {"name": "request-duration", "warmup": {"allowance": 0.35, "decay": "20s"}},
                   ]},
}


def canary_analysis(block: dict[str, Any]) -> Analysis:
    """A Canary's `analysis` block as the operator reads it (refused, naming the field, if invalid)."""
    return parse_canary({
        "apiVersion": "rollout.gitops.dev/v1alpha1", "kind": "Canary",
        "metadata": {"name": "bench", "namespace": "bench"},
        "spec": {"provider": "istio", "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "bench"},
                 "service": {"port": 80}, "analysis": block},
    }).spec.analysis


def calibrated(max_error_rate: float, max_p99_s: float) -> dict[str, Any]:
    """The threshold block with its limits set from the good canary's history."""
    block: dict[str, Any] = json.loads(json.dumps(ANALYSES["threshold"]))
    block["metrics"][0]["thresholdRange"] = {"min": round(100 * (1 - max_error_rate), 6)}
    block["metrics"][1]["thresholdRange"] = {"max": round(1000 * max_p99_s, 3)}
    return block


_PLAN = canary_analysis(ANALYSES["threshold"])
ALPHA = canary_analysis(ANALYSES["sequential"]).alpha  # the references (mannwhitney, oracle) use it too
SCRAPE_S = 10
INTERVAL = round(_PLAN.interval) // SCRAPE_S  # scrapes per analysis interval (1 m)
STEP_WEIGHT, MAX_WEIGHT = _PLAN.steps[0] / 100, _PLAN.steps[-1] / 100
PLAN_CHECKS = len(_PLAN.steps)  # passing checks until promotion (5% .. 50%, then promote)
FAILED_CHECKS = _PLAN.threshold
PLAN_END = PLAN_CHECKS * INTERVAL  # scrape index at which a release without rollback promotes
HORIZON = (PLAN_CHECKS + FAILED_CHECKS - 1) * INTERVAL  # the longest a release that halts can run
WARMUP_LOOKS = INTERVAL  # the Mann-Whitney reference ignores the first minute (a warm-up)

# the service: lognormal latency, Prometheus buckets (seconds)
MEDIAN_S, SIGMA = 0.1, 0.5
LE = np.array([0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5])
PRIMARY_PODS, CANARY_PODS = 3, 1

# nuisances
REQ_NOISE_SD, ERR_COMMON_SD, ERR_POD_SD, LAT_COMMON_SD, LAT_POD_SD = 0.2, 0.3, 0.05, 0.05, 0.02
AR_PHI = 0.9  # per 10 s scrape
WARMUP_TAU_S, WARMUP_ERR, WARMUP_LAT = 20.0, 1.0, 0.3  # canary starts with 2x errors, ~35% slower
MISSING = 0.05  # chance that one arm's scrape is lost

# the latency regressions whose events-to-detect the summary compares with the oracle's
LATENCY_SUMMARY = ("+10%", "+25%", "tail")

JUDGES = ("threshold", "threshold-cal", "mannwhitney", "compare", "sequential", "oracle-2arm", "oracle-looks", "oracle")


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # null | errors | latency
    rps: float
    base_error: float
    error_ratio: float = 1.0
    latency_shift: float = 0.0
    tail_fraction: float = 0.0
    tail_factor: float = 1.0

    @property
    def condition(self) -> tuple[float, float]:
        return (self.base_error, self.rps)


def scenarios() -> list[Scenario]:
    out: list[Scenario] = []
    for base in (0.001, 0.01):
        for rps in (2.0, 20.0, 200.0):
            out.append(Scenario(f"good err={base:.1%} rps={rps:g}", "null", rps, base))
    for ratio in (1.25, 1.5, 2.0, 5.0):
        for base in (0.001, 0.01):
            for rps in (2.0, 20.0, 200.0):
                name = f"errors x{ratio:g} err={base:.1%} rps={rps:g}"
                out.append(Scenario(name, "errors", rps, base, ratio))
    for shift in (0.02, 0.05, 0.10, 0.25):
        for rps in (2.0, 20.0, 200.0):
            name = f"latency +{shift:.0%} rps={rps:g}"
            out.append(Scenario(name, "latency", rps, 0.001, latency_shift=shift))
    for rps in (2.0, 20.0, 200.0):
        out.append(Scenario(f"latency tail 3% x3 rps={rps:g}", "latency", rps, 0.001, tail_fraction=0.03,
                            tail_factor=3.0))
    return out


@dataclass
class Sim:
    """Cumulative observed series (NaN where a scrape was lost) and the truth behind them."""

    ce: FloatArray  # canary errors (runs, T)
    cn: FloatArray  # canary requests
    pe: FloatArray
    pn: FloatArray
    cb: FloatArray  # canary buckets (runs, T, len(LE) + 1), cumulative over time and le
    pb: FloatArray
    true_ce: FloatArray  # cumulative canary errors actually served
    true_cn: FloatArray
    oracle_llr: FloatArray  # per-scrape log likelihood ratio of the oracle SPRT
    two_arm_llr: FloatArray  # the same regression, judged on the canary's share of each bucket's requests


def ar1(rng: np.random.Generator, runs: int, pods: int, sd: float) -> FloatArray:
    """Stationary AR(1) log-noise per pod, averaged over the arm's pods: shape (runs, HORIZON)."""
    z = np.empty((runs, pods, HORIZON))
    z[..., 0] = rng.normal(0, sd, (runs, pods))
    eps = rng.normal(0, sd * math.sqrt(1 - AR_PHI**2), (runs, pods, HORIZON))
    for t in range(1, HORIZON):
        z[..., t] = AR_PHI * z[..., t - 1] + eps[..., t]
    return np.asarray(z.mean(axis=1), dtype=np.float64)


def bucket_probs(log_median: FloatArray, tail_fraction: float, tail_factor: float) -> FloatArray:
    """Probability of each (non-cumulative) bucket incl. the +Inf overflow: shape log_median.shape + (B,)."""
    lz = np.log(LE)
    cdf = stats.norm.cdf((lz - log_median[..., None]) / SIGMA)
    if tail_fraction > 0:
        slow = stats.norm.cdf((lz - log_median[..., None] - math.log(tail_factor)) / SIGMA)
        cdf = (1 - tail_fraction) * cdf + tail_fraction * slow
    full = np.concatenate([cdf, np.ones((*cdf.shape[:-1], 1))], axis=-1)
    probs = np.diff(full, axis=-1, prepend=0.0)
    return np.asarray(np.clip(probs, 0.0, 1.0), dtype=np.float64)


def weights() -> FloatArray:
    k = np.arange(HORIZON) // INTERVAL
    return np.asarray(np.minimum(STEP_WEIGHT * (k + 1), MAX_WEIGHT), dtype=np.float64)


def simulate(sc: Scenario, runs: int, rng: np.random.Generator) -> Sim:
    w = weights()
    t_mid = (np.arange(HORIZON) + 0.5) * SCRAPE_S
    warm = np.exp(-t_mid / WARMUP_TAU_S)

    def mult(pods: int, sd: float) -> FloatArray:
        """A mean-one multiplicative noise from the pods' AR(1) log-noise."""
        return np.exp(ar1(rng, runs, pods, sd) - sd**2 / (2 * pods))

    n_c = rng.poisson(2 * sc.rps * w * SCRAPE_S * mult(CANARY_PODS, REQ_NOISE_SD))
    n_p = rng.poisson(2 * sc.rps * (1 - w) * SCRAPE_S * mult(PRIMARY_PODS, REQ_NOISE_SD))
    common = mult(1, ERR_COMMON_SD)  # shared by both arms (a dependency's bad minute)
    p_c = np.clip(sc.base_error * sc.error_ratio * (1 + WARMUP_ERR * warm) * common
                  * mult(CANARY_PODS, ERR_POD_SD), 0, 1)
    p_p = np.clip(sc.base_error * common * mult(PRIMARY_PODS, ERR_POD_SD), 0, 1)
    e_c = rng.binomial(n_c, p_c)
    e_p = rng.binomial(n_p, p_p)
    lat_common = ar1(rng, runs, 1, LAT_COMMON_SD)
    mu0 = math.log(MEDIAN_S)
    mu_c = mu0 + math.log1p(sc.latency_shift) + WARMUP_LAT * warm + lat_common + ar1(rng, runs, CANARY_PODS,
                                                                                      LAT_POD_SD)
    mu_p = mu0 + lat_common + ar1(rng, runs, PRIMARY_PODS, LAT_POD_SD)
    h_c = rng.multinomial(n_c, bucket_probs(mu_c, sc.tail_fraction, sc.tail_factor))
    h_p = rng.multinomial(n_p, bucket_probs(mu_p, 0.0, 1.0))

    # the oracle knows the true rates (all but the per-pod wobble), the warm-up and the size of the
    # regression; on good canaries it bets on the regressions it would look for (2x errors, 10% slower)
    llr = np.zeros((runs, HORIZON))
    # the two-arm oracle knows the same, but not the primary's rates: like the sequential judge it is
    # given both arms' counts and judges the canary's share of them (binomial per bucket), so the
    # primary's own noise costs it what it costs the judge
    two_arm = np.zeros((runs, HORIZON))
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(n_c + n_p > 0, n_c / (n_c + n_p), 0.5)[..., None]

    def canary_share_llr(c: npt.NDArray[np.int64], p: npt.NDArray[np.int64], r0: FloatArray, r1: FloatArray
                         ) -> FloatArray:
        """log LR of the canary's share of the requests in each bucket, its rate ratio to the primary's r1
        against r0 (buckets on the last axis)."""
        th0, th1 = r0 * share / (r0 * share + 1 - share), r1 * share / (r1 * share + 1 - share)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = c * np.log(th1 / th0) + p * np.log((1 - th1) / (1 - th0))
        return np.asarray(np.where(np.isfinite(step), step, 0.0).sum(axis=-1), dtype=np.float64)

    if sc.kind in ("null", "errors"):
        lam = sc.error_ratio if sc.kind == "errors" else 2.0
        mu_err0 = n_c * sc.base_error * (1 + WARMUP_ERR * warm) * common
        llr += e_c * math.log(lam) - (lam - 1) * mu_err0
        r0 = np.broadcast_to(1 + WARMUP_ERR * warm, (runs, HORIZON))[..., None]
        two_arm += canary_share_llr(e_c[..., None], e_p[..., None], r0, lam * r0)
    if sc.kind in ("null", "latency"):
        base_mu = mu0 + WARMUP_LAT * warm + lat_common
        shift = sc.latency_shift if sc.kind == "latency" else 0.10
        tail_f, tail_x = (sc.tail_fraction, sc.tail_factor) if sc.kind == "latency" else (0.0, 1.0)
        q0 = bucket_probs(base_mu, 0.0, 1.0)
        q1 = bucket_probs(base_mu + math.log1p(shift), tail_f, tail_x)
        with np.errstate(divide="ignore", invalid="ignore"):
            lr = np.where(q1 > 0, np.log(q1 / q0), 0.0)
        llr += np.einsum("rtb,rtb->rt", h_c, lr)
        qp = bucket_probs(mu0 + lat_common, 0.0, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            two_arm += canary_share_llr(h_c, h_p, q0 / qp, q1 / qp)

    def observed(cum: FloatArray, lost: BoolArray) -> FloatArray:
        return np.where(lost[..., None] if cum.ndim == 3 else lost, np.nan, cum)

    lost_c = rng.random((runs, HORIZON)) < MISSING
    lost_p = rng.random((runs, HORIZON)) < MISSING
    def cum(a: npt.NDArray[np.int64]) -> FloatArray:
        return np.cumsum(a, axis=1).astype(np.float64)

    cb = np.cumsum(np.cumsum(h_c, axis=2), axis=1).astype(np.float64)[..., :]
    pb = np.cumsum(np.cumsum(h_p, axis=2), axis=1).astype(np.float64)
    return Sim(
        ce=observed(cum(e_c), lost_c), cn=observed(cum(n_c), lost_c),
        pe=observed(cum(e_p), lost_p), pn=observed(cum(n_p), lost_p),
        cb=observed(cb, lost_c), pb=observed(pb, lost_p),
        true_ce=cum(e_c), true_cn=cum(n_c), oracle_llr=llr, two_arm_llr=two_arm,
    )


# ---- per-interval and per-scrape views -------------------------------------------------------------


def histogram_quantile(q: float, buckets: FloatArray) -> FloatArray:
    """Prometheus histogram_quantile over non-cumulative-in-time, cumulative-in-le bucket counts
    (..., B): linear interpolation inside the bucket; NaN without requests."""
    total = buckets[..., -1]
    rank = q * total
    finite = buckets[..., :-1]
    idx = np.sum(finite < rank[..., None], axis=-1)  # first bucket with count >= rank
    k = np.minimum(idx, len(LE) - 1)
    upper = LE[k]
    lower = np.where(k > 0, LE[np.maximum(k - 1, 0)], 0.0)
    c_hi = np.take_along_axis(finite, k[..., None], axis=-1)[..., 0]
    c_lo = np.where(k > 0, np.take_along_axis(finite, np.maximum(k - 1, 0)[..., None], axis=-1)[..., 0], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(c_hi > c_lo, (rank - c_lo) / (c_hi - c_lo), 1.0)
    value = lower + (upper - lower) * np.clip(frac, 0, 1)
    value = np.where(idx >= len(LE), LE[-1], value)
    return np.asarray(np.where(total > 0, value, np.nan), dtype=np.float64)


def filled(cum: FloatArray) -> FloatArray:
    """Cumulative series with lost scrapes replaced by the last seen value (what a range query gives)."""
    if cum.ndim == 3:
        inc = np.moveaxis(increments(np.moveaxis(cum, 2, 1)), 1, 2)
        return np.cumsum(inc, axis=1)
    return np.cumsum(increments(cum), axis=1)


def per_interval(cum: FloatArray) -> FloatArray:
    """Counts per 1 m interval from the last seen value at each interval's end: (runs, intervals, ...)."""
    f = filled(cum)
    ends = f[:, INTERVAL - 1 :: INTERVAL]
    return np.diff(ends, axis=1, prepend=np.zeros_like(ends[:, :1]))


def rolling(cum: FloatArray) -> FloatArray:
    """Counts over the last 1 m at every scrape (what `increase(x[1m])` sampled each scrape gives)."""
    f = filled(cum)
    before = np.concatenate([np.zeros_like(f[:, :INTERVAL]), f[:, :-INTERVAL]], axis=1)
    return np.asarray(f - before, dtype=np.float64)


def success_pct(errors: FloatArray, requests: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(requests > 0, 100.0 * (1 - errors / requests), np.nan), dtype=np.float64)


@dataclass
class Views:
    """What the operator's queries answer, per check: the threshold judge's one number per interval
    (success rate in %, P99 in ms over the last 1 m) and the compare judge's samples (the same
    queries at every scrape)."""

    success: FloatArray  # canary success rate per interval (runs, intervals), NaN without requests
    p99_ms: FloatArray  # canary P99 per interval
    roll_success_c: FloatArray  # 1 m success rate at every scrape (runs, T)
    roll_success_p: FloatArray
    roll_p99_c: FloatArray  # 1 m P99 (ms) at every scrape
    roll_p99_p: FloatArray
    scrape_err_c: FloatArray  # per-scrape error ratio (runs, T), NaN without requests (references)
    scrape_err_p: FloatArray
    scrape_p90_c: FloatArray
    scrape_p90_p: FloatArray


def views(sim: Sim) -> Views:
    with np.errstate(divide="ignore", invalid="ignore"):
        nc, np_ = increments(sim.cn), increments(sim.pn)
        sec = np.where(nc > 0, increments(sim.ce) / nc, np.nan)
        sep = np.where(np_ > 0, increments(sim.pe) / np_, np.nan)

    def hb(b: FloatArray) -> FloatArray:
        return np.moveaxis(increments(np.moveaxis(b, 2, 1)), 1, 2)

    return Views(
        success_pct(per_interval(sim.ce), per_interval(sim.cn)),
        1000 * histogram_quantile(0.99, per_interval(sim.cb)),
        success_pct(rolling(sim.ce), rolling(sim.cn)), success_pct(rolling(sim.pe), rolling(sim.pn)),
        1000 * histogram_quantile(0.99, rolling(sim.cb)), 1000 * histogram_quantile(0.99, rolling(sim.pb)),
        sec, sep, histogram_quantile(0.9, hb(sim.cb)), histogram_quantile(0.9, hb(sim.pb)),
    )


# ---- judges: each returns (rolled back?, decision scrape index) per run ----------------------------


@dataclass
class Outcome:
    rollback: BoolArray
    at: npt.NDArray[np.int64]  # scrape index of the decision (rollback or promotion)


def release_verdict(per_metric: list[npt.NDArray[np.str_]]) -> npt.NDArray[np.str_]:
    """One check of a release from its metrics' verdicts, as the planner reads them: any failure fails
    it, else any metric without data holds it, else it passes."""
    v = np.stack(per_metric)
    out = np.where((v == Verdict.NO_DATA.value).any(axis=0), Verdict.NO_DATA.value, Verdict.PASS.value)
    return np.where((v == Verdict.FAIL.value).any(axis=0), Verdict.FAIL.value, out)


def planned_outcome(verdicts: npt.NDArray[np.str_], threshold: int) -> Outcome:
    """The planner over one verdict per check (runs, checks): a pass advances a step (promotion after
    PLAN_CHECKS passes), no data holds, a failure halts and counts; `threshold` failures roll back."""
    runs, checks = verdicts.shape
    passes = np.zeros(runs, dtype=np.int64)
    fails = np.zeros(runs, dtype=np.int64)
    at = np.full(runs, -1, dtype=np.int64)
    rollback = np.zeros(runs, dtype=bool)
    for k in range(checks):
        open_ = at < 0
        f = (verdicts[:, k] == Verdict.FAIL.value) & open_
        p = (verdicts[:, k] == Verdict.PASS.value) & open_
        fails += f
        passes += p
        end = (k + 1) * INTERVAL - 1
        rb = f & (fails >= threshold)
        rollback |= rb
        at = np.where(rb | (p & (passes >= PLAN_CHECKS)), end, at)
    return Outcome(rollback, np.where(at < 0, HORIZON - 1, at))


def threshold_verdicts(metric: Metric, values: FloatArray) -> npt.NDArray[np.str_]:
    """`judging.judge_threshold` on every (run, check) value: the operator's function, cell by cell."""
    out = np.empty(values.shape, dtype=object)
    for idx, value in np.ndenumerate(values):
        out[idx] = judging.judge_threshold(metric, None if math.isnan(value) else float(value)).verdict.value
    return out.astype(str)


def fast_threshold(metric: Metric, values: FloatArray) -> npt.NDArray[np.str_]:
    """`threshold_verdicts` in one numpy expression, for the calibration's search."""
    bounds = metric.threshold_range
    low = -math.inf if bounds is None or bounds.min is None else bounds.min
    high = math.inf if bounds is None or bounds.max is None else bounds.max
    out = np.where((values < low) | (values > high), Verdict.FAIL.value, Verdict.PASS.value)
    return np.where(np.isnan(values), Verdict.NO_DATA.value, out)


def threshold_outcome(v: Views, block: dict[str, Any]) -> Outcome:
    analysis = canary_analysis(block)
    success, duration = analysis.metrics
    return planned_outcome(release_verdict([threshold_verdicts(success, v.success),
                                            threshold_verdicts(duration, v.p99_ms)]), analysis.threshold)


def compare_outcome(v: Views, block: dict[str, Any]) -> Outcome:
    """Each check compares the samples of the last `judging.COMPARE_INTERVALS` intervals through
    `judging.compare_verdicts`, the batch twin of the operator's `judge_compare` (same window, spec rules
    and serial-correlation correction; tests hold the two together)."""
    analysis = canary_analysis(block)
    success, duration = analysis.metrics
    runs, checks = v.success.shape
    verdicts = np.empty((runs, checks), dtype="<U8")
    for k in range(checks):
        w = slice(max(0, k + 1 - judging.COMPARE_INTERVALS) * INTERVAL, (k + 1) * INTERVAL)
        verdicts[:, k] = release_verdict([
            judging.compare_verdicts(analysis, success, v.roll_success_c[:, w], v.roll_success_p[:, w],
                                     step=SCRAPE_S),
            judging.compare_verdicts(analysis, duration, v.roll_p99_c[:, w], v.roll_p99_p[:, w], step=SCRAPE_S),
        ])
    return planned_outcome(verdicts, analysis.threshold)


def looks_outcome(fail_at_look: Callable[[int], BoolArray], runs: int) -> Outcome:
    """A judge that looks at the end of each planned interval after the warm-up; promotes at plan end."""
    at = np.full(runs, PLAN_END - 1, dtype=np.int64)
    rollback = np.zeros(runs, dtype=bool)
    for end in range(WARMUP_LOOKS + INTERVAL - 1, PLAN_END, INTERVAL):
        f = fail_at_look(end) & ~rollback
        at = np.where(f, end, at)
        rollback |= f
    return Outcome(rollback, at)


def mannwhitney_outcome(v: Views, alpha: float) -> Outcome:
    def fail(end: int) -> BoolArray:
        w = slice(WARMUP_LOOKS, end + 1)
        _, p_err = mannwhitney_batch(v.scrape_err_c[:, w], v.scrape_err_p[:, w], "greater")
        _, p_lat = mannwhitney_batch(v.scrape_p90_c[:, w], v.scrape_p90_p[:, w], "greater")
        return np.asarray((p_err < alpha) | (p_lat < alpha), dtype=np.bool_)

    return looks_outcome(fail, v.scrape_err_c.shape[0])


def crossing_outcome(log_e: FloatArray, alpha: float) -> Outcome:
    hit = log_e[:, :PLAN_END] >= math.log(1 / alpha)
    rollback: BoolArray = np.asarray(hit.any(axis=1), dtype=np.bool_)
    at = np.where(rollback, np.argmax(hit, axis=1), PLAN_END - 1)
    return Outcome(rollback, at.astype(np.int64))


def sequential_outcome(sim: Sim, block: dict[str, Any]) -> Outcome:
    """Each run's counts and histograms at the judge's looks (every `lookInterval`, else once per
    interval; lost scrapes NaN) through `judging.judge_counts` / `judge_histogram`, the functions the
    operator calls at every look. The test is recomputed from the same past looks at every look, so the
    look at which the whole plan's run first crosses is the one at which the operator rolls back (a
    final failure, between checks too)."""
    analysis = canary_analysis(block)
    every = max(1, round(analysis.look) // SCRAPE_S)  # scrapes per look
    idx = np.arange(every - 1, PLAN_END, every)  # the scrape each look ends at
    elapsed = (idx + 1 - every) * SCRAPE_S  # each look's counts start here
    le_ms = [*(1000 * LE), math.inf]
    runs = sim.ce.shape[0]
    first = np.full(runs, -1, dtype=np.int64)
    for metric in analysis.metrics:
        assert judging.judge_for(analysis, metric) == Judge.SEQUENTIAL
        for i in range(runs):
            if metric.name == judging.REQUEST_DURATION:
                r = judging.judge_histogram(analysis, metric, elapsed, sim.cb[i, idx], sim.pb[i, idx], le_ms)
            else:
                r = judging.judge_counts(analysis, metric, elapsed, sim.ce[i, idx], sim.cn[i, idx],
                                         sim.pe[i, idx], sim.pn[i, idx])
            crossed = r.details.get("crossed_at")
            if r.failed and crossed is not None and (first[i] < 0 or crossed < first[i]):
                first[i] = crossed
    rollback = first >= 0
    at = np.where(rollback, idx[np.maximum(first, 0)], PLAN_END - 1)
    return Outcome(rollback, at.astype(np.int64))


def oracle_outcome(sim: Sim, alpha: float) -> Outcome:
    return crossing_outcome(np.cumsum(sim.oracle_llr, axis=1), alpha)


def oracle_looks_outcome(sim: Sim, alpha: float) -> Outcome:
    """The oracle SPRT, looking only at the end of each interval (the operator's looks)."""
    llr = np.cumsum(sim.oracle_llr, axis=1)
    at_looks = np.full_like(llr, -np.inf)
    ends = slice(INTERVAL - 1, PLAN_END, INTERVAL)
    at_looks[:, ends] = llr[:, ends]
    return crossing_outcome(at_looks, alpha)


# ---- calibration of the threshold judge ------------------------------------------------------------


def calibrate(v: Views, target: float) -> tuple[float, float]:
    """Limits (max error rate, max p99) at the same quantile q of the good canary's per-interval values,
    with q the smallest whose false-alarm rate on these null runs is <= target."""
    er = 1 - v.success[np.isfinite(v.success)] / 100
    lat = v.p99_ms[np.isfinite(v.p99_ms)] / 1000

    def limits(q: float) -> tuple[float, float]:
        return float(np.quantile(er, q)) if er.size else 0.0, float(np.quantile(lat, q)) if lat.size else 0.0

    def far(q: float) -> float:
        # The search applies the block's two ranges directly (the same rule as `judge_threshold`, which
        # gives the reported figures; tests hold the two together): thousands of trial limits.
        success, duration = canary_analysis(calibrated(*limits(q))).metrics
        return float(planned_outcome(release_verdict([fast_threshold(success, v.success),
                                                      fast_threshold(duration, v.p99_ms)]),
                                     FAILED_CHECKS).rollback.mean())

    lo, hi = 0.5, 1.0
    if far(hi) > target:
        return limits(hi)
    for _ in range(20):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if far(mid) <= target else (mid, hi)
    return limits(hi)


# ---- metrics -----------------------------------------------------------------------------------------


def clopper_pearson(k: int, n: int) -> tuple[float, float]:
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return float(ci.low), float(ci.high)


def q(values: FloatArray, p: float) -> float:
    """A quantile without interpolation, so runs never decided (inf) count as censored."""
    return float(np.quantile(values, p, method="inverted_cdf")) if values.size else math.nan


@dataclass
class Row:
    scenario: str
    kind: str
    judge: str
    runs: int
    rate: float  # false-alarm rate (good canary) or power (bad canary)
    ci: tuple[float, float]
    t50: float  # seconds to rollback (inf when most runs were promoted)
    t90: float
    events50: float  # canary error events (errors scenarios) or canary requests (latency) to rollback
    events90: float
    bad50: float  # bad requests served before rollback (inf when promoted: it then serves everyone)
    promote50: float  # seconds to promote (good canaries)
    promote90: float
    vs_oracle: float = math.nan  # events50 / oracle events50
    extra: dict[str, Any] = field(default_factory=dict)


def summarize(sc: Scenario, judge: str, out: Outcome, sim: Sim) -> Row:
    runs = out.rollback.size
    idx = np.arange(runs)
    t = (out.at + 1).astype(np.float64) * SCRAPE_S
    inf = np.inf
    rb_t = np.where(out.rollback, t, inf)
    canary_err = sim.true_ce[idx, out.at]
    canary_req = sim.true_cn[idx, out.at]
    if sc.kind == "latency":
        events = canary_req
        bad = canary_req * (sc.tail_fraction if sc.tail_fraction else 1.0)
    elif sc.kind == "null":
        events = canary_err
        bad = np.full(runs, math.nan)
    else:
        events = canary_err
        bad = canary_err * (1 - 1 / sc.error_ratio)
    events = np.where(out.rollback, events, inf)
    bad = np.where(out.rollback, bad, inf)
    pr_t = np.where(out.rollback, inf, t)
    k = int(out.rollback.sum())
    return Row(sc.name, sc.kind, judge, runs, k / runs, clopper_pearson(k, runs), q(rb_t, 0.5), q(rb_t, 0.9),
               q(events, 0.5), q(events, 0.9), q(bad, 0.5), q(pr_t, 0.5), q(pr_t, 0.9))


def run_scenario(sc: Scenario, runs: int, seed: int, index: int, limits: tuple[float, float]) -> list[Row]:
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    sim = simulate(sc, runs, rng)
    v = views(sim)
    outcomes = {
        "threshold": threshold_outcome(v, ANALYSES["threshold"]),
        "threshold-cal": threshold_outcome(v, calibrated(*limits)),
        "mannwhitney": mannwhitney_outcome(v, ALPHA),
        "compare": compare_outcome(v, ANALYSES["compare"]),
        "sequential": sequential_outcome(sim, ANALYSES["sequential"]),
        "oracle-2arm": crossing_outcome(np.cumsum(sim.two_arm_llr, axis=1), ALPHA),
        "oracle-looks": oracle_looks_outcome(sim, ALPHA),
        "oracle": oracle_outcome(sim, ALPHA),
    }
    rows = [summarize(sc, j, outcomes[j], sim) for j in JUDGES]
    oracle = rows[-1].events50
    for r in rows:
        r.vs_oracle = r.events50 / oracle if oracle > 0 else math.nan
    looks = rows[-2].events50
    for r in rows:
        r.extra = {"vs_oracle_looks": r.events50 / looks if looks > 0 else math.nan}
    rows[1].extra["analysis"] = calibrated(*limits)
    return rows


def calibrations(conditions: Iterable[tuple[float, float]], runs: int, seed: int
                 ) -> tuple[dict[tuple[float, float], tuple[float, float]], float]:
    """Threshold limits per (base error rate, traffic), at the sequential judge's pooled false-alarm
    rate on the same calibration runs (returned too)."""
    chosen = sorted(set(conditions))
    sims = []
    for i, (base, rps) in enumerate(chosen):
        rng = np.random.default_rng(np.random.SeedSequence([seed, 10_000 + i]))
        sims.append(simulate(Scenario("calibration", "null", rps, base), runs, rng))
    target = float(np.mean([sequential_outcome(sim, ANALYSES["sequential"]).rollback.mean() for sim in sims]))
    target = max(target, 1 / (len(sims) * runs))
    return {c: calibrate(views(sim), target) for c, sim in zip(chosen, sims, strict=True)}, target


def benchmark(null_runs: int, bad_runs: int, calibration_runs: int, seed: int,
              only: Iterable[Scenario] | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    chosen = list(only) if only is not None else scenarios()
    limits, target = calibrations((s.condition for s in chosen), calibration_runs, seed)
    rows: list[Row] = []
    for i, sc in enumerate(chosen):
        rows += run_scenario(sc, null_runs if sc.kind == "null" else bad_runs, seed, i, limits[sc.condition])
    return {"rows": rows, "summary": summary(rows), "seconds": time.perf_counter() - started,
            "config": {"alpha": ALPHA, "seed": seed, "null_runs": null_runs, "bad_runs": bad_runs,
                       "calibration_runs": calibration_runs,
                       "threshold_cal_target_far": target, "analyses": ANALYSES}}


def summary(rows: list[Row]) -> dict[str, Any]:
    """The figures the design promises: pooled false alarms, events vs the oracle and the calibrated
    threshold on error-rate doubling, time to promote good canaries."""
    out: dict[str, Any] = {"false_alarms": {}, "worst_false_alarms": {}, "doubling": [], "latency": [],
                           "promotion": {}}
    for j in JUDGES:
        nulls = [r for r in rows if r.kind == "null" and r.judge == j]
        n = sum(r.runs for r in nulls)
        k = round(sum(r.rate * r.runs for r in nulls))
        if n:
            lo, hi = clopper_pearson(k, n)
            out["false_alarms"][j] = {"runs": n, "rate": k / n, "ci": [lo, hi]}
            out["promotion"][j] = {"median_s": float(np.median([r.promote50 for r in nulls]))}
            worst = max(nulls, key=lambda r: r.rate)
            out["worst_false_alarms"][j] = {"scenario": worst.scenario, "runs": worst.runs, "rate": worst.rate,
                                            "ci": list(worst.ci)}
    by = {(r.scenario, r.judge): r for r in rows}
    for r in rows:
        if r.judge == "sequential" and r.kind == "errors" and " x2 " in r.scenario:
            cal = by[(r.scenario, "threshold-cal")]
            out["doubling"].append({
                "scenario": r.scenario, "sequential_power": r.rate, "sequential_events50": r.events50,
                "oracle_events50": by[(r.scenario, "oracle")].events50, "vs_oracle": r.vs_oracle,
                "threshold_cal_events50": cal.events50, "threshold_cal_power": cal.rate,
                "threshold_cal_over_sequential": cal.events50 / r.events50 if r.events50 > 0 else math.nan,
            })
    for r in rows:
        if r.judge == "sequential" and r.kind == "latency" and any(k in r.scenario for k in LATENCY_SUMMARY):
            o, ol, o2 = by[(r.scenario, "oracle")], by[(r.scenario, "oracle-looks")], by[(r.scenario, "oracle-2arm")]
            out["latency"].append({
                "scenario": r.scenario, "sequential_power": r.rate, "sequential_events50": r.events50,
                "oracle_events50": o.events50, "oracle_looks_events50": ol.events50,
                "oracle_2arm_events50": o2.events50, "vs_oracle": r.vs_oracle,
                "vs_oracle_looks": r.extra["vs_oracle_looks"],
            })
    seq = {r.scenario: r for r in rows if r.judge == "sequential" and r.kind == "null"}
    thr = {r.scenario: r for r in rows if r.judge == "threshold" and r.kind == "null"}
    out["promotion"]["sequential_never_slower"] = all(
        seq[s].promote50 <= thr[s].promote50 and seq[s].promote90 <= thr[s].promote90 for s in seq)
    return out


# ---- output --------------------------------------------------------------------------------------------


def _n(x: float, pct: bool = False) -> str:
    if isinstance(x, float) and math.isnan(x):
        return "-"
    if math.isinf(x):
        return "inf"
    return f"{x:.1%}" if pct else f"{x:.3g}"


def specs() -> str:
    """The Canary `analysis` blocks behind the operator's judges, as a user writes them."""
    lines = ["== the judges as Canary analysis blocks (threshold-cal: the threshold block with the limits"
             " in --json)"]
    for name, block in ANALYSES.items():
        lines.append(f"{name}:")
        lines += ["  " + line for line in yaml.safe_dump({"analysis": block}, sort_keys=False).splitlines()]
    return "\n".join(lines)


def table(result: dict[str, Any]) -> str:
    lines = [specs()]
    head = (f"{'judge':<14}{'rate':>7} {'95% CI':>14}{'t50 s':>7}{'t90 s':>7}{'ev50':>8}{'ev90':>8}"
            f"{'bad50':>8}{'prom50':>8}{'/oracle':>9}{'/o-looks':>9}")
    current = None
    for r in result["rows"]:
        if r.scenario != current:
            current = r.scenario
            what = "false alarms" if r.kind == "null" else "power"
            lines += ["", f"== {r.scenario}  (rate = {what}, {r.runs} runs)", head]
        ci = f"[{_n(r.ci[0], True)},{_n(r.ci[1], True)}]"
        lines.append(f"{r.judge:<14}{_n(r.rate, True):>7} {ci:>14}{_n(r.t50):>7}{_n(r.t90):>7}"
                     f"{_n(r.events50):>8}{_n(r.events90):>8}{_n(r.bad50):>8}{_n(r.promote50):>8}"
                     f"{_n(r.vs_oracle):>9}{_n(r.extra['vs_oracle_looks']):>9}")
    s = result["summary"]
    lines += ["", "== summary", "false alarms on good canaries, pooled (Clopper-Pearson 95%):"]
    for j, f in s["false_alarms"].items():
        lines.append(f"  {j:<14}{f['rate']:.2%}  [{f['ci'][0]:.2%}, {f['ci'][1]:.2%}]  of {f['runs']} runs"
                     f"   median time to promote {s['promotion'][j]['median_s']:.0f} s")
    lines.append("false alarms in the worst single good-canary scenario (Clopper-Pearson 95%):")
    for j, f in s["worst_false_alarms"].items():
        lines.append(f"  {j:<14}{f['rate']:.2%}  [{f['ci'][0]:.2%}, {f['ci'][1]:.2%}]  of {f['runs']} runs"
                     f"   ({f['scenario']})")
    lines.append("error-rate doubling: median canary error events to rollback")
    for d in s["doubling"]:
        lines.append(f"  {d['scenario']:<28} sequential {_n(d['sequential_events50']):>6} "
                     f"(power {d['sequential_power']:.0%})  oracle {_n(d['oracle_events50']):>6}  "
                     f"seq/oracle {_n(d['vs_oracle']):>5}  "
                     f"threshold-cal {_n(d['threshold_cal_events50']):>6} "
                     f"(power {d['threshold_cal_power']:.0%})  "
                     f"cal/seq {_n(d['threshold_cal_over_sequential'])}")
    lines.append("latency: median canary requests to rollback (oracle: looks every scrape; oracle-looks: once"
                 " per interval, like the operator; oracle-2arm: every scrape, on the canary's share of each"
                 " bucket)")
    for d in s["latency"]:
        lines.append(f"  {d['scenario']:<28} sequential {_n(d['sequential_events50']):>6} "
                     f"(power {d['sequential_power']:.0%})  oracle {_n(d['oracle_events50']):>6}  "
                     f"oracle-looks {_n(d['oracle_looks_events50']):>6}  "
                     f"oracle-2arm {_n(d['oracle_2arm_events50']):>6}  seq/oracle {_n(d['vs_oracle']):>5}  "
                     f"seq/oracle-looks {_n(d['vs_oracle_looks']):>5}")
    never = s["promotion"]["sequential_never_slower"]
    lines.append(f"sequential never slower to promote than threshold: {never}")
    lines.append(f"({result['seconds']:.0f} s)")
    return "\n".join(lines)


def to_json(result: dict[str, Any]) -> dict[str, Any]:
    def clean(x: Any) -> Any:
        if isinstance(x, float) and (math.isinf(x) or math.isnan(x)):
            return None if math.isnan(x) else "inf"
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [clean(v) for v in x]
        return x

    return clean({**result, "rows": [asdict(r) for r in result["rows"]]})  # type: ignore[no-any-return]


def drop_warmup() -> None:
    """`--no-warmup`: good canaries start as they go on and no block forgives a warm-up, to show what
    forgiving one costs each judge against the oracle, which knows the simulated warm-up exactly."""
    global WARMUP_ERR, WARMUP_LAT
    WARMUP_ERR = WARMUP_LAT = 0.0
    for block in ANALYSES.values():
        block.pop("warmup", None)
        for metric in block["metrics"]:
            metric.pop("warmup", None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.judge", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer runs (a few minutes on 2 cores)")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-warmup", action="store_true", help="no simulated warm-up and no allowance for one")
    args = ap.parse_args(argv)
    if args.no_warmup:
        drop_warmup()
    if args.quick:
        result = benchmark(null_runs=400, bad_runs=400, calibration_runs=400, seed=args.seed)
    else:
        result = benchmark(null_runs=2000, bad_runs=1000, calibration_runs=2000, seed=args.seed)
    print(table(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(to_json(result), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
