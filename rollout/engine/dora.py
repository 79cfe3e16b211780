"""The DORA figures as Prometheus metrics, recorded when a run ends.

The planner appends a record to `status.history` when a run ends (`rollout.core.records`); the
operator observes these metrics when that status is written, for the records the stored status did
not hold yet. A restarted operator reads the records back with the status, so it never counts a
run twice; a run whose status was written just before a kill is not counted by the next process
(its counters start from zero anyway). `rollout dora` computes the same figures from the records
over any window, with medians and percentiles that histograms only approximate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import Counter, Histogram

from rollout.api.status import RunOutcome, RunRecord

# Seconds: a commit promoted within minutes (the demo) up to a week later.
LEAD_TIME_BUCKETS = (30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 604800)
# Seconds: a route set back in the same tick, up to a revert that waited a day for its merge.
RESTORE_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 14400, 86400)

DEPLOYMENTS = Counter("rollout_dora_deployments_total", "Runs promoted (deployment frequency).",
                      ["namespace", "name"])
CHANGE_FAILURES = Counter("rollout_dora_change_failures_total", "Runs that failed or were reverted "
                          "(change failure rate, over deployments plus failures).", ["namespace", "name"])
LEAD_TIME = Histogram("rollout_dora_lead_time_seconds", "From the commit of a promoted revision to its "
                      "promotion (lead time for changes).", ["namespace"], buckets=LEAD_TIME_BUCKETS)
TIME_TO_RESTORE = Histogram("rollout_dora_time_to_restore_seconds", "From a failure detected to traffic back "
                            "on the primary (stage=traffic) and to the revert applied from Git (stage=revert).",
                            ["namespace", "stage"], buckets=RESTORE_BUCKETS)


def new_records(stored: Iterable[Mapping[str, Any]] | None, history: Iterable[RunRecord]) -> list[RunRecord]:
    """The records of `history` that the stored status (`status.history` as JSON) does not hold."""
    known = {r.key for r in map(RunRecord.from_dict, stored or ()) if r is not None}
    return [r for r in history if r.key not in known]


def observe(namespace: str, name: str, record: RunRecord) -> None:
    """Count one ended run."""
    if record.outcome == RunOutcome.SUCCEEDED:
        DEPLOYMENTS.labels(namespace, name).inc()
        if record.committed_at is not None:
            LEAD_TIME.labels(namespace).observe(max((record.ended_at - record.committed_at).total_seconds(), 0.0))
        return
    CHANGE_FAILURES.labels(namespace, name).inc()
    if record.failed_at is None:
        return
    if record.restored_at is not None:
        TIME_TO_RESTORE.labels(namespace, "traffic").observe((record.restored_at - record.failed_at).total_seconds())
    if record.reverted_at is not None:
        TIME_TO_RESTORE.labels(namespace, "revert").observe((record.reverted_at - record.failed_at).total_seconds())


def written(namespace: str, name: str, stored: Mapping[str, Any], history: Iterable[RunRecord]) -> None:
    """A status holding `history` was written over `stored`: count the runs it ends."""
    for record in new_records(stored.get("history"), history):
        observe(namespace, name, record)
