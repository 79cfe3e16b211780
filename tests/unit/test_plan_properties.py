"""Properties of the planner over random releases: restart safety and weight bounds."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from rollout.api.spec import Analysis, CanarySpec, GitSpec, Webhook, WebhookType
from rollout.api.status import Phase, ReleaseStatus, RevertState
from rollout.core import RevertOutcome, SetWeight, plan
from tests.unit.test_plan import METRICS, SERVICE, TARGET, bluegreen
from tests.unit.world import World, failing, no_data, passing

OUTCOMES = {"pass": passing(), "fail": failing(), "none": no_data()}
HOOK_KINDS = [WebhookType.CONFIRM_ROLLOUT, WebhookType.CONFIRM_TRAFFIC_INCREASE, WebhookType.CONFIRM_PROMOTION,
              WebhookType.PRE_ROLLOUT, WebhookType.ROLLBACK]


@st.composite
def canary_specs(draw: st.DrawFn) -> CanarySpec:
    max_weight = draw(st.integers(1, 100))
    mode = draw(st.sampled_from(["step", "steps", "iterations"]))
    fields: dict[str, object] = {"interval": draw(st.sampled_from([10.0, 60.0])), "threshold": draw(st.integers(1, 4))}
    if mode == "step":
        fields.update(max_weight=max_weight, step_weight=draw(st.integers(1, max_weight)))
    elif mode == "steps":
        steps = sorted(draw(st.sets(st.integers(1, max_weight), min_size=1, max_size=5)))
        fields.update(max_weight=steps[-1], step_weights=tuple(steps))
    else:
        fields.update(iterations=draw(st.integers(1, 4)))
    hooks = draw(st.lists(st.sampled_from(HOOK_KINDS), unique=True, max_size=3))
    webhooks = tuple(Webhook(k.value, "http://h.test/", k) for k in hooks)
    analysis = Analysis(metrics=METRICS, webhooks=webhooks, **fields)  # type: ignore[arg-type]
    git = GitSpec(source="app") if draw(st.booleans()) else None
    return CanarySpec(TARGET, SERVICE, analysis, git=git)


events = st.lists(
    st.tuples(
        st.sampled_from(list(OUTCOMES)),
        st.booleans(),  # target ready
        st.sampled_from([None, None, None, "v2", "v3", "v1"]),  # a release arrives
        st.dictionaries(st.sampled_from(HOOK_KINDS), st.booleans()),
        st.sampled_from([None, None, None, "abort", "promote", "retry"]),
        st.sampled_from([5, 30, 61]),
    ),
    max_size=40,
)


def check_restart_safe(world: World) -> None:
    """Planning from the status as stored (JSON and back) gives the same decision."""
    stored = ReleaseStatus.from_dict(json.loads(json.dumps(world.status.to_dict())))
    assert stored == world.status
    obs = replace(world.observe(), checks=passing(), hooks=dict.fromkeys(HOOK_KINDS, True))
    assert plan(world.spec, stored, obs, world.now) == plan(world.spec, world.status, obs, world.now)


@settings(max_examples=150, deadline=None)
@given(canary_specs(), events)
def test_random_releases_keep_weights_in_bounds_and_survive_restarts(spec: CanarySpec, steps: list[tuple]) -> None:  # type: ignore[type-arg]
    world = World(spec)
    world.revert_outcome = lambda a: RevertOutcome(RevertState.PUSHED, commit="r1", reverts=("c",))
    for outcome, ready, release, hooks, command, seconds in steps:
        world.checks = lambda w, o=outcome: OUTCOMES[o]  # type: ignore[misc]
        world.target_ready = ready
        world.hooks = dict(hooks)
        if release:
            world.release(release, f"c-{release}")
        if command:
            world.status = replace(world.status, command=command)
        check_restart_safe(world)
        world.tick(advance=timedelta(seconds=seconds))
        assert world.status.phase is not None
    weights = [a.canary for a in world.actions if isinstance(a, SetWeight)]
    assert all(0 <= w <= spec.analysis.max_weight for w in weights)
    assert all(a.primary + a.canary == 100 for a in world.actions if isinstance(a, SetWeight))
    # Traffic is never left on a failed canary.
    if world.status.phase in (Phase.FAILED, Phase.REVERTING, Phase.REVERTED):
        assert world.weights == (100, 0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(list(OUTCOMES)), st.booleans(), st.sampled_from([5, 61])), max_size=30))
def test_bluegreen_never_gives_live_traffic_before_the_switch(steps: list[tuple[str, bool, int]]) -> None:
    world = World(bluegreen())
    world.run_until(Phase.INITIALIZED)
    world.release("v2", "c2")
    for outcome, ready, seconds in steps:
        world.checks = lambda w, o=outcome: OUTCOMES[o]  # type: ignore[misc]
        world.target_ready = ready
        check_restart_safe(world)
        world.tick(advance=timedelta(seconds=seconds))
        if world.status.phase in (Phase.PROGRESSING, Phase.WAITING_PROMOTION, Phase.FAILED):
            assert world.weights == (100, 0)
