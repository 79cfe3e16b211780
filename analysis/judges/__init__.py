"""Judges turn raw metric numbers into a verdict, as pure functions over numpy arrays.

Every judge returns the same `JudgeResult`, so the operator, `rollout analyze` and the reports treat
threshold, compare and sequential alike. "No data" is its own verdict: it is never a pass, and it
is not a failure until the caller's limit (failed checks, progress deadline) says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analysis.verdicts import Verdict


@dataclass(frozen=True)
class JudgeResult:
    """One judgement of one metric.

    `value` is what the canary showed (None without data), `primary` the primary's figure when the
    judge compares (None for threshold), `limit` the rule that was applied, `reason` a short human
    sentence with the numbers, `details` judge-specific numbers for reports (JSON-serialisable).
    """

    verdict: Verdict
    value: float | None
    primary: float | None
    limit: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    @property
    def failed(self) -> bool:
        return self.verdict is Verdict.FAIL


def fmt(x: float | None) -> str:
    """A number as a short human string (4 significant digits), `none` for missing."""
    if x is None:
        return "none"
    return f"{x:.4g}"


__all__ = ["JudgeResult", "Verdict", "fmt"]
