"""One tick of a release: finish what a killed tick recorded, observe, plan, record, act.

The same driver runs the operator against a cluster, `rollout analyze` against history and the
tests against a simulated cluster; only the ports differ. It performs no I/O itself.

Intent before effect: when a decision holds an action that must not happen twice (an Event, a
notification webhook, the revert in Git), the new status and the actions go to `Ports.record`
(the operator writes them into the status) before any is carried out, each under a key. An
operator killed anywhere after that finds the record at its next tick and finishes it, under the
same keys, instead of deciding again; killed before it, nothing was done and it decides again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from rollout.api.spec import BlueGreenSpec, CanarySpec, WebhookType
from rollout.api.status import Intent, ReleaseStatus, effect_key
from rollout.core import (
    Action,
    AskGate,
    AskSlot,
    CheckResult,
    Decision,
    Observations,
    RevertInGit,
    RevertOutcome,
    RunChecks,
    SetWeight,
    Slot,
    plan,
)
from rollout.core.actions import UNREPEATABLE, from_record, to_record

# Each pass may ask for one more observation; a tick needs at most checks plus a few gates.
MAX_PASSES = 8


@dataclass(frozen=True)
class Effect:
    """A recorded side effect: its key, and the phase and target spec it speaks of."""

    key: str
    phase: str
    checksum: str | None


class Ports(Protocol):
    """What a tick needs from the world."""

    def observe(self) -> Observations: ...

    def run_checks(self, sequential_only: bool = False) -> tuple[CheckResult, ...]: ...

    def call_webhooks(self, kind: WebhookType) -> bool: ...

    def ask_slot(self) -> Slot: ...

    def record(self, status: ReleaseStatus) -> None: ...

    def carry_out(self, action: Action, effect: Effect | None = None) -> RevertOutcome | None: ...


def tick(spec: CanarySpec | BlueGreenSpec, status: ReleaseStatus, ports: Ports, now: datetime, *,
         uid: str = "") -> Decision:
    """Finish a recorded intent, plan until the planner has what it needs, record and carry the
    actions out, and fold in a revert outcome. `uid` keys the effects (the release's uid)."""
    finished = None
    if status.intent is not None:
        finished = _finish(status.intent, ports, uid)
        status = replace(status, intent=None)
    obs = ports.observe()
    if finished is not None:
        obs = replace(obs, revert=finished)
    decision = _act(_plan_complete(spec, status, obs, ports, now), ports, uid)
    outcome = decision.outcome
    if outcome is not None:
        # The revert writer's answer belongs in this tick's status: plan once more with it.
        again = _plan_complete(spec, decision.decision.status, replace(obs, revert=outcome), ports, now)
        again = replace(again, actions=tuple(a for a in again.actions if not isinstance(a, RevertInGit)))
        return _act(again, ports, uid).decision
    return decision.decision


def _plan_complete(
    spec: CanarySpec | BlueGreenSpec, status: ReleaseStatus, obs: Observations, ports: Ports, now: datetime
) -> Decision:
    for _ in range(MAX_PASSES):
        decision = plan(spec, status, obs, now)
        if decision.complete:
            return decision
        for request in decision.gather:
            if isinstance(request, RunChecks):
                obs = replace(obs, checks=ports.run_checks(request.sequential_only))
            elif isinstance(request, AskSlot):
                obs = replace(obs, slot=ports.ask_slot())
            elif isinstance(request, AskGate):
                obs = replace(obs, hooks={**obs.hooks, request.type: ports.call_webhooks(request.type)})
    raise RuntimeError(f"the planner kept asking for observations after {MAX_PASSES} passes")


@dataclass(frozen=True)
class _Acted:
    decision: Decision
    outcome: RevertOutcome | None


def _act(decision: Decision, ports: Ports, uid: str) -> _Acted:
    """Record the decision before its first unrepeatable action, then carry the rest out.

    The traffic actions ahead of it go first, so that the status never says Failed while a killed
    operator leaves traffic on the canary; done again after a kill, they change nothing, and a
    route a kill left ahead of the status is put back by the planner, which then decides again.
    Every other action waits for the record: a target scaled down before a failure was recorded
    would leave the restarted planner waiting for a canary nobody scales up."""
    actions = decision.actions
    first = next((i for i, a in enumerate(actions) if isinstance(a, UNREPEATABLE)), None)
    if first is None:
        return _Acted(decision, _carry_out(actions, ports, None, uid))
    early = {i for i, a in enumerate(actions[:first]) if isinstance(a, SetWeight)}
    _carry_out(tuple(a if i in early else None for i, a in enumerate(actions)), ports, None, uid)
    seq = decision.status.intents + 1
    decided = decision.status
    # The effects speak of the decided state, as Flagger's post-rollout hooks get Succeeded or Failed.
    intent = Intent(seq, decided.phase.value if decided.phase else "", decided.last_applied_spec,
                    tuple(to_record(a) for a in actions))
    ports.record(replace(decision.status, intent=intent, intents=seq))
    decision = replace(decision, status=replace(decision.status, intent=None, intents=seq))
    rest = tuple(None if i in early else a for i, a in enumerate(actions))
    return _Acted(decision, _carry_out(rest, ports, intent, uid))


def _finish(intent: Intent, ports: Ports, uid: str) -> RevertOutcome | None:
    """Carry out what a tick recorded and may not have done; every effect is keyed, so what was
    done already is not done twice."""
    return _carry_out(tuple(from_record(r) for r in intent.actions), ports, intent, uid)


def _carry_out(actions: tuple[Action | None, ...], ports: Ports, intent: Intent | None,
               uid: str) -> RevertOutcome | None:
    outcome = None
    for i, action in enumerate(actions):
        if action is None:
            continue  # recorded by a version that knew an action this one does not
        effect = Effect(effect_key(uid, intent.seq, i), intent.phase, intent.checksum) if intent else None
        result = ports.carry_out(action, effect)
        outcome = result or outcome
    return outcome
