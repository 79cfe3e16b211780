"""The planner's deadline decisions for a release that cannot route, as a table: (phase, last
progress, when the routing problem was first seen, now) -> failed or not, and what is done."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from rollout.api.spec import Analysis, CanarySpec, GitSpec, ObjectRef, Provider, ServiceSpec
from rollout.api.status import Candidate, Phase, ReleaseStatus
from rollout.core import Emit, Observations, RouteProblem, SetWeight, Workload, plan
from rollout.core.actions import InitializePrimary, RevertInGit, ScaleTarget
from tests.unit.world import T0, passing

DEADLINE = 60
PROBLEM = "reading VirtualService test/podinfo failed: 404 Not Found (is the VirtualService kind installed?)"
SPEC = CanarySpec(ObjectRef("apps/v1", "Deployment", "podinfo"), ServiceSpec(port=9898),
                  Analysis(interval=10.0, threshold=2, max_weight=50, step_weight=10),
                  progress_deadline_seconds=DEADLINE)
RUN = Candidate(spec="c2", revision="v2", started_at=T0)
PROGRESSING = ReleaseStatus(phase=Phase.PROGRESSING, last_applied_spec="c2", last_promoted_spec="c1",
                            last_transition_time=T0, candidate=RUN, observed_generation=1)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def obs(routing: RouteProblem | None, target: str = "c2", generation: int = 1) -> Observations:
    return Observations(target=Workload(spec_hash=target, revision="v2"), primary=Workload(spec_hash="c1"),
                        weights=None, generation=generation, routing=routing, checks=passing())


ROUTE_BACK = SetWeight(primary=100, canary=0, best_effort=True)


@pytest.mark.parametrize(
    ("status", "routing", "now", "fails"),
    [
        # Within the deadline a routing problem only holds the release (the engine retries).
        (PROGRESSING, RouteProblem(PROBLEM, T0), 59, False),
        (PROGRESSING, RouteProblem(PROBLEM, T0), 60, False),
        # Past it, counted from the last progress (Flagger's meaning), the release fails ...
        (PROGRESSING, RouteProblem(PROBLEM, T0), 61, True),
        (PROGRESSING, RouteProblem(PROBLEM, at(50)), 61, True),
        (replace(PROGRESSING, phase=Phase.WAITING_PROMOTION), RouteProblem(PROBLEM, at(60)), 61, True),
        # ... once a tick has stopped on the problem and it is still there: a first sighting (one
        # failed read, say after hours held at a promotion gate) is only retried.
        (PROGRESSING, RouteProblem(PROBLEM, None), 61, False),
        (replace(PROGRESSING, phase=Phase.WAITING_PROMOTION), RouteProblem(PROBLEM), 6000, False),
        # Progress made since moves the clock: a step 30s ago leaves 30s.
        (replace(PROGRESSING, last_transition_time=at(31), canary_weight=10), RouteProblem(PROBLEM, T0), 61, False),
        # Promotion is under way: the primary already changes, so a routing problem does not fail it.
        (replace(PROGRESSING, phase=Phase.PROMOTING), RouteProblem(PROBLEM, T0), 600, False),
        # Nothing wrong: time alone never fails a routable release.
        (PROGRESSING, None, 6000, False),
        # Initializing, before any status was written: the clock is the problem's first sighting.
        (ReleaseStatus(), RouteProblem(PROBLEM, T0), 61, True),
        (ReleaseStatus(), RouteProblem(PROBLEM, T0), 59, False),
        (ReleaseStatus(), RouteProblem(PROBLEM, None), 6000, False),
        (ReleaseStatus(phase=Phase.INITIALIZING, last_transition_time=at(30)),
         RouteProblem(PROBLEM, T0), 61, False),
    ],
)
def test_a_release_that_cannot_route_fails_at_its_progress_deadline(
    status: ReleaseStatus, routing: RouteProblem | None, now: float, fails: bool,
) -> None:
    initializing = status.phase is None
    decision = plan(SPEC, status, obs(routing, target="c1" if initializing else "c2"), at(now))
    failed = decision.status.phase == Phase.FAILED
    assert failed == fails
    assert (ROUTE_BACK in decision.actions) == fails
    if not fails:
        return
    promoted = decision.status.condition("Promoted")
    assert promoted is not None and promoted.status == "False"
    assert promoted.message == f"traffic cannot be routed within progressDeadlineSeconds ({DEADLINE}s): {PROBLEM}"
    [event] = [a for a in decision.actions if isinstance(a, Emit)]
    assert event.warning and event.reason == "Failed" and PROBLEM in event.message
    assert decision.status.canary_weight == 0
    # Traffic goes back first: idempotent, and never in the way of recording the failure.
    assert decision.actions.index(ROUTE_BACK) < decision.actions.index(event)
    if initializing:
        assert decision.status.last_promoted_spec is None and decision.status.candidate is None


FAILED_INIT = ReleaseStatus(phase=Phase.FAILED, last_applied_spec="c1", observed_generation=1,
                            last_transition_time=T0)


@pytest.mark.parametrize(
    ("generation", "target", "initializes"),
    [
        (1, "c1", False),  # nothing changed: it stays failed, however long
        (2, "c1", True),  # the Canary was edited (say, spec.provider set)
        (1, "c2", True),  # a new target revision
    ],
)
def test_a_release_that_failed_to_initialize_waits_for_a_change(generation: int, target: str,
                                                                 initializes: bool) -> None:
    seen = replace(obs(RouteProblem(PROBLEM, T0), target=target, generation=generation),
                   primary=Workload(exists=False))
    decision = plan(SPEC, FAILED_INIT, seen, at(3600))
    if not initializes:
        assert decision.status.phase == Phase.FAILED and decision.actions == ()
        return
    # Initializing again, with a fresh deadline: the old problem does not fail it at once.
    assert decision.status.phase == Phase.INITIALIZING
    assert decision.status.last_transition_time == at(3600)
    assert decision.actions == (InitializePrimary(),)


def test_with_git_the_failed_release_is_reverted_in_git() -> None:
    spec = CanarySpec(SPEC.target_ref, SPEC.service, SPEC.analysis, progress_deadline_seconds=DEADLINE,
                      git=GitSpec(source="apps"))
    routing = RouteProblem(PROBLEM, T0)
    failed = plan(spec, PROGRESSING, obs(routing), at(61))
    assert failed.status.phase == Phase.FAILED
    # The next look: the route cannot be read (no weights), so nothing can be on the canary: revert.
    reverting = plan(spec, failed.status, obs(routing), at(62))
    assert reverting.status.phase == Phase.REVERTING
    [revert] = [a for a in reverting.actions if isinstance(a, RevertInGit)]
    assert revert.candidate_revision == "v2" and PROBLEM in revert.reason


def test_the_route_back_survives_the_intent_record() -> None:
    from rollout.core.actions import from_record, to_record

    assert from_record(to_record(ROUTE_BACK)) == ROUTE_BACK
    assert from_record({"kind": "SetWeight", "primary": 100, "canary": 0}) == SetWeight(100, 0)  # an older record


def test_the_status_shows_the_provider_in_effect() -> None:
    decision = plan(replace(SPEC, provider=Provider.LINKERD), PROGRESSING, obs(None), at(1))
    assert decision.status.provider == "linkerd"
    assert ReleaseStatus.from_dict(decision.status.to_dict()).provider == "linkerd"


@pytest.mark.parametrize(("phase", "now", "fails"), [
    (Phase.PROGRESSING, 59, False),  # held (with a TargetMissing Event) while time is left
    (Phase.PROGRESSING, 61, True),
    (Phase.WAITING_PROMOTION, 61, True),
    (Phase.SUCCEEDED, 6000, False),  # nothing under way: nothing to fail
])
def test_a_target_gone_during_a_run_fails_it_at_the_deadline(phase: Phase, now: float, fails: bool) -> None:
    gone = replace(obs(None), target=Workload(exists=False))
    decision = plan(SPEC, replace(PROGRESSING, phase=phase), gone, at(now))
    assert (decision.status.phase == Phase.FAILED) == fails
    if fails:
        promoted = decision.status.condition("Promoted")
        assert promoted is not None
        assert promoted.message == f"target Deployment podinfo not found within progressDeadlineSeconds ({DEADLINE}s)"
        assert SetWeight(primary=100, canary=0) in decision.actions
        assert not any(isinstance(a, ScaleTarget) for a in decision.actions)  # nothing to scale down
    else:
        assert [a.reason for a in decision.actions if isinstance(a, Emit)] == ["TargetMissing"]
