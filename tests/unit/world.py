"""A tiny pure world for driving the planner through whole releases in tests.

It plays the engine's part with plain values: actions change the observed weights, replicas
and primary spec; gathered observations come from per-test functions. No Kubernetes involved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from rollout.api.spec import BlueGreenSpec, CanarySpec, WebhookType
from rollout.api.status import Phase, ReleaseStatus, RevertState
from rollout.core import (
    Action,
    CallWebhooks,
    CheckResult,
    CheckVerdict,
    Decision,
    InitializePrimary,
    Observations,
    PromotePrimary,
    RevertInGit,
    RevertOutcome,
    RunChecks,
    ScaleTarget,
    SetWeight,
    Workload,
    plan,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def passing(names: tuple[str, ...] = ("request-success-rate",)) -> tuple[CheckResult, ...]:
    return tuple(CheckResult(n, CheckVerdict.PASS, 99.9, 99.9, ">= 99") for n in names)


def failing(names: tuple[str, ...] = ("request-success-rate",)) -> tuple[CheckResult, ...]:
    return tuple(CheckResult(n, CheckVerdict.FAIL, 90.0, 99.9, ">= 99", "90% < 99%") for n in names)


def no_data(names: tuple[str, ...] = ("request-success-rate",)) -> tuple[CheckResult, ...]:
    return tuple(CheckResult(n, CheckVerdict.NO_DATA, reason="no values") for n in names)


@dataclass
class World:
    spec: CanarySpec | BlueGreenSpec
    target_hash: str = "v1"
    target_revision: str | None = "c1"
    primary_hash: str | None = None
    primary_revision: str | None = None
    primary_exists: bool = False
    target_ready: bool = True
    primary_ready: bool = True
    weights: tuple[int, int] = (100, 0)
    match: bool = False
    target_up: bool = True
    status: ReleaseStatus = field(default_factory=ReleaseStatus)
    now: datetime = T0
    checks: Callable[[World], tuple[CheckResult, ...]] = lambda w: passing()
    hooks: dict[WebhookType, bool] = field(default_factory=dict)
    revert_outcome: Callable[[RevertInGit], RevertOutcome] = lambda a: RevertOutcome(
        RevertState.PUSHED, commit="r1", reverts=(a.candidate_revision or "",)
    )
    log: list[Decision] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    hook_calls: list[WebhookType] = field(default_factory=list)
    reverts: list[RevertInGit] = field(default_factory=list)
    check_runs: int = 0

    def observe(self) -> Observations:
        return Observations(
            target=Workload(True, self.target_hash, self.target_ready, self.target_revision),
            primary=Workload(self.primary_exists, self.primary_hash, self.primary_ready, self.primary_revision),
            weights=self.weights,
            generation=1,
        )

    def tick(self, advance: timedelta | None = None) -> Decision:
        """One engine tick: plan (gathering as asked), act, keep the status, move the clock."""
        obs = self.observe()
        for _ in range(6):
            decision = plan(self.spec, self.status, obs, self.now)
            if not decision.gather:
                break
            for request in decision.gather:
                if isinstance(request, RunChecks):
                    self.check_runs += 1
                    obs = replace(obs, checks=self.checks(self))
                else:
                    self.hook_calls.append(request.type)
                    obs = replace(obs, hooks={**obs.hooks, request.type: self.hooks.get(request.type, True)})
        else:
            raise AssertionError("planner kept asking for observations")
        revert = self.apply(decision.actions)
        if revert is not None:
            decision = plan(self.spec, decision.status, replace(obs, revert=revert), self.now)
            assert not any(isinstance(a, RevertInGit) for a in decision.actions)
            self.apply(decision.actions)
        self.status = decision.status
        self.log.append(decision)
        self.now += advance if advance is not None else max(decision.requeue_after, timedelta(seconds=1))
        return decision

    def apply(self, actions: tuple[Action, ...]) -> RevertOutcome | None:
        outcome = None
        for a in actions:
            self.actions.append(a)
            if isinstance(a, InitializePrimary):
                self.primary_exists = True
                self.primary_hash = self.target_hash
                self.primary_revision = self.target_revision
            elif isinstance(a, SetWeight):
                assert a.primary + a.canary == 100
                self.weights = (a.primary, a.canary)
                self.match = a.match
            elif isinstance(a, ScaleTarget):
                self.target_up = a.up
            elif isinstance(a, PromotePrimary):
                self.primary_hash = self.target_hash
                self.primary_revision = self.target_revision
            elif isinstance(a, CallWebhooks):
                self.hook_calls.append(a.type)
            elif isinstance(a, RevertInGit):
                self.reverts.append(a)
                outcome = self.revert_outcome(a)
        return outcome

    def run_until(self, *phases: Phase, limit: int = 60) -> list[Decision]:
        start = len(self.log)
        for _ in range(limit):
            self.tick()
            if self.status.phase in phases:
                return self.log[start:]
        raise AssertionError(f"never reached {phases}; phases: {self.phases()}")

    def phases(self) -> list[str]:
        out: list[str] = []
        for d in self.log:
            p = d.status.phase.value if d.status.phase else "-"
            if not out or out[-1] != p:
                out.append(p)
        return out

    def release(self, new_hash: str, revision: str) -> None:
        """Git delivers a new target spec."""
        self.target_hash = new_hash
        self.target_revision = revision
