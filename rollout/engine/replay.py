"""Replay a release's analysis over a past window of a real Prometheus.

This is how users tune thresholds and judges against past incidents: the real planner runs tick by
tick as if the release had started at `start`, on a simulated cluster (weights, promotion) whose
metric checks are answered by Prometheus as it was at each tick. Webhooks are taken as approved
and Git is left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from analysis.verdicts import Outcome
from rollout.api.spec import BlueGreen, Canary, WebhookType
from rollout.api.status import Phase, ReleaseStatus
from rollout.core import Action, CheckResult, Emit, Observations, RevertOutcome, Slot
from rollout.engine.reports import TickRecord
from rollout.engine.simulated import SimulatedCluster
from rollout.engine.tick import Effect, tick

# The longest replay, in ticks: a year of 1m intervals is far beyond any window worth replaying.
MAX_TICKS = 100_000


@dataclass(frozen=True)
class Replay:
    outcome: Outcome
    decided_at: datetime | None
    reason: str
    ticks: tuple[TickRecord, ...]
    final_weight: int


Checker = Callable[[datetime, datetime, bool], tuple[CheckResult, ...]]


class _Ports:
    """The replay's world: a simulated cluster, Prometheus-backed checks, approving webhooks."""

    def __init__(self, cluster: SimulatedCluster, checker: Checker, started: datetime) -> None:
        self.cluster = cluster
        self.checker = checker
        self.started = started
        self.now = started
        self.checks: tuple[CheckResult, ...] = ()
        self.events: list[str] = []

    def observe(self) -> Observations:
        return self.cluster.observe()

    def run_checks(self, sequential_only: bool = False) -> tuple[CheckResult, ...]:
        self.checks = self.checker(self.now, self.started, sequential_only)
        return self.checks

    def call_webhooks(self, kind: WebhookType) -> bool:
        return True

    def ask_slot(self) -> Slot:
        return Slot()  # a replay is alone: no cap on concurrent releases

    def record(self, status: ReleaseStatus) -> None:
        """Nothing to keep: a replay is not killed halfway and repeats nothing outside itself."""

    def carry_out(self, action: Action, effect: Effect | None = None) -> RevertOutcome | None:
        if isinstance(action, Emit):
            self.events.append(action.message)
        return self.cluster.apply(action)


def replay(release: Canary | BlueGreen, checker: Checker, start: datetime, end: datetime,
           step: timedelta | None = None) -> Replay:
    """Run the release's analysis from `start` until it promotes, rolls back, or `end` comes."""
    spec = replace(release.spec, git=None, suspend=False, skip_analysis=False)
    step = step or timedelta(seconds=min(spec.analysis.interval, spec.analysis.look))
    if step <= timedelta(0):
        raise ValueError("the step interval must be positive")
    if end <= start:
        raise ValueError("the end of the window must be after its start")
    # The previous version is promoted and idle; the candidate arrives at `start`.
    cluster = SimulatedCluster(target_hash="previous", primary_exists=True, primary_hash="previous")
    status = ReleaseStatus(
        phase=Phase.INITIALIZED, last_applied_spec="previous", last_promoted_spec="previous",
        last_transition_time=start,
    )
    cluster.release("candidate")
    ports = _Ports(cluster, checker, start)
    records: list[TickRecord] = []
    now = start
    for _ in range(MAX_TICKS):
        if now > end:
            break
        ports.now, ports.checks, ports.events = now, (), []
        decision = tick(spec, status, ports, now)
        status = decision.status
        action = _action(status.phase, ports.events)
        score = status.analysis.score if ports.checks and status.analysis else None
        records.append(TickRecord(now, status.canary_weight, ports.checks, action, "; ".join(ports.events), score))
        if status.phase in (Phase.PROMOTING, Phase.FINALISING, Phase.SUCCEEDED):
            return Replay(Outcome.SUCCEEDED, now, "analysis passed", tuple(records), status.canary_weight)
        if status.phase == Phase.FAILED:
            promoted = status.condition("Promoted")
            reason = promoted.message if promoted else "analysis failed"
            return Replay(Outcome.FAILED, now, reason, tuple(records), status.canary_weight)
        now += step
    weight = records[-1].weight if records else 0
    return Replay(Outcome.RUNNING, None, f"no decision by the end of the window (weight {weight})",
                  tuple(records), weight)


def _action(phase: Phase | None, events: list[str]) -> str:
    if phase == Phase.FAILED:
        return "rollback"
    if phase in (Phase.PROMOTING, Phase.FINALISING, Phase.SUCCEEDED):
        return "promote"
    if any(e.startswith("Advance") or e.startswith("Routing matched") for e in events):
        return "advance"
    return "hold"
