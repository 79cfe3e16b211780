"""One tick of a release: observe, plan (gathering what the planner asks for), act.

The same driver runs the operator against a cluster, `rollout analyze` against history and the
tests against a simulated cluster; only the ports differ. It performs no I/O itself.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Protocol

from rollout.api.spec import BlueGreenSpec, CanarySpec, WebhookType
from rollout.api.status import ReleaseStatus
from rollout.core import Action, CheckResult, Decision, Observations, RevertInGit, RevertOutcome, RunChecks, plan

# Each pass may ask for one more observation; a tick needs at most checks plus a few gates.
MAX_PASSES = 8


class Ports(Protocol):
    """What a tick needs from the world."""

    def observe(self) -> Observations: ...

    def run_checks(self) -> tuple[CheckResult, ...]: ...

    def call_webhooks(self, kind: WebhookType) -> bool: ...

    def carry_out(self, action: Action) -> RevertOutcome | None: ...


def tick(spec: CanarySpec | BlueGreenSpec, status: ReleaseStatus, ports: Ports, now: datetime) -> Decision:
    """Plan until the planner has what it needs, carry the actions out, fold in a revert outcome."""
    obs = ports.observe()
    decision = _plan_complete(spec, status, obs, ports, now)
    outcome = _carry_out(decision.actions, ports)
    if outcome is not None:
        # The revert writer's answer belongs in this tick's status: plan once more with it.
        decision = _plan_complete(spec, decision.status, replace(obs, revert=outcome), ports, now)
        _carry_out(tuple(a for a in decision.actions if not isinstance(a, RevertInGit)), ports)
    return decision


def _plan_complete(
    spec: CanarySpec | BlueGreenSpec, status: ReleaseStatus, obs: Observations, ports: Ports, now: datetime
) -> Decision:
    for _ in range(MAX_PASSES):
        decision = plan(spec, status, obs, now)
        if decision.complete:
            return decision
        for request in decision.gather:
            if isinstance(request, RunChecks):
                obs = replace(obs, checks=ports.run_checks())
            else:
                obs = replace(obs, hooks={**obs.hooks, request.type: ports.call_webhooks(request.type)})
    raise RuntimeError(f"the planner kept asking for observations after {MAX_PASSES} passes")


def _carry_out(actions: tuple[Action, ...], ports: Ports) -> RevertOutcome | None:
    outcome = None
    for action in actions:
        result = ports.carry_out(action)
        outcome = result or outcome
    return outcome
