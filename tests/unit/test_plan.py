"""The planner as tables of (status, observations) -> (phase, weight, actions), and whole releases."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from rollout.api.spec import (
    Analysis,
    BlueGreenSpec,
    CanarySpec,
    GitSpec,
    Judge,
    Metric,
    ObjectRef,
    RevertMode,
    ServiceSpec,
    ThresholdRange,
    Webhook,
    WebhookType,
)
from rollout.api.status import Candidate, Phase, ReleaseStatus, RevertState
from rollout.core import (
    AskGate,
    CallWebhooks,
    CheckResult,
    Emit,
    InitializePrimary,
    Observations,
    PromotePrimary,
    RevertInGit,
    RevertOutcome,
    RunChecks,
    ScaleTarget,
    SetWeight,
    Slot,
    Verdict,
    Workload,
    plan,
)
from tests.unit.world import T0, World, failing, no_data, passing

TARGET = ObjectRef("apps/v1", "Deployment", "podinfo")
SERVICE = ServiceSpec(port=9898)
METRICS = (Metric("request-success-rate", threshold_range=ThresholdRange(min=99)),)


def canary(**analysis: object) -> CanarySpec:
    fields: dict[str, object] = {"interval": 60.0, "threshold": 5, "max_weight": 50, "step_weight": 10}
    fields.update(analysis)
    top = ("git", "skip_analysis", "suspend", "progress_deadline_seconds")
    spec_fields = {k: fields.pop(k) for k in top if k in fields}
    return CanarySpec(TARGET, SERVICE, Analysis(metrics=METRICS, **fields), **spec_fields)  # type: ignore[arg-type]


def hook(kind: WebhookType) -> Webhook:
    return Webhook(name=kind.value, url="http://hooks.test/", type=kind)


def weights(world: World) -> list[int]:
    return [a.canary for a in world.actions if isinstance(a, SetWeight)]


def started(world: World) -> World:
    """Initialize, then commit v2 and tick once: the run is Progressing at weight 0."""
    world.run_until(Phase.INITIALIZED)
    world.release("v2", "c2")
    world.tick()
    assert world.status.phase == Phase.PROGRESSING
    return world


# -- whole releases ----------------------------------------------------------------------------------


def test_flagger_phase_sequence_with_step_weight() -> None:
    world = World(canary())
    world.run_until(Phase.INITIALIZED)
    assert world.phases() == ["Initializing", "Initialized"]
    assert world.status.last_promoted_spec == "v1"
    assert not world.target_up
    world.release("v2", "c2")
    world.run_until(Phase.SUCCEEDED)
    assert world.phases() == ["Initializing", "Initialized", "Progressing", "Promoting", "Finalising", "Succeeded"]
    assert weights(world) == [0, 10, 20, 30, 40, 50, 0]
    assert world.primary_hash == "v2" and world.status.last_promoted_spec == "v2"
    assert world.weights == (100, 0) and not world.target_up
    assert WebhookType.POST_ROLLOUT in world.hook_calls


def test_step_weights_are_walked_in_order() -> None:
    world = started(World(canary(step_weight=None, step_weights=(1, 5, 25, 80))))
    world.run_until(Phase.SUCCEEDED)
    assert weights(world)[1:] == [1, 5, 25, 80, 0]


def test_step_weight_promotion_returns_traffic_gradually() -> None:
    world = started(World(canary(step_weight_promotion=20)))
    world.run_until(Phase.SUCCEEDED)
    assert weights(world)[1:] == [10, 20, 30, 40, 50, 30, 10, 0]
    promoted_at = next(i for i, a in enumerate(world.actions) if isinstance(a, PromotePrimary))
    later = [a.canary for a in world.actions[promoted_at:] if isinstance(a, SetWeight)]
    assert later == [30, 10, 0]


def test_each_step_waits_a_full_interval() -> None:
    world = started(World(canary()))
    # Ticks every 20s: a step only every third tick.
    for _ in range(9):
        world.tick(advance=timedelta(seconds=20))
    assert weights(world)[1:] == [10, 20, 30]


def test_failed_checks_up_to_threshold_then_rollback() -> None:
    world = started(World(canary(threshold=3)))
    world.tick()  # weight 10
    world.checks = lambda w: failing()
    world.run_until(Phase.FAILED)
    assert world.status.failed_checks == 3
    assert world.status.canary_weight == 0 and world.weights == (100, 0)
    assert not world.target_up
    assert world.primary_hash == "v1"
    promoted = world.status.condition("Promoted")
    assert promoted is not None and promoted.status == "False" and "90% < 99%" in promoted.message
    # No git: it stays Failed and writes nothing.
    for _ in range(3):
        world.tick()
    assert world.status.phase == Phase.FAILED and not world.reverts


def test_failure_with_git_reverts_and_ends_reverted_without_a_new_run() -> None:
    world = started(World(canary(threshold=2, git=GitSpec(source="app"))))
    world.tick()
    world.checks = lambda w: failing()
    world.run_until(Phase.FAILED)
    world.run_until(Phase.REVERTING)
    assert len(world.reverts) == 1
    revert = world.reverts[0]
    assert revert.candidate_revision == "c2" and revert.promoted_revision == "c1"
    assert "90% < 99%" in revert.reason
    assert world.status.revert is not None and world.status.revert.state == RevertState.PUSHED
    assert world.status.revert.commit == "r1"
    ups = sum(1 for a in world.actions if a == ScaleTarget(up=True))
    # The GitSource applies the revert: the target is the promoted spec again.
    world.release("v1", "r1")
    world.run_until(Phase.REVERTED)
    for _ in range(3):
        world.tick()
    assert world.status.phase == Phase.REVERTED
    assert world.status.revert is not None and world.status.revert.state == RevertState.APPLIED
    assert sum(1 for a in world.actions if a == ScaleTarget(up=True)) == ups
    assert len(world.reverts) == 1
    assert world.phases()[-4:] == ["Progressing", "Failed", "Reverting", "Reverted"]


def test_after_a_rollback_the_revert_is_written_at_the_next_look_a_second_later() -> None:
    world = started(World(canary(threshold=1, git=GitSpec(source="app"))))
    world.tick()
    world.checks = lambda w: failing()
    decisions = world.run_until(Phase.FAILED)
    assert decisions[-1].requeue_after == timedelta(seconds=1)  # not the 5s of other waits
    reverting = world.run_until(Phase.REVERTING)
    assert len(reverting) == 1 and len(world.reverts) == 1  # that next look writes it
    # The GitSource syncs as soon as the revert is pushed: the next look for it is a second later too.
    assert reverting[-1].requeue_after == timedelta(seconds=1)


def test_revert_retries_while_the_remote_refuses() -> None:
    world = started(World(canary(threshold=1, git=GitSpec(url="https://git.test/app.git"))))
    world.tick()
    world.checks = lambda w: failing()
    attempts: list[int] = []

    def flaky(a: RevertInGit) -> RevertOutcome:
        attempts.append(1)
        if len(attempts) < 3:
            return RevertOutcome(RevertState.FAILED, message="remote unreachable")
        return RevertOutcome(RevertState.PUSHED, commit="r9", reverts=("c2",))

    world.revert_outcome = flaky
    world.run_until(Phase.REVERTING)
    failed = world.status.condition("GitRevertFailed")
    assert failed is not None and failed.status == "True" and "unreachable" in failed.message
    for _ in range(4):
        world.tick()
    assert len(attempts) == 3
    assert world.status.revert is not None and world.status.revert.commit == "r9"
    assert world.weights == (100, 0)


def failed_without_revert() -> World:
    """A release whose Git revert is off, rolled back after one failed check."""
    world = started(World(canary(threshold=1, git=GitSpec(source="app", revert=RevertMode.OFF))))
    world.tick()
    world.checks = lambda w: failing()
    world.run_until(Phase.FAILED)
    return world


def test_revert_off_keeps_failed() -> None:
    world = failed_without_revert()
    for _ in range(3):
        world.tick()
    assert world.status.phase == Phase.FAILED and not world.reverts


def test_a_spec_equal_to_last_promoted_never_starts_a_run() -> None:
    world = World(canary())
    world.run_until(Phase.INITIALIZED)
    world.release("v1", "c9")  # e.g. a revert commit that restores the promoted spec
    for _ in range(5):
        world.tick()
    assert world.status.phase == Phase.INITIALIZED
    assert ScaleTarget(up=True) not in world.actions


def test_a_failed_candidate_does_not_run_again_until_it_changes() -> None:
    world = started(World(canary(threshold=1)))
    world.tick()
    world.checks = lambda w: failing()
    world.run_until(Phase.FAILED)
    world.checks = lambda w: passing()
    for _ in range(4):
        world.tick()
    assert world.status.phase == Phase.FAILED
    world.release("v3", "c3")
    world.run_until(Phase.SUCCEEDED)
    assert world.primary_hash == "v3"


def test_a_new_target_change_during_a_run_restarts_it() -> None:
    world = started(World(canary()))
    for _ in range(3):
        world.tick()
    assert world.status.canary_weight == 30
    world.release("v3", "c3")
    decision = world.tick()
    assert decision.status.phase == Phase.PROGRESSING
    assert decision.status.canary_weight == 0 and world.weights == (100, 0)
    assert decision.status.candidate is not None and decision.status.candidate.spec == "v3"
    assert any(isinstance(a, Emit) and a.reason == "Restart" for a in decision.actions)
    world.run_until(Phase.SUCCEEDED)
    assert world.primary_hash == "v3"


def test_target_back_to_promoted_during_a_run_cancels_it() -> None:
    world = started(World(canary()))
    world.tick()
    world.release("v1", "c1")
    world.tick()
    assert world.status.phase == Phase.INITIALIZED and world.weights == (100, 0) and not world.target_up


def test_skip_analysis_promotes_without_checks() -> None:
    world = World(canary(skip_analysis=True))
    world.checks = lambda w: failing()
    world.run_until(Phase.INITIALIZED)
    world.release("v2", "c2")
    world.run_until(Phase.SUCCEEDED)
    assert world.check_runs == 0 and world.primary_hash == "v2"
    assert world.phases()[-4:] == ["Progressing", "Promoting", "Finalising", "Succeeded"]


def test_suspend_does_nothing() -> None:
    world = World(canary(suspend=True))
    for _ in range(3):
        world.tick()
    assert world.actions == [] and world.status.phase is None


def test_progress_deadline_rolls_back_an_unready_canary() -> None:
    world = World(canary(progress_deadline_seconds=120))
    world.run_until(Phase.INITIALIZED)
    world.release("v2", "c2")
    world.target_ready = False
    world.run_until(Phase.FAILED, limit=200)  # looked at every second while the canary scales up
    promoted = world.status.condition("Promoted")
    assert promoted is not None and "progressDeadlineSeconds (120s)" in promoted.message
    assert world.now - T0 < timedelta(seconds=200)


def test_no_data_holds_without_counting_as_failed_then_deadline() -> None:
    world = started(World(canary(progress_deadline_seconds=300)))
    world.tick()
    world.checks = lambda w: no_data()
    for _ in range(3):
        world.tick()
    assert world.status.phase == Phase.PROGRESSING
    assert world.status.failed_checks == 0 and world.status.canary_weight == 10
    assert world.status.analysis is not None and world.status.analysis.verdict == "no-data"
    world.run_until(Phase.FAILED)
    assert "no data for request-success-rate" in (world.status.condition("Promoted") or object()).message  # type: ignore[attr-defined]


def test_a_passing_check_after_failures_keeps_the_count() -> None:
    results = iter([failing(), passing(), failing(), passing(), passing()] + [passing()] * 20)
    world = started(World(canary(threshold=3)))
    world.tick()
    world.checks = lambda w: next(results)
    for _ in range(3):
        world.tick()
    assert world.status.failed_checks == 2 and world.status.phase == Phase.PROGRESSING


def test_ab_testing_routes_matches_and_counts_iterations() -> None:
    spec = canary(step_weight=None, max_weight=100, iterations=4, match=({"headers": {"x-canary": {"exact": "1"}}},))
    world = started(World(spec))
    world.tick()
    assert world.match and world.weights == (100, 0)
    world.run_until(Phase.PROMOTING)
    assert world.status.iterations == 4
    world.run_until(Phase.SUCCEEDED)
    assert set(weights(world)) == {0}


# -- blue/green --------------------------------------------------------------------------------------


def bluegreen(**fields: object) -> BlueGreenSpec:
    base: dict[str, object] = {"scale_down_delay_seconds": 30}
    base.update(fields)
    analysis = Analysis(interval=60.0, threshold=2, iterations=3, metrics=METRICS)
    return BlueGreenSpec(TARGET, SERVICE, analysis, **base)  # type: ignore[arg-type]


def test_bluegreen_analyses_at_zero_traffic_then_switches_and_scales_down_after_delay() -> None:
    world = started(World(bluegreen()))
    world.run_until(Phase.PROMOTING)
    assert world.status.iterations == 3
    assert weights(world)[:-1] == [0] and world.weights == (0, 100)
    promote = world.tick(advance=timedelta(seconds=5))
    assert world.weights == (100, 0) and promote.status.phase == Phase.FINALISING
    world.tick(advance=timedelta(seconds=10))
    assert world.status.phase == Phase.FINALISING and world.target_up
    world.run_until(Phase.SUCCEEDED)
    assert not world.target_up and world.primary_hash == "v2"


def test_bluegreen_without_auto_promotion_waits_for_promote() -> None:
    world = started(World(bluegreen(auto_promotion=False)))
    world.run_until(Phase.WAITING_PROMOTION)
    for _ in range(3):
        world.tick()
    assert world.status.phase == Phase.WAITING_PROMOTION and world.weights == (100, 0)
    world.status = replace(world.status, command="promote")
    world.run_until(Phase.SUCCEEDED)
    assert world.primary_hash == "v2" and world.status.command is None


def test_bluegreen_failure_never_switches() -> None:
    world = started(World(bluegreen()))
    world.checks = lambda w: failing()
    world.run_until(Phase.FAILED)
    assert all(a.canary == 0 for a in world.actions if isinstance(a, SetWeight))


# -- webhook gates -----------------------------------------------------------------------------------


def with_hooks(*kinds: WebhookType, **analysis: object) -> CanarySpec:
    spec = canary(**analysis)
    return replace(spec, analysis=replace(spec.analysis, webhooks=tuple(hook(k) for k in kinds)))


def test_confirm_rollout_holds_in_waiting_until_open() -> None:
    world = World(with_hooks(WebhookType.CONFIRM_ROLLOUT), hooks={WebhookType.CONFIRM_ROLLOUT: False})
    world.run_until(Phase.INITIALIZED)
    world.release("v2", "c2")
    for _ in range(3):
        world.tick()
    assert world.status.phase == Phase.WAITING and not world.target_up
    world.hooks[WebhookType.CONFIRM_ROLLOUT] = True
    world.tick()
    assert world.status.phase == Phase.PROGRESSING and world.target_up


def test_confirm_traffic_increase_holds_the_weight() -> None:
    world = started(World(with_hooks(WebhookType.CONFIRM_TRAFFIC_INCREASE)))
    world.tick()
    assert world.status.canary_weight == 10
    world.hooks[WebhookType.CONFIRM_TRAFFIC_INCREASE] = False
    for _ in range(3):
        world.tick()
    assert world.status.canary_weight == 10
    world.hooks[WebhookType.CONFIRM_TRAFFIC_INCREASE] = True
    world.tick()
    assert world.status.canary_weight == 20


def test_confirm_promotion_waits_in_waiting_promotion() -> None:
    world = started(World(with_hooks(WebhookType.CONFIRM_PROMOTION), hooks={WebhookType.CONFIRM_PROMOTION: False}))
    world.run_until(Phase.WAITING_PROMOTION)
    assert world.status.canary_weight == 50
    world.tick()
    assert world.status.phase == Phase.WAITING_PROMOTION and world.primary_hash == "v1"
    world.hooks[WebhookType.CONFIRM_PROMOTION] = True
    world.run_until(Phase.SUCCEEDED)


def test_pre_rollout_failure_counts_as_failed_check() -> None:
    world = started(World(with_hooks(WebhookType.PRE_ROLLOUT, threshold=2), hooks={WebhookType.PRE_ROLLOUT: False}))
    world.tick()
    assert world.status.failed_checks == 1 and world.status.canary_weight == 0
    world.tick()
    assert world.status.phase == Phase.FAILED and world.status.failed_checks == 2


def test_rollback_webhook_forces_rollback() -> None:
    world = started(World(with_hooks(WebhookType.ROLLBACK), hooks={WebhookType.ROLLBACK: False}))
    world.tick()
    world.tick()
    assert world.status.canary_weight == 20
    world.hooks[WebhookType.ROLLBACK] = True
    world.tick()
    assert world.status.phase == Phase.FAILED and world.weights == (100, 0)


# -- manual commands ---------------------------------------------------------------------------------


def test_abort_rolls_back_and_retry_runs_again() -> None:
    world = started(World(canary()))
    world.tick()
    world.status = replace(world.status, command="abort")
    world.tick()
    assert world.status.phase == Phase.FAILED and world.status.command is None
    world.status = replace(world.status, command="retry")
    world.tick()
    assert world.status.phase == Phase.PROGRESSING and world.target_up
    world.run_until(Phase.SUCCEEDED)


def test_promote_skips_the_remaining_steps() -> None:
    world = started(World(canary()))
    world.tick()
    world.status = replace(world.status, command="promote")
    world.run_until(Phase.SUCCEEDED)
    assert max(weights(world)) == 10


# -- single decisions as a table ---------------------------------------------------------------------

RUN = Candidate("v2", "c2", T0)
MID = ReleaseStatus(
    phase=Phase.PROGRESSING,
    canary_weight=20,
    last_applied_spec="v2",
    last_promoted_spec="v1",
    last_transition_time=T0,
    candidate=RUN,
)
OBS = Observations(target=Workload(True, "v2", True, "c2"), primary=Workload(True, "v1", True, "c1"), weights=(80, 20),
                   slot=Slot())
LATER = T0 + timedelta(seconds=61)
SOON = T0 + timedelta(seconds=30)


@pytest.mark.parametrize(
    ("status", "obs", "now", "phase", "weight", "actions"),
    [
        pytest.param(MID, replace(OBS, checks=passing()), LATER, Phase.PROGRESSING, 30, [SetWeight(70, 30)], id="step"),
        pytest.param(MID, OBS, SOON, Phase.PROGRESSING, 20, [], id="not-due"),
        pytest.param(
            MID, replace(OBS, weights=(100, 0)), LATER, Phase.PROGRESSING, 20, [SetWeight(80, 20)], id="drift"
        ),
        pytest.param(
            replace(MID, failed_checks=4), replace(OBS, checks=failing()), LATER, Phase.FAILED, 0,
            [SetWeight(100, 0), ScaleTarget(False), CallWebhooks(WebhookType.POST_ROLLOUT)], id="threshold",
        ),
        pytest.param(
            replace(MID, canary_weight=50), replace(OBS, checks=passing(), weights=(50, 50)), LATER,
            Phase.PROMOTING, 50, [PromotePrimary()], id="promote",
        ),
        pytest.param(
            replace(MID, phase=Phase.PROMOTING, canary_weight=50), replace(OBS, primary=Workload(True, "v2", True)),
            LATER, Phase.FINALISING, 0, [SetWeight(100, 0)], id="promoted",
        ),
        pytest.param(
            replace(MID, phase=Phase.PROMOTING, canary_weight=50), replace(OBS, primary=Workload(True, "v2", False)),
            LATER, Phase.PROMOTING, 50, [PromotePrimary()], id="primary-rolling",
        ),
        pytest.param(
            replace(MID, phase=Phase.FINALISING, canary_weight=0), replace(OBS, weights=(100, 0)), LATER,
            Phase.SUCCEEDED, 0, [ScaleTarget(False), CallWebhooks(WebhookType.POST_ROLLOUT)], id="finalise",
        ),
        pytest.param(
            replace(MID, phase=Phase.SUCCEEDED, last_promoted_spec="v2", canary_weight=0),
            replace(OBS, target=Workload(True, "v3", True, "c3")), LATER, Phase.PROGRESSING, 0,
            [ScaleTarget(True)], id="new-revision",
        ),
        pytest.param(
            replace(MID, phase=Phase.SUCCEEDED, last_promoted_spec="v2", canary_weight=0), OBS, LATER,
            Phase.SUCCEEDED, 0, [], id="idle",
        ),
        pytest.param(
            ReleaseStatus(), replace(OBS, primary=Workload(exists=False)), T0, Phase.INITIALIZING, 0,
            [InitializePrimary()], id="init",
        ),
    ],
)
def test_decision_table(
    status: ReleaseStatus, obs: Observations, now: object, phase: Phase, weight: int, actions: list[object]
) -> None:
    decision = plan(canary(), status, obs, now)  # type: ignore[arg-type]
    assert decision.complete
    assert decision.status.phase == phase
    assert decision.status.canary_weight == weight
    assert [a for a in decision.actions if not isinstance(a, Emit)] == actions


# -- how soon the next look comes ----------------------------------------------------------------------
# Waits on a workload rolling out are looked at every second; a phase with nothing to wait for is
# followed at once; the analysis clock (one check per interval) is untouched.

BEGUN = replace(MID, canary_weight=0, analysis=None)  # Progressing, the canary scaling up
STEPPING = canary(step_weight_promotion=20)


@pytest.mark.parametrize(
    ("spec", "status", "obs", "now", "phase", "weight", "requeue"),
    [
        pytest.param(canary(), ReleaseStatus(), replace(OBS, primary=Workload(exists=False)), T0,
                     Phase.INITIALIZING, 0, 1, id="init-primary-created"),
        pytest.param(canary(), replace(ReleaseStatus(), phase=Phase.INITIALIZING),
                     replace(OBS, primary=Workload(True, "v2", False)), T0, Phase.INITIALIZING, 0, 1,
                     id="init-primary-rolling-out"),
        pytest.param(canary(), replace(ReleaseStatus(), phase=Phase.INITIALIZING), OBS, T0, Phase.INITIALIZED, 0, 60,
                     id="init-done-then-idle"),
        pytest.param(canary(), replace(MID, phase=Phase.SUCCEEDED, last_promoted_spec="v2", canary_weight=0),
                     replace(OBS, target=Workload(True, "v3", True, "c3")), LATER, Phase.PROGRESSING, 0, 1,
                     id="new-revision-scales-the-canary-up"),
        pytest.param(canary(), BEGUN, replace(OBS, target=Workload(True, "v2", False, "c2"), weights=(100, 0)),
                     T0 + timedelta(seconds=1), Phase.PROGRESSING, 0, 1, id="canary-scaling-up"),
        pytest.param(canary(), BEGUN, replace(OBS, weights=(100, 0)), T0 + timedelta(seconds=1), Phase.PROGRESSING,
                     10, 60, id="first-step-once-the-canary-is-ready"),
        pytest.param(canary(), MID, OBS, SOON, Phase.PROGRESSING, 20, 30, id="next-step-on-the-analysis-clock"),
        pytest.param(canary(), replace(MID, canary_weight=50), replace(OBS, checks=passing(), weights=(50, 50)),
                     LATER, Phase.PROMOTING, 50, 1, id="promote"),
        pytest.param(canary(), replace(MID, phase=Phase.PROMOTING, canary_weight=50),
                     replace(OBS, primary=Workload(True, "v2", False)), LATER, Phase.PROMOTING, 50, 1,
                     id="primary-rolling-out"),
        pytest.param(canary(), replace(MID, phase=Phase.PROMOTING, canary_weight=50),
                     replace(OBS, primary=Workload(True, "v2", True)), LATER, Phase.FINALISING, 0, 0,
                     id="primary-ready-finalise-at-once"),
        pytest.param(STEPPING, replace(MID, phase=Phase.PROMOTING, canary_weight=50),
                     replace(OBS, primary=Workload(True, "v2", True)), LATER, Phase.PROMOTING, 30, 5,
                     id="step-weight-promotion-step"),
        pytest.param(canary(), replace(MID, phase=Phase.FINALISING, canary_weight=0), replace(OBS, weights=(100, 0)),
                     LATER, Phase.SUCCEEDED, 0, 60, id="succeeded-then-idle"),
    ],
)
def test_requeue_table(spec: CanarySpec, status: ReleaseStatus, obs: Observations, now: object, phase: Phase,
                       weight: int, requeue: float) -> None:
    decision = plan(spec, status, obs, now)  # type: ignore[arg-type]
    assert decision.complete
    assert (decision.status.phase, decision.status.canary_weight) == (phase, weight)
    assert decision.requeue_after == timedelta(seconds=requeue)


def test_a_short_interval_bounds_the_rollout_poll() -> None:
    decision = plan(canary(interval=0.5), BEGUN, replace(OBS, target=Workload(True, "v2", False, "c2")), T0)
    assert decision.requeue_after == timedelta(seconds=0.5)


def test_a_three_step_canary_succeeds_within_its_steps_times_interval() -> None:
    """From the change to Succeeded: the first step once the canary is ready, a step (and its check)
    per interval, then Promoting, Finalising and Succeeded as soon as the primary is ready."""
    world = World(canary(interval=10.0, step_weight=33, max_weight=99))
    world.run_until(Phase.INITIALIZED)
    world.release("v2", "c2")
    changed = world.now
    world.tick()
    world.target_ready = False  # the canary is scaling up
    world.tick()
    world.target_ready = True
    world.run_until(Phase.PROMOTING)
    world.cluster.primary_ready = False  # rolling out the promoted spec
    world.tick()
    assert world.status.phase == Phase.PROMOTING
    world.cluster.primary_ready = True
    world.run_until(Phase.SUCCEEDED)
    succeeded = world.status.last_transition_time
    assert succeeded is not None and succeeded - changed <= timedelta(seconds=1.2 * 3 * 10), succeeded - changed
    assert world.phases()[-4:] == ["Progressing", "Promoting", "Finalising", "Succeeded"]
    reasons = [a.reason for a in world.actions if isinstance(a, Emit)]
    assert reasons[-7:] == ["Progressing", "Progressing", "Progressing", "Progressing", "Promoting", "Finalising",
                            "Succeeded"]
    assert world.check_runs == 3  # at 33 and 66 (each step judged), and at 99 before promotion


def test_a_failing_pre_rollout_gate_is_asked_at_once_then_once_per_interval() -> None:
    world = started(World(with_hooks(WebhookType.PRE_ROLLOUT, threshold=5), hooks={WebhookType.PRE_ROLLOUT: False}))
    first = world.tick(advance=timedelta(seconds=10))  # a second after the canary was scaled up
    assert world.hook_calls.count(WebhookType.PRE_ROLLOUT) == 1 and world.status.failed_checks == 1
    assert first.requeue_after == timedelta(seconds=60)
    for _ in range(5):  # looks 11 to 51 s after the run began: not yet an interval
        world.tick(advance=timedelta(seconds=10))
    assert world.hook_calls.count(WebhookType.PRE_ROLLOUT) == 1
    world.tick()
    assert world.hook_calls.count(WebhookType.PRE_ROLLOUT) == 2 and world.status.failed_checks == 2


def test_missing_observations_are_asked_for_not_guessed() -> None:
    decision = plan(canary(), MID, OBS, LATER)
    assert decision.gather == (RunChecks(),) and decision.actions == () and decision.status == MID
    spec = with_hooks(WebhookType.ROLLBACK)
    decision = plan(spec, MID, replace(OBS, checks=passing()), LATER)
    assert decision.gather == (AskGate(WebhookType.ROLLBACK),)


def test_observed_generation_and_transition_time() -> None:
    decision = plan(canary(), MID, replace(OBS, checks=passing(), generation=7), LATER)
    assert decision.status.observed_generation == 7
    assert decision.status.last_transition_time == LATER
    held = plan(canary(), MID, replace(OBS, checks=failing(), generation=7), LATER)
    assert held.status.last_transition_time == T0 and held.status.failed_checks == 1
    assert held.status.analysis is not None and held.status.analysis.metrics[0].verdict == Verdict.FAIL.value


def test_a_conclusive_failure_rolls_back_without_waiting_for_the_threshold() -> None:
    world = started(World(canary(threshold=5)))
    world.tick()
    conclusive = tuple(replace(r, final=True) for r in failing())
    world.checks = lambda w: conclusive
    world.tick()
    assert world.status.phase == Phase.FAILED and world.status.failed_checks == 1
    promoted = world.status.condition("Promoted")
    assert promoted is not None and "(conclusive)" in promoted.message


# -- dry-run (shadow) metrics ---------------------------------------------------------------------


def _shadow_failing() -> tuple[CheckResult, ...]:
    return (*passing(), replace(failing(("latency-shadow",))[0], dry_run=True, final=True))


def test_a_failing_dry_run_metric_next_to_a_passing_one_advances_and_promotes() -> None:
    world = started(World(canary(threshold=1)))
    world.checks = lambda w: _shadow_failing()
    world.run_until(Phase.SUCCEEDED)
    assert world.status.failed_checks == 0
    assert weights(world)[:6] == [0, 10, 20, 30, 40, 50]
    assert world.primary_hash == "v2"
    shadow = [e for e in world.actions if isinstance(e, Emit) and e.reason == "DryRun"]
    assert shadow and all("dry run: would have failed: latency-shadow: 90% < 99%" in e.message for e in shadow)


def test_status_marks_the_dry_run_metric_and_keeps_it_out_of_the_verdict() -> None:
    world = started(World(canary(threshold=1)))
    world.checks = lambda w: _shadow_failing()
    world.tick()
    world.tick()
    analysis = world.status.analysis
    assert analysis is not None and analysis.verdict == "pass"
    by_name = {m.name: m for m in analysis.metrics}
    assert by_name["latency-shadow"].dry_run and by_name["latency-shadow"].verdict == "fail"
    assert not by_name["request-success-rate"].dry_run
    raw = world.status.to_dict()["analysis"]["metrics"]
    assert [m.get("dryRun") for m in raw] == [None, True]
    assert ReleaseStatus.from_dict(world.status.to_dict()).analysis == analysis


def test_a_failing_real_metric_still_fails_next_to_a_dry_run_one() -> None:
    world = started(World(canary(threshold=1)))
    world.checks = lambda w: (*failing(), replace(passing(("latency-shadow",))[0], dry_run=True))
    world.run_until(Phase.FAILED)
    assert world.status.failed_checks == 1 and world.primary_hash == "v1"


def test_a_dry_run_metric_without_data_does_not_hold_the_release() -> None:
    world = started(World(canary()))
    world.checks = lambda w: (*passing(), replace(no_data(("latency-shadow",))[0], dry_run=True))
    world.run_until(Phase.SUCCEEDED)


# -- looks between checks (analysis.lookInterval) -------------------------------------------------


def test_the_sequential_judge_looks_between_checks_and_a_crossing_rolls_back_at_once() -> None:
    world = started(World(canary(judge=Judge.SEQUENTIAL, look_interval=10.0, threshold=5)))
    world.tick()  # the first step: weight 10%
    assert world.status.canary_weight == 10
    # Between the step's checks (every 60s) the judge looks every 10s; a look that does not cross
    # changes nothing but its time, and the next tick comes at the next look, not at the next check.
    before = world.check_runs
    decision = world.tick()
    assert world.sequential_looks == 1 and world.check_runs == before + 1
    assert decision.requeue_after == timedelta(seconds=10)
    assert world.status.canary_weight == 10 and world.status.failed_checks == 0
    assert world.status.analysis is not None and world.status.analysis.looked_at is not None
    # A look that crosses: the release rolls back then, 20s into the step, not at its check.
    world.checks = lambda w: tuple(replace(r, final=True) for r in failing())
    world.tick()
    assert world.status.phase == Phase.FAILED and world.sequential_looks == 2
    promoted = world.status.condition("Promoted")
    assert promoted is not None and "between checks" in promoted.message


def test_without_a_look_interval_nothing_is_judged_between_checks() -> None:
    world = started(World(canary(judge=Judge.SEQUENTIAL, threshold=5)))
    world.tick()
    decision = world.tick()
    assert world.sequential_looks == 0 and decision.requeue_after > timedelta(seconds=10)


def test_a_look_interval_survives_the_status_round_trip() -> None:
    world = started(World(canary(judge=Judge.SEQUENTIAL, look_interval=10.0)))
    world.tick()
    world.tick()
    analysis = world.status.analysis
    assert analysis is not None and analysis.looked_at is not None
    assert ReleaseStatus.from_dict(world.status.to_dict()).analysis == analysis
