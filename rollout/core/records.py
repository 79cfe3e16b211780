"""The release record: a run that ends is appended to `status.history`, once.

The DORA figures (`rollout.core.dora`) are computed from these records, so they live in the
release's status, where they survive restarts, and not in the operator's memory. A run is keyed by
its candidate spec and start (`RunRecord.key`): the planner may decide the same end twice (a tick
recorded before a kill and decided again after it, or planned a second time with the revert
writer's answer), and the record is still written once.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from rollout.api.status import HISTORY_LIMIT, ReleaseStatus, RunOutcome, RunRecord


def recorded(status: ReleaseStatus) -> bool:
    """Whether the run of the status's candidate is in its history already."""
    c = status.candidate
    return c is not None and any(r.key == (c.spec, c.started_at) for r in status.history)


def end_run(status: ReleaseStatus, outcome: RunOutcome, now: datetime, *, reverted: bool = False) -> ReleaseStatus:
    """The status with its candidate's run recorded as ended now (unchanged when it has no run, or
    the run is recorded already). `reverted`: the revert in Git was applied now."""
    c = status.candidate
    if c is None or recorded(status):
        return status
    revert = status.revert
    record = RunRecord(
        outcome=outcome,
        spec=c.spec,
        started_at=c.started_at,
        ended_at=now,
        revision=c.revision,
        committed_at=c.committed_at,
        failed_at=c.failed_at,
        restored_at=c.restored_at,
        reverted_at=now if reverted else None,
        revert_commit=revert.commit if revert is not None and revert.commit else None,
    )
    return replace(status, history=(*status.history, record)[-HISTORY_LIMIT:])


def failure_detected(status: ReleaseStatus, now: datetime, *, restored: bool) -> ReleaseStatus:
    """The candidate's failure detected now; `restored`: traffic is back on the primary now too
    (the rollback's route was written in this very tick, before the status)."""
    c = status.candidate
    if c is None or c.failed_at is not None:
        return status
    return replace(status, candidate=replace(c, failed_at=now, restored_at=now if restored else c.restored_at))


def traffic_restored(status: ReleaseStatus, now: datetime) -> ReleaseStatus:
    """The failed candidate's traffic seen back on the primary now (when not known before)."""
    c = status.candidate
    if c is None or c.failed_at is None or c.restored_at is not None:
        return status
    return replace(status, candidate=replace(c, restored_at=now))
