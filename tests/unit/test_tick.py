"""Intent before effect: a tick killed at any action is finished by the next, never decided twice.

The world (tests/unit/world.py) keeps the status as the API would: what `record` wrote, or what the
last whole tick wrote. A kill stops a tick before the n-th action; the next tick starts from that
status, as a restarted operator does. Whatever the kill point, every Event, notification webhook
and revert of the undisturbed release happens exactly once (one key each), and none is lost.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace

import pytest

from rollout.api.spec import GitSpec, WebhookType
from rollout.api.status import Phase
from rollout.core import CallWebhooks, Emit, RevertInGit, SetWeight
from tests.unit.test_plan import canary, hook, started
from tests.unit.world import World, failing

HOOKS = (hook(WebhookType.POST_ROLLOUT), hook(WebhookType.EVENT))


def good() -> World:
    return started(World(canary(webhooks=HOOKS)))


def bad() -> World:
    world = started(World(canary(threshold=1, webhooks=HOOKS, git=GitSpec(source="app"))))
    world.checks = lambda w: failing()
    return world


def finish(world: World, *, bad_release: bool) -> None:
    if not bad_release:
        world.run_until(Phase.SUCCEEDED)
    else:
        world.run_until(Phase.REVERTING, Phase.REVERTED)
        world.release("v1", "r1")  # the GitSource applies the revert
        world.run_until(Phase.REVERTED)
    for _ in range(3):  # a restarted operator looks again, and finishes what it recorded
        world.tick()


def logical(world: World) -> Counter[tuple[str, str]]:
    """Each unrepeatable effect once per key: what a receiver that remembers keys saw."""
    seen: dict[str, tuple[str, str]] = {}
    for action, effect in world.effects:
        if isinstance(action, Emit):
            what = ("event", f"{action.reason}: {action.message}")
        elif isinstance(action, CallWebhooks):
            what = ("webhook", action.type.value)
        elif isinstance(action, RevertInGit):
            what = ("revert", action.candidate_revision or "")
        else:
            continue
        assert effect is not None, f"{action} was carried out without being recorded first"
        seen[effect.key] = what
    return Counter(seen.values())


def undisturbed(make: Callable[[], World], bad_release: bool) -> tuple[World, Counter[tuple[str, str]]]:
    world = make()
    start = len(world.actions)
    finish(world, bad_release=bad_release)
    return world, logical(world) - logical_before(world, start)


def logical_before(world: World, start: int) -> Counter[tuple[str, str]]:
    head = World(world.spec)
    head.effects = world.effects[:start]
    return logical(head)


@pytest.mark.parametrize("bad_release", [False, True], ids=["good", "bad-with-git"])
def test_a_kill_at_any_action_neither_repeats_nor_loses_a_side_effect(bad_release: bool) -> None:
    make = bad if bad_release else good
    reference, expected = undisturbed(make, bad_release)
    assert expected, "the release should have side effects to protect"
    total = len(reference.actions)
    for k in range(1, total):
        world = make()
        start = len(world.actions)
        before = logical(world)
        world.kill_at = start + k if start + k < total else None
        finish(world, bad_release=bad_release)
        got = logical(world) - before
        assert got == expected, f"killed before action {start + k}: {got} != {expected}"
        assert world.status.intent is None
        if bad_release:
            assert len({a.candidate_revision for a in world.reverts}) == 1
            assert world.weights == (100, 0)


def test_a_recorded_intent_holds_the_new_status_and_every_action_before_any_is_done() -> None:
    world = good()
    world.run_until(Phase.SUCCEEDED)
    assert world.recorded, "a release with Events records its intents"
    for status in world.recorded:
        assert status.intent is not None and status.intent.actions
        assert status.intents == status.intent.seq
    seqs = [s.intent.seq for s in world.recorded if s.intent]
    assert seqs == sorted(set(seqs)), "each intent has its own sequence number"


def test_an_intent_is_finished_under_its_own_keys_then_planning_goes_on() -> None:
    world = good()
    world.kill_at_recorded = True  # dies right after the next record, before any recorded effect
    world.tick()
    recorded = world.status.intent
    assert recorded is not None
    world.tick()
    keys = [e.key for a, e in world.effects if e is not None and e.key.startswith(f"release.{recorded.seq}.")]
    assert len(keys) == len(recorded.actions) == len(set(keys))
    assert world.status.intent is None
    assert any(isinstance(a, SetWeight) for a in world.actions)


def test_failed_and_back_on_the_promoted_spec_with_no_revert_recorded_looks_for_it_in_git() -> None:
    """An older operator (or a status lost otherwise) left Failed with no revert, and Flux has
    already applied the revert: the writer is asked, finds its commit, and the release ends Reverted."""
    world = bad()
    world.run_until(Phase.FAILED)
    world.status = replace(world.status, revert=None, intent=None)
    world.release("v1", "r1")  # the remote's revert is applied by Flux
    world.run_until(Phase.REVERTED)
    assert len(world.reverts) == 1
    assert world.status.revert is not None and world.status.revert.commit == "r1"
    assert ("event", "GitReverted: revert commit r1 pushed") in logical(world)


@pytest.mark.parametrize("bad_release", [False, True], ids=["good", "bad-with-git"])
def test_a_kill_between_the_early_traffic_actions_and_the_record_is_decided_again(bad_release: bool) -> None:
    """Only traffic goes ahead of a record: a target scaled down before a failure was recorded
    left the restarted planner waiting, Progressing, for a canary nobody scaled up, until
    progressDeadlineSeconds failed it for "not ready" (seen in the chaos suite)."""
    make = bad if bad_release else good
    _, expected = undisturbed(make, bad_release)
    world = make()
    before = logical(world)
    world.kill_before_recording = Phase.FAILED if bad_release else Phase.SUCCEEDED
    finish(world, bad_release=bad_release)
    assert logical(world) - before == expected
    assert not any("not ready within" in a.message for a in world.actions if isinstance(a, Emit))
