"""Release records: the planner appends one to `status.history` when a run ends, once, whatever kills
the operator on the way; the records round-trip through the stored status and stay bounded."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from rollout.api.spec import GitSpec, RevertMode
from rollout.api.status import (
    HISTORY_LIMIT,
    Candidate,
    Phase,
    ReleaseStatus,
    RevertState,
    RunOutcome,
    RunRecord,
)
from rollout.core import RevertInGit, RevertOutcome, RouteProblem
from rollout.core.records import end_run
from rollout.workloads import workload_of
from tests.unit.test_plan import bluegreen, canary
from tests.unit.world import T0, World, failing

COMMITTED = T0 - timedelta(minutes=7)


def start(world: World) -> World:
    """Initialize, then v2 (revision c2, committed 7 minutes before T0) arrives and a run starts."""
    world.run_until(Phase.INITIALIZED)
    world.cluster.release("v2", "c2", committed_at=COMMITTED)
    world.tick()
    assert world.status.phase == Phase.PROGRESSING
    return world


def good() -> World:
    return start(World(canary()))


def bad(**git: object) -> World:
    world = start(World(canary(threshold=1, git=GitSpec(source="app", **git))))  # type: ignore[arg-type]
    world.checks = lambda w: failing()
    return world


def reverted(world: World) -> World:
    world.run_until(Phase.REVERTING)
    world.release("v1", "r1")  # the GitSource applies the revert
    world.run_until(Phase.REVERTED)
    return world


def test_a_promoted_run_is_recorded_once_with_its_revision_commit_time_start_and_end() -> None:
    world = good()
    started = world.status.candidate
    assert started is not None and started.committed_at == COMMITTED and started.started_at is not None
    world.run_until(Phase.SUCCEEDED)
    ended = world.log[-1]
    for _ in range(5):
        world.tick()
    assert world.status.history == (
        RunRecord(RunOutcome.SUCCEEDED, "v2", started.started_at, ended.status.history[0].ended_at,
                  revision="c2", committed_at=COMMITTED),
    )
    record = world.status.history[0]
    assert started.started_at < record.ended_at <= world.now
    assert world.status.last_transition_time == record.ended_at  # ended at the tick that said Succeeded


def test_a_reverted_run_records_detection_traffic_back_and_revert_applied_in_order() -> None:
    world = reverted(bad())
    for _ in range(3):
        world.tick()
    (record,) = world.status.history
    assert record.outcome == RunOutcome.REVERTED and record.revision == "c2" and record.revert_commit == "r1"
    assert record.failed_at is not None and record.restored_at is not None and record.reverted_at is not None
    assert record.started_at is not None and record.started_at < record.failed_at
    # The route back is written in the tick that detects the failure, before its status.
    assert record.restored_at == record.failed_at < record.reverted_at == record.ended_at
    failed_tick = next(d for d in world.log if d.status.phase == Phase.FAILED)
    assert record.failed_at == failed_tick.status.last_transition_time


def test_a_failed_run_without_a_revert_in_git_ends_at_the_rollback() -> None:
    world = bad(revert=RevertMode.OFF)
    world.run_until(Phase.FAILED)
    (record,) = world.status.history
    assert record.outcome == RunOutcome.FAILED and record.ended_at == record.failed_at == record.restored_at
    assert record.reverted_at is None and record.revert_commit is None
    for _ in range(3):
        world.tick()
    assert len(world.status.history) == 1


def test_a_revert_the_writer_skips_ends_the_run_failed() -> None:
    world = bad()
    world.revert_outcome = lambda a: RevertOutcome(RevertState.SKIPPED, message="nothing to revert")
    world.run_until(Phase.FAILED)
    for _ in range(3):
        world.tick()
    assert world.status.revert is not None and world.status.revert.state == RevertState.SKIPPED
    assert world.status.phase == Phase.FAILED and len(world.reverts) == 1
    (record,) = world.status.history
    assert record.outcome == RunOutcome.FAILED and record.reverted_at is None and record.failed_at is not None


def test_a_failed_run_whose_revert_never_lands_is_recorded_when_a_new_run_replaces_it() -> None:
    world = bad()
    world.revert_outcome = lambda a: RevertOutcome(RevertState.FAILED, message="remote unreachable")
    world.run_until(Phase.REVERTING)
    assert world.status.history == ()
    world.checks = lambda w: ()
    world.cluster.release("v3", "c3", committed_at=T0)  # a fix is pushed by hand
    world.tick()
    assert world.status.phase == Phase.PROGRESSING and world.status.candidate is not None
    assert world.status.candidate.revision == "c3"
    (record,) = world.status.history
    assert record.outcome == RunOutcome.FAILED and record.revision == "c2" and record.reverted_at is None


def test_a_retried_run_is_a_second_record() -> None:
    world = bad(revert=RevertMode.OFF)
    world.run_until(Phase.FAILED)
    world.status = replace(world.status, command="retry")  # type: ignore[arg-type]
    world.tick()
    world.run_until(Phase.FAILED)
    assert [r.outcome for r in world.status.history] == [RunOutcome.FAILED, RunOutcome.FAILED]
    assert len({r.key for r in world.status.history}) == 2


def test_traffic_back_is_recorded_when_seen_after_a_rollback_that_could_not_route() -> None:
    world = start(World(canary(git=GitSpec(source="app"))))
    world.tick()
    # The route is lost past the deadline: the rollback's route back is best effort, not known to land.
    world.now += timedelta(seconds=canary().progress_deadline_seconds + 1)
    problem = RouteProblem("no route", since=T0)
    observe = world.cluster.observe
    world.observe = lambda: replace(observe(), routing=problem)  # type: ignore[method-assign]
    world.run_until(Phase.FAILED)
    candidate = world.status.candidate
    assert candidate is not None and candidate.failed_at is not None and candidate.restored_at is None
    world.observe = observe  # type: ignore[method-assign]
    world.run_until(Phase.REVERTING)
    candidate = world.status.candidate
    assert candidate is not None and candidate.restored_at is not None and candidate.restored_at > candidate.failed_at


@pytest.mark.parametrize("outcome", ["good", "bad"])
def test_a_kill_at_any_action_records_the_run_exactly_once(outcome: str) -> None:
    def make() -> World:
        return good() if outcome == "good" else bad()

    def finish(world: World) -> World:
        if outcome == "good":
            world.run_until(Phase.SUCCEEDED)
        else:
            reverted(world)
        for _ in range(3):
            world.tick()
        return world

    reference = finish(make())
    total = len(reference.actions)
    assert [r.outcome for r in reference.status.history] == [RunOutcome.SUCCEEDED if outcome == "good"
                                                              else RunOutcome.REVERTED]
    for k in range(1, total):
        world = make()
        world.kill_at = len(world.actions) + k
        finish(world)
        (record,) = world.status.history
        assert record.outcome == reference.status.history[0].outcome and record.revision == "c2", k


def test_ending_the_same_run_twice_records_it_once() -> None:
    status = ReleaseStatus(candidate=Candidate("v2", "c2", T0))
    once = end_run(status, RunOutcome.SUCCEEDED, T0 + timedelta(minutes=1))
    twice = end_run(once, RunOutcome.FAILED, T0 + timedelta(minutes=2))
    assert twice == once and len(once.history) == 1
    assert end_run(ReleaseStatus(), RunOutcome.SUCCEEDED, T0).history == ()  # no run, no record


def test_the_history_keeps_the_newest_runs_only() -> None:
    status = ReleaseStatus()
    for i in range(HISTORY_LIMIT + 7):
        status = replace(status, candidate=Candidate(f"v{i}", f"c{i}", T0 + timedelta(hours=i)))
        status = end_run(status, RunOutcome.SUCCEEDED, T0 + timedelta(hours=i, minutes=5))
    assert len(status.history) == HISTORY_LIMIT
    assert status.history[0].spec == "v7" and status.history[-1].spec == f"v{HISTORY_LIMIT + 6}"


def test_records_round_trip_through_the_stored_status_and_unreadable_ones_are_dropped() -> None:
    world = reverted(bad())
    stored = world.status.to_dict()
    assert stored["history"][0]["outcome"] == "Reverted" and "revertedAt" in stored["history"][0]
    assert "committedAt" in stored["candidate"] and "failedAt" in stored["candidate"]
    assert ReleaseStatus.from_dict(stored) == world.status
    stored["history"] = [*stored["history"], {"outcome": "Exploded", "endedAt": "2026-01-01T00:00:00Z"},
                         {"outcome": "Succeeded"}, "junk"]
    assert ReleaseStatus.from_dict(stored).history == world.status.history


def test_a_release_that_never_ran_writes_no_history_field() -> None:
    assert "history" not in ReleaseStatus(phase=Phase.INITIALIZED).to_dict()


def test_the_revert_action_is_unchanged_by_recording() -> None:
    world = bad()
    world.run_until(Phase.REVERTING)
    assert world.reverts == [RevertInGit("c2", "c1", world.reverts[0].reason)]


@pytest.mark.parametrize(("annotation", "expected"), [
    ("2026-01-01T00:00:00Z", T0), ("2026-01-01T01:00:00+01:00", T0), ("not a time", None), (None, None),
])
def test_the_commit_time_a_run_records_is_the_targets_annotation(annotation: str | None, expected: object) -> None:
    annotations = {"rollout.gitops.dev/revision": "c2"}
    if annotation is not None:
        annotations["rollout.gitops.dev/committed-at"] = annotation
    target = {"metadata": {"name": "podinfo", "annotations": annotations},
              "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "x:1"}]}}}}
    workload = workload_of(target)
    assert workload.revision == "c2" and workload.committed_at == expected


def test_bluegreen_runs_are_recorded_as_canary_runs_are() -> None:
    world = start(World(bluegreen()))
    world.run_until(Phase.SUCCEEDED)
    world.cluster.release("v3", "c3", committed_at=T0)
    world.checks = lambda w: failing()
    world.run_until(Phase.PROGRESSING)
    world.run_until(Phase.FAILED)
    assert [(r.outcome, r.revision) for r in world.status.history] == [(RunOutcome.SUCCEEDED, "c2"),
                                                                         (RunOutcome.FAILED, "c3")]
    promoted = world.status.history[0]
    assert promoted.started_at is not None and promoted.committed_at == COMMITTED
    assert promoted.ended_at > promoted.started_at
