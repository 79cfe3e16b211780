"""The planner's hold on a rolled-back version, and a revert that waits in a pull request.

Whole releases on the simulated world (`tests.unit.world`): the failed version coming back is held
with a `Held` condition until `rollout retry` or another version; with `git.push: pullRequest`
the release stays Failed with `RevertPending` while the request is open, and ends Reverted when
the merged revert is applied.
"""

from __future__ import annotations

from dataclasses import replace

from rollout.api.spec import GitSpec, PushMode
from rollout.api.status import Phase, PullRequest, PullRequestState, ReleaseStatus, RevertState, RevertStatus
from rollout.core import RevertInGit, RevertOutcome, ScaleTarget
from tests.unit.test_plan import canary, failed_without_revert, started
from tests.unit.world import World, failing, passing


def reverted(world: World) -> World:
    """v2 (commit c2) fails, its revert r1 is pushed and applied: Reverted on v1."""
    world.tick()
    world.checks = lambda w: failing()
    world.run_until(Phase.REVERTING)
    world.release("v1", "r1")
    world.run_until(Phase.REVERTED)
    world.checks = lambda w: passing()
    return world


def held(status: ReleaseStatus) -> str | None:
    c = status.condition("Held")
    return c.message if c is not None and c.status == "True" else None


def test_the_rolled_back_version_coming_back_is_held_until_retry() -> None:
    world = reverted(started(World(canary(threshold=1, git=GitSpec(source="app")))))
    assert world.status.hold is not None and world.status.hold.spec == "v2" and world.status.hold.revision == "c2"
    ups = world.actions.count(ScaleTarget(up=True))
    world.release("v2", "c7")  # an image updater commits the failed image again
    for _ in range(4):
        world.tick()
    assert world.status.phase == Phase.REVERTED and world.weights == (100, 0)
    assert world.actions.count(ScaleTarget(up=True)) == ups  # no run started
    message = held(world.status)
    assert message is not None and "commit c7" in message and "rollout retry podinfo" in message
    events = [d for d in world.log for a in d.actions if getattr(a, "reason", "") == "Held"]
    assert len(events) == 1  # said once, not every tick

    world.status = replace(world.status, command="retry")
    world.tick()
    assert world.status.phase == Phase.PROGRESSING and world.status.hold is None and world.target_up
    assert held(world.status) is None and world.status.condition("Held") is not None  # False: released


def test_another_version_releases_the_hold_and_its_promotion_forgets_it() -> None:
    world = reverted(started(World(canary(threshold=1, git=GitSpec(source="app")))))
    world.release("v2", "c7")
    world.tick()
    assert held(world.status) is not None
    world.release("v3", "c8")
    world.run_until(Phase.SUCCEEDED)
    assert world.primary_hash == "v3" and world.status.hold is None and held(world.status) is None


def test_without_git_the_failed_version_is_held_when_it_comes_back() -> None:
    world = failed_without_revert()
    for _ in range(2):
        world.tick()
    assert held(world.status) is None  # still the failed run's own target: not a comeback
    world.release("v1", "c3")  # a person (or Flux) reverts by hand
    world.tick()
    world.release("v2", "c4")  # ... and the image automation brings v2 back
    for _ in range(3):
        world.tick()
    assert world.status.phase == Phase.FAILED and held(world.status) is not None and not world.target_up


def pull_request(state: PullRequestState) -> PullRequest:
    return PullRequest("https://github.com/acme/deploy/pull/7", 7, state)


def test_a_revert_pull_request_keeps_failed_with_revert_pending_until_merged_and_applied() -> None:
    world = started(World(canary(threshold=1, git=GitSpec(source="app", push=PushMode.PULL_REQUEST))))
    world.tick()
    state = [PullRequestState.OPEN]

    def host(action: RevertInGit) -> RevertOutcome:
        return RevertOutcome(RevertState.PUSHED, commit="r1", reverts=("c2",), branch="rollout/revert-x",
                             pull_request=pull_request(state[0]))

    world.revert_outcome = host
    world.checks = lambda w: failing()
    world.run_until(Phase.FAILED)  # rolled back; the next look pushes the branch and opens the request
    world.tick()
    for _ in range(3):
        world.tick()
    assert world.status.phase == Phase.FAILED and world.weights == (100, 0)
    assert world.status.revert is not None and world.status.revert.pull_request == pull_request(PullRequestState.OPEN)
    pending = world.status.condition("RevertPending")
    assert pending is not None and pending.status == "True" and pending.reason == "PullRequestOpen"
    assert "pull/7" in pending.message
    asked = len(world.reverts)
    assert asked >= 3  # the host is asked how the request stands, every interval

    state[0] = PullRequestState.MERGED
    world.tick()
    assert world.status.revert.pull_request is not None
    assert world.status.revert.pull_request.state == PullRequestState.MERGED
    world.release("v1", "m1")  # the GitSource applies the merged revert
    world.run_until(Phase.REVERTED)
    assert world.status.revert is not None and world.status.revert.state == RevertState.APPLIED
    pending = world.status.condition("RevertPending")
    assert pending is not None and pending.status == "False"
    assert world.status.history[-1].outcome.value == "Reverted"


def test_a_closed_revert_pull_request_is_reported_and_not_reopened() -> None:
    world = started(World(canary(threshold=1, git=GitSpec(source="app", push=PushMode.PULL_REQUEST))))
    world.tick()
    state = [PullRequestState.OPEN]
    world.revert_outcome = lambda a: RevertOutcome(RevertState.PUSHED, commit="r1", reverts=("c2",),
                                                   branch="rollout/revert-x", pull_request=pull_request(state[0]))
    world.checks = lambda w: failing()
    world.run_until(Phase.FAILED)  # rolled back; the next look pushes the branch and opens the request
    world.tick()
    state[0] = PullRequestState.CLOSED
    for _ in range(2):
        world.tick()
    pending = world.status.condition("RevertPending")
    assert world.status.phase == Phase.FAILED
    assert pending is not None and pending.status == "False" and pending.reason == "PullRequestClosed"


def test_the_hold_and_the_pull_request_round_trip_through_the_stored_status() -> None:
    world = reverted(started(World(canary(threshold=1, git=GitSpec(source="app")))))
    status = replace(world.status, revert=replace(world.status.revert or RevertStatus(),
                                                  pull_request=pull_request(PullRequestState.MERGED)))
    stored = status.to_dict()
    assert stored["hold"]["spec"] == "v2" and stored["revert"]["pullRequest"]["state"] == "Merged"
    assert ReleaseStatus.from_dict(stored) == status
    released = replace(status, hold=None).to_dict()
    assert released["hold"] is None  # written as null, so the merge patch removes it
