"""The threshold judge: Flagger's `thresholdRange` semantics, kept exactly so Flagger users' metrics mean
the same thing here.

A metric query yields one number per check; it passes when it lies within {min, max} (both inclusive,
either optional). A missing value (None, NaN, an empty result) is NO_DATA, never a pass. An infinite
value is a value: +Inf (a p99 above the top histogram bucket) fails any max and passes any min, -Inf
the other way round, as Flagger's comparisons order them.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from analysis.judges import JudgeResult, Verdict, fmt


def latest_value(values: float | npt.ArrayLike | None) -> float | None:
    """The number a check judges: a scalar as is, or the last non-NaN element of a series (the most
    recent sample of a range query; infinities count). None when there is none."""
    if values is None:
        return None
    arr = np.asarray(values, dtype=np.float64).ravel()
    present = arr[~np.isnan(arr)]
    if present.size == 0:
        return None
    return float(present[-1])


def describe_range(min_value: float | None, max_value: float | None) -> str:
    if min_value is not None and max_value is not None:
        return f"{fmt(min_value)} <= value <= {fmt(max_value)}"
    if min_value is not None:
        return f"value >= {fmt(min_value)}"
    if max_value is not None:
        return f"value <= {fmt(max_value)}"
    return "any value"


def threshold(
    value: float | npt.ArrayLike | None,
    *,
    min_value: float | None = None,
    max_value: float | None = None,
    name: str = "value",
) -> JudgeResult:
    """Judge one check of one metric against Flagger's thresholdRange {min, max}."""
    if min_value is not None and max_value is not None and min_value > max_value:
        raise ValueError(f"thresholdRange min {min_value} is above max {max_value}")
    limit = describe_range(min_value, max_value).replace("value", name)
    v = latest_value(value)
    if v is None or math.isnan(v):
        return JudgeResult(Verdict.NO_DATA, None, None, limit, f"{name}: no data", {})
    too_low = min_value is not None and v < min_value
    too_high = max_value is not None and v > max_value
    if too_low:
        reason = f"{name} {fmt(v)} < min {fmt(min_value)}"
    elif too_high:
        reason = f"{name} {fmt(v)} > max {fmt(max_value)}"
    else:
        reason = f"{name} {fmt(v)} within {limit}"
    verdict = Verdict.FAIL if (too_low or too_high) else Verdict.PASS
    return JudgeResult(verdict, v, None, limit, reason, {"min": min_value, "max": max_value})
