"""The four DORA figures, computed from release records (`status.history`): a pure function.

`rollout dora`, `rollout demo` and the tests all call `figures`, so they cannot disagree. The
definitions, as DORA states them and as a progressive-delivery controller can measure them:

- deployment frequency: promotions (runs that ended Succeeded) per day and per week of the window;
- lead time for changes: from the commit of the candidate revision to its promotion. A promotion
  whose revision or commit time is unknown is counted apart and said so, never guessed;
- change failure rate: failed runs (Failed or Reverted) over all runs that ended in the window;
- time to restore: from the failure being detected to traffic back on the primary, and to the
  revert in Git applied (outcome Reverted).

Durations are summarised by their median and 90th percentile (linear interpolation between the
closest ranks, numpy's default), over the runs that ended in the window.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rollout.api.durations import format_duration, parse_duration
from rollout.api.status import RunOutcome, RunRecord, format_time

DAY = 86400.0
_DAYS = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(d|w)$")


def parse_window(text: str) -> timedelta:
    """`30d`, `2w`, `12h`, `90m`, `1h30m`: how far back to look. ValueError saying what is accepted."""
    s = text.strip()
    m = _DAYS.match(s)
    try:
        seconds = float(m.group(1)) * (DAY if m.group(2) == "d" else 7 * DAY) if m else parse_duration(s)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"must be a positive duration like 30d, 2w, 12h or 90m, got {text!r}")
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class Durations:
    """Seconds, summarised: how many, the median and the 90th percentile (None when there are none)."""

    count: int = 0
    median: float | None = None
    p90: float | None = None

    @classmethod
    def of(cls, values: Iterable[float]) -> Durations:
        data = sorted(values)
        if not data:
            return cls()
        p90 = data[0] if len(data) == 1 else statistics.quantiles(data, n=10, method="inclusive")[-1]
        return cls(len(data), float(statistics.median(data)), float(p90))

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "medianSeconds": self.median, "p90Seconds": self.p90}

    def text(self) -> str:
        if self.median is None or self.p90 is None:
            return "-"
        return f"median {short_duration(self.median)}, p90 {short_duration(self.p90)} (n={self.count})"


@dataclass(frozen=True)
class Figures:
    """The DORA figures of a set of releases over a window."""

    since: datetime
    until: datetime
    runs: int = 0
    promotions: int = 0
    failures: int = 0
    lead_time: Durations = field(default_factory=Durations)
    # Promotions whose lead time is unknown: no Git revision at all, or a revision without a commit time.
    no_revision: int = 0
    no_commit_time: int = 0
    restore_traffic: Durations = field(default_factory=Durations)
    restore_revert: Durations = field(default_factory=Durations)

    @property
    def days(self) -> float:
        return max((self.until - self.since).total_seconds(), 1.0) / DAY

    @property
    def per_day(self) -> float:
        return self.promotions / self.days

    @property
    def per_week(self) -> float:
        return self.per_day * 7

    @property
    def failure_rate(self) -> float | None:
        return self.failures / self.runs if self.runs else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": format_time(self.since),
            "until": format_time(self.until),
            "runs": self.runs,
            "deploymentFrequency": {"promotions": self.promotions, "perDay": self.per_day, "perWeek": self.per_week},
            "leadTimeForChanges": {**self.lead_time.to_dict(), "withoutRevision": self.no_revision,
                                   "withoutCommitTime": self.no_commit_time},
            "changeFailureRate": {"failures": self.failures, "runs": self.runs, "rate": self.failure_rate},
            "timeToRestore": {"traffic": self.restore_traffic.to_dict(), "revert": self.restore_revert.to_dict()},
        }

    def lines(self) -> list[str]:
        """The figures as a person reads them, one per line."""
        window = short_duration((self.until - self.since).total_seconds())
        rate = self.failure_rate
        unknown = []
        if self.no_revision:
            unknown.append(f"{self.no_revision} without a Git revision")
        if self.no_commit_time:
            unknown.append(f"{self.no_commit_time} without a commit time")
        lead = self.lead_time.text() if self.lead_time.count else "unknown" if unknown else "-"
        return [
            f"deployment frequency   {self.promotions} promotion{'s' if self.promotions != 1 else ''} in {window}"
            f" ({_rate(self.per_day)}/day, {_rate(self.per_week)}/week)",
            f"lead time for changes  {lead}" + (f"; {', '.join(unknown)}" if unknown else ""),
            "change failure rate    " + (f"{rate:.0%} ({self.failures} of {self.runs} runs)" if rate is not None
                                          else "- (no runs)"),
            f"time to restore        traffic back on the primary: {self.restore_traffic.text()}",
            f"                       revert applied from Git:     {self.restore_revert.text()}",
        ]


def figures(records: Iterable[RunRecord], since: datetime, until: datetime,
            commit_times: Mapping[str, datetime] | None = None) -> Figures:
    """The DORA figures of the runs that ended in [since, until]. `commit_times` gives the commit
    time of revisions whose record has none (read from Git by the caller)."""
    commits = commit_times or {}
    runs = [r for r in records if since <= r.ended_at <= until]
    promoted = [r for r in runs if r.outcome == RunOutcome.SUCCEEDED]
    failed = [r for r in runs if r.outcome != RunOutcome.SUCCEEDED]
    lead: list[float] = []
    no_revision = no_commit_time = 0
    for r in promoted:
        committed = r.committed_at or (commits.get(r.revision) if r.revision else None)
        if not r.revision:
            no_revision += 1
        elif committed is None:
            no_commit_time += 1
        else:
            lead.append(max((r.ended_at - committed).total_seconds(), 0.0))
    traffic = [(r.restored_at - r.failed_at).total_seconds() for r in failed if r.failed_at and r.restored_at]
    revert = [(r.reverted_at - r.failed_at).total_seconds() for r in failed if r.failed_at and r.reverted_at]
    return Figures(
        since=since, until=until, runs=len(runs), promotions=len(promoted), failures=len(failed),
        lead_time=Durations.of(lead), no_revision=no_revision, no_commit_time=no_commit_time,
        restore_traffic=Durations.of(traffic), restore_revert=Durations.of(revert),
    )


def short_duration(seconds: float) -> str:
    """`42s`, `3m20s`, `1.5s`, `2d4h`: short, and exact enough for a figure."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    days, rest = divmod(round(seconds), 86400)
    if days:
        hours = rest // 3600
        return f"{days}d{hours}h" if hours else f"{days}d"
    return format_duration(rest)


def _rate(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"
