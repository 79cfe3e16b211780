"""Drive the planner through whole releases in tests, with the engine's own tick driver.

The world is the simulated cluster plus per-test answers for metric checks, webhooks and the Git
revert writer, and a log of everything that was done. No Kubernetes involved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rollout.api.spec import BlueGreenSpec, CanarySpec, WebhookType
from rollout.api.status import Phase, ReleaseStatus, RevertState
from rollout.core import (
    Action,
    CallWebhooks,
    CheckResult,
    Decision,
    Observations,
    RevertInGit,
    RevertOutcome,
    Slot,
    Verdict,
)
from rollout.engine.simulated import SimulatedCluster
from rollout.engine.tick import Effect, tick

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Killed(Exception):
    """The operator process died here."""


def passing(names: tuple[str, ...] = ("request-success-rate",)) -> tuple[CheckResult, ...]:
    return tuple(CheckResult(n, Verdict.PASS, 99.9, 99.9, ">= 99") for n in names)


def failing(names: tuple[str, ...] = ("request-success-rate",)) -> tuple[CheckResult, ...]:
    return tuple(CheckResult(n, Verdict.FAIL, 90.0, 99.9, ">= 99", "90% < 99%") for n in names)


def no_data(names: tuple[str, ...] = ("request-success-rate",)) -> tuple[CheckResult, ...]:
    return tuple(CheckResult(n, Verdict.NO_DATA, reason="no values") for n in names)


def pushed(action: RevertInGit) -> RevertOutcome:
    return RevertOutcome(RevertState.PUSHED, commit="r1", reverts=(action.candidate_revision or "",))


@dataclass
class World:
    spec: CanarySpec | BlueGreenSpec
    cluster: SimulatedCluster = field(default_factory=lambda: SimulatedCluster(target_revision="c1"))
    status: ReleaseStatus = field(default_factory=ReleaseStatus)
    now: datetime = T0
    checks: Callable[[World], tuple[CheckResult, ...]] = lambda w: passing()
    hooks: dict[WebhookType, bool] = field(default_factory=dict)
    # The operator's answer when the release asks for a slot to start a run.
    slot: Callable[[World], Slot] = lambda w: Slot()
    slot_asks: int = 0
    revert_outcome: Callable[[RevertInGit], RevertOutcome] = pushed
    log: list[Decision] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    hook_calls: list[WebhookType] = field(default_factory=list)
    reverts: list[RevertInGit] = field(default_factory=list)
    check_runs: int = 0
    sequential_looks: int = 0  # of those, looks between checks (analysis.lookInterval)
    recorded: list[ReleaseStatus] = field(default_factory=list)
    effects: list[tuple[Action, Effect | None]] = field(default_factory=list)
    # The operator is killed when this many actions have been carried out (None: never), or at
    # the first recorded effect.
    kill_at: int | None = None
    kill_at_recorded: bool = False
    # ... or just before the record of a tick that decided this phase (its early actions done).
    kill_before_recording: Phase | None = None

    # -- the engine's ports ----------------------------------------------------------------------

    def observe(self) -> Observations:
        return self.cluster.observe()

    def run_checks(self, sequential_only: bool = False) -> tuple[CheckResult, ...]:
        self.check_runs += 1
        self.sequential_looks += sequential_only
        return self.checks(self)

    def call_webhooks(self, kind: WebhookType) -> bool:
        self.hook_calls.append(kind)
        return self.hooks.get(kind, True)

    def ask_slot(self) -> Slot:
        self.slot_asks += 1
        return self.slot(self)

    def record(self, status: ReleaseStatus) -> None:
        if self.kill_before_recording is not None and status.phase == self.kill_before_recording:
            self.kill_before_recording = None
            raise Killed(f"killed before recording {status.phase}")
        self.recorded.append(status)
        self.status = status  # what the API holds now

    def carry_out(self, action: Action, effect: Effect | None = None) -> RevertOutcome | None:
        if (self.kill_at is not None and len(self.actions) >= self.kill_at) or (self.kill_at_recorded and effect):
            self.kill_at, self.kill_at_recorded = None, False
            raise Killed(f"killed before {action}")
        self.actions.append(action)
        self.effects.append((action, effect))
        if isinstance(action, CallWebhooks):
            self.hook_calls.append(action.type)
        if isinstance(action, RevertInGit):
            self.reverts.append(action)
            return self.revert_outcome(action)
        return self.cluster.apply(action)

    # -- driving ---------------------------------------------------------------------------------

    def tick(self, advance: timedelta | None = None) -> Decision:
        """One tick; a kill (`kill_at`) ends it early, leaving the status as last written."""
        try:
            decision = tick(self.spec, self.status, self, self.now)
        except Killed:
            self.now += timedelta(seconds=1)
            return Decision((), self.status, timedelta(seconds=1))
        self.status = decision.status
        self.log.append(decision)
        self.now += advance if advance is not None else max(decision.requeue_after, timedelta(seconds=1))
        return decision

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

    # -- what tests look at and change -----------------------------------------------------------

    def release(self, spec_hash: str, revision: str) -> None:
        self.cluster.release(spec_hash, revision)

    @property
    def weights(self) -> tuple[int, int]:
        return self.cluster.weights

    @property
    def match(self) -> bool:
        return self.cluster.match

    @property
    def target_up(self) -> bool:
        return self.cluster.target_up

    @property
    def primary_hash(self) -> str | None:
        return self.cluster.primary_hash

    @property
    def target_ready(self) -> bool:
        return self.cluster.target_ready

    @target_ready.setter
    def target_ready(self, ready: bool) -> None:
        self.cluster.target_ready = ready
