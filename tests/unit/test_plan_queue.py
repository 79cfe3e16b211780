"""The planner under the operator's cap on concurrent releases: when a new run waits in the queue,
what it says there, and what never waits (a running release, an initialization)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from rollout.api.spec import WebhookType
from rollout.api.status import Command, Phase, ReleaseStatus
from rollout.core import Emit, ScaleTarget, Slot
from rollout.core.queue import look_again, ordinal, queued_message
from tests.unit.test_plan import canary, started, with_hooks
from tests.unit.world import World, failing

FULL = Slot(granted=False, place=2, queued=5, running=10, limit=10)


def denied(world: World) -> Slot:
    return FULL


def events(world: World, reason: str) -> list[str]:
    return [a.message for a in world.actions if isinstance(a, Emit) and a.reason == reason]


def queued_world(**analysis: object) -> World:
    world = World(canary(**analysis), slot=denied)
    world.run_until(Phase.INITIALIZED)
    world.release("v2", "c2")
    world.tick()
    return world


def test_initialization_takes_no_slot() -> None:
    world = World(canary(), slot=denied)
    world.run_until(Phase.INITIALIZED)
    assert world.slot_asks == 0


def test_a_new_run_without_a_slot_waits_queued_with_its_place_and_does_not_scale_up() -> None:
    world = queued_world()
    st = world.status
    assert st.phase == Phase.WAITING and st.queued_at == world.log[-1].status.queued_at is not None
    promoted = st.condition("Promoted")
    assert promoted is not None and (promoted.status, promoted.reason) == ("Unknown", "Queued")
    assert promoted.message == ("waiting for a release slot: 2nd of 5 in the queue, 10 releases running, "
                                "--max-concurrent-releases 10")
    assert not world.target_up and not any(isinstance(a, ScaleTarget) and a.up for a in world.actions)
    assert st.candidate is not None and st.candidate.spec == "v2" and st.last_applied_spec == "v2"
    assert events(world, "Queued") == [f"podinfo {promoted.message}"]
    # It looks again within a second, whatever its interval.
    assert world.log[-1].requeue_after == timedelta(seconds=1)


def test_a_queued_release_keeps_its_place_says_the_new_one_and_sends_one_event() -> None:
    world = queued_world()
    joined = world.status.queued_at
    world.slot = lambda w: Slot(granted=False, place=1, queued=4, running=1, limit=1)
    for _ in range(3):
        world.tick()
    promoted = world.status.condition("Promoted")
    assert world.status.queued_at == joined and world.status.phase == Phase.WAITING
    assert promoted is not None and promoted.message == (
        "waiting for a release slot: 1st of 4 in the queue, 1 release running, --max-concurrent-releases 1")
    assert len(events(world, "Queued")) == 1


def test_a_slot_starts_the_run_then_and_it_ends_like_any_other() -> None:
    world = queued_world()
    world.tick()
    world.slot = lambda w: Slot()
    admitted_at = world.now
    world.tick()
    st = world.status
    assert st.phase == Phase.PROGRESSING and world.target_up and st.queued_at is None
    assert st.candidate is not None and st.candidate.started_at == admitted_at
    promoted = st.condition("Promoted")
    assert promoted is not None and promoted.reason == "Progressing"
    asks = world.slot_asks
    world.run_until(Phase.SUCCEEDED)
    assert world.slot_asks == asks  # a running release never asks again
    assert world.phases()[-5:] == ["Waiting", "Progressing", "Promoting", "Finalising", "Succeeded"]
    assert world.status.history[-1].started_at == admitted_at


def test_a_running_release_is_never_held_back_by_the_cap() -> None:
    world = started(World(canary()))
    world.tick()
    world.slot = denied
    asks = world.slot_asks
    world.release("v3", "c3")  # a new revision mid-run restarts it at once
    world.tick()
    assert world.status.phase == Phase.PROGRESSING and world.status.candidate is not None
    assert world.status.candidate.spec == "v3" and world.slot_asks == asks
    world.run_until(Phase.SUCCEEDED)
    assert world.slot_asks == asks


def test_a_queued_release_whose_change_is_reverted_leaves_the_queue_without_a_run() -> None:
    world = queued_world()
    world.release("v1", "c1")  # back to the promoted spec
    world.tick()
    st = world.status
    assert st.phase == Phase.INITIALIZED and st.queued_at is None and st.candidate is None
    assert not st.history and not world.target_up
    asks = world.slot_asks
    for _ in range(3):
        world.tick()
    assert world.slot_asks == asks


def test_a_new_revision_while_queued_keeps_the_place_and_is_no_restart() -> None:
    world = queued_world()
    joined = world.status.queued_at
    world.release("v3", "c3")
    world.tick()
    st = world.status
    assert st.phase == Phase.WAITING and st.queued_at == joined
    assert st.candidate is not None and st.candidate.spec == "v3"
    assert not events(world, "Restart")


def test_the_confirm_rollout_gate_is_asked_before_the_queue_and_not_while_queued() -> None:
    world = World(with_hooks(WebhookType.CONFIRM_ROLLOUT), hooks={WebhookType.CONFIRM_ROLLOUT: False}, slot=denied)
    world.run_until(Phase.INITIALIZED)
    world.release("v2", "c2")
    world.tick()
    promoted = world.status.condition("Promoted")
    assert world.status.phase == Phase.WAITING and world.status.queued_at is None and world.slot_asks == 0
    assert promoted is not None and promoted.reason == "Waiting"
    world.hooks[WebhookType.CONFIRM_ROLLOUT] = True
    world.tick()
    promoted = world.status.condition("Promoted")
    assert world.status.queued_at is not None and promoted is not None and promoted.reason == "Queued"
    gate_calls = world.hook_calls.count(WebhookType.CONFIRM_ROLLOUT)
    for _ in range(3):
        world.tick()
    assert world.hook_calls.count(WebhookType.CONFIRM_ROLLOUT) == gate_calls
    world.slot = lambda w: Slot()
    world.tick()
    assert world.status.phase == Phase.PROGRESSING


def test_abort_fails_a_queued_release_and_takes_it_out_of_the_queue() -> None:
    world = queued_world()
    world.status = replace(world.status, command=Command.ABORT)
    world.tick()
    assert world.status.phase == Phase.FAILED and world.status.queued_at is None


def test_retry_of_a_failed_release_waits_for_a_slot_too() -> None:
    world = started(World(canary(threshold=1)))
    world.tick()
    world.checks = lambda w: failing()
    world.run_until(Phase.FAILED)
    world.slot = denied
    world.status = replace(world.status, command=Command.RETRY)
    world.tick()
    assert world.status.phase == Phase.WAITING and world.status.queued_at is not None


def test_a_restarted_operator_finds_the_place_in_the_status() -> None:
    world = queued_world()
    joined = world.status.queued_at
    world.status = ReleaseStatus.from_dict(world.status.to_dict())  # through the API server and back
    assert world.status.queued_at == joined
    world.tick()
    assert world.status.queued_at == joined and len(events(world, "Queued")) == 1
    assert world.status.to_dict()["queuedAt"] is not None
    world.slot = lambda w: Slot()
    world.tick()
    # Out of the queue, the field is written as null, which a merge patch removes.
    assert world.status.to_dict()["queuedAt"] is None


def test_a_suspended_queued_release_stays_queued_and_asks_nothing() -> None:
    world = queued_world()
    asks = world.slot_asks
    world.spec = replace(world.spec, suspend=True)
    for _ in range(3):
        world.tick()
    assert world.status.phase == Phase.WAITING and world.slot_asks == asks


def test_ordinals() -> None:
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]
    assert queued_message(Slot(False, 1, 1, 1, 1)) == (
        "waiting for a release slot: 1st of 1 in the queue, 1 release running, --max-concurrent-releases 1")


def test_the_first_in_the_queue_look_every_second_the_far_ones_less_often() -> None:
    minute = timedelta(minutes=1)
    looks = [look_again(Slot(False, place, 500, 10, 10), minute) for place in (1, 10, 11, 25, 295, 500)]
    assert looks == [timedelta(seconds=s) for s in (1, 1, 2, 3, 30, 30)]
    assert look_again(Slot(False, 400, 500, 10, 10), timedelta(seconds=5)) == timedelta(seconds=5)
    world = World(canary(interval=60.0), slot=lambda w: Slot(False, 7, 9, 3, 3))
    world.run_until(Phase.INITIALIZED)
    world.release("v2", "c2")
    assert world.tick().requeue_after == timedelta(seconds=3)
