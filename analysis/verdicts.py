"""The words shared by the analysis and the operator: verdicts, directions, outcomes.

Defined once here so that a judge's verdict, a release's check result and a report mean the same
thing. This module imports nothing beyond the standard library, because `rollout.api` and
`rollout.core`, which must stay free of numpy, take these types from it.
"""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    """What one judgement of one metric (or one `rollout` webhook) says."""

    PASS = "pass"
    FAIL = "fail"
    NO_DATA = "no-data"


class Direction(StrEnum):
    """Which way of the canary differing from the primary counts as bad: `increase` for latency
    and errors, `decrease` for success rate."""

    INCREASE = "increase"
    DECREASE = "decrease"
    EITHER = "either"


class Outcome(StrEnum):
    """How a whole analysis run ended (or has not yet): promoted, rolled back, still running."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Classification(StrEnum):
    """Kayenta's metric classification labels (`BaseMetricClassifier.scala`): what one metric's check
    was, as the score counts it."""

    PASS = "Pass"
    HIGH = "High"
    LOW = "Low"
    NODATA = "Nodata"
    NODATA_FAIL = "NodataFailMetric"  # no data in a `mustHaveData` metric: a failure, scored as one


class EffectMeasure(StrEnum):
    """Kayenta's `effectSize.measure`: the ratio of means, or the common-language effect size."""

    MEAN_RATIO = "meanRatio"
    CLES = "cles"


class NanStrategy(StrEnum):
    """Kayenta's `nanStrategy`: drop NaN samples, or count them as 0."""

    REMOVE = "remove"
    REPLACE = "replace"
