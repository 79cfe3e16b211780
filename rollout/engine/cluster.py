"""The engine's ports onto a real cluster: workloads, router, metrics, webhooks, events, Git.

`ClusterPorts` is what `tick` talks to when the operator runs; every action the planner returns
is carried out here, idempotently, through the module that owns that kind of object.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from rollout.api.spec import Release, WebhookType
from rollout.api.status import ReleaseStatus, RevertState
from rollout.core import (
    Action,
    Alert,
    CallWebhooks,
    CheckResult,
    Emit,
    InitializePrimary,
    Observations,
    PromotePrimary,
    RevertInGit,
    RevertOutcome,
    RouteProblem,
    ScaleTarget,
    SetWeight,
    Slot,
    Verdict,
)
from rollout.engine import telemetry
from rollout.engine.alerts import Alerter
from rollout.engine.checks import MetricChecks
from rollout.engine.events import EventRecorder
from rollout.engine.tick import Effect
from rollout.engine.webhooks import Webhooks
from rollout.routers.base import Router, RouterError
from rollout.workloads import Workloads

log = logging.getLogger(__name__)

# (release, what to revert, its status, the failed run's report as Markdown) -> what happened in Git
RevertWriter = Callable[[Release, RevertInGit, ReleaseStatus, str], RevertOutcome]


def no_revert_writer(release: Release, action: RevertInGit, status: ReleaseStatus, report: str) -> RevertOutcome:
    return RevertOutcome(RevertState.SKIPPED, message="this operator has no Git revert writer configured")


@dataclass
class ClusterPorts:
    release: Release
    status: ReleaseStatus
    now: datetime
    workloads: Workloads
    router: Router
    checks: MetricChecks | None
    webhooks: Webhooks
    events: EventRecorder
    revert: RevertWriter = no_revert_writer
    report: Callable[[], str] = lambda: ""
    # Writes a status holding a recorded intent, before its effects are carried out.
    recorder: Callable[[ReleaseStatus], None] = lambda status: None
    # The router error an earlier tick stopped on (the status's Ready condition), still unresolved.
    routing: RouteProblem | None = None
    # Sends `analysis.alerts` (None: alerts are not sent, e.g. by `rollout analyze`).
    alerts: Alerter | None = None
    # Takes a slot for a new run under the operator's cap, or tells the place in its queue.
    admit: Callable[[], Slot] = Slot

    @property
    def phase(self) -> str:
        return self.status.phase.value if self.status.phase else ""

    @property
    def checksum(self) -> str | None:
        """Flagger's webhook checksum: which target spec the hook is asked about."""
        return self.status.last_applied_spec

    def observe(self) -> Observations:
        target, primary = self.workloads.observe(self.release)
        weights, routing = None, self.routing
        try:
            weights = self.router.verify_weight(self.release) if primary.exists else None
        except RouterError as e:  # e.g. the route's kind is not served: its CRDs are not installed
            routing = RouteProblem(str(e), routing.since if routing else None)
        return Observations(target, primary, weights, generation=self.release.metadata.generation, routing=routing)

    def run_checks(self, sequential_only: bool = False) -> tuple[CheckResult, ...]:
        candidate = self.status.candidate
        since = candidate.started_at if candidate and candidate.started_at else self.now
        results = list(self.checks.run(self.now, since, sequential_only)) if self.checks else []
        if self.checks:
            telemetry.checks_recorded(self.release, results, self.checks.evidence)
        if sequential_only:
            return tuple(results)  # a look between checks: the `rollout` webhooks are asked at the checks
        for hook in self.release.spec.analysis.hooks(WebhookType.ROLLOUT):
            answer = self.webhooks.call(self.release, hook, self.phase, checksum=self.checksum)
            verdict = Verdict.PASS if answer.ok else Verdict.FAIL
            results.append(CheckResult(hook.name, verdict, limit="webhook answers 2xx", reason=answer.message))
        return tuple(results)

    def call_webhooks(self, kind: WebhookType) -> bool:
        return self.webhooks.gate(self.release, kind, self.phase, checksum=self.checksum)

    def ask_slot(self) -> Slot:
        return self.admit()

    def record(self, status: ReleaseStatus) -> None:
        self.recorder(status)

    def _route_back(self, action: SetWeight) -> None:
        """The weights of a release failing for want of a route, where a route can take them: each
        step is tried, and a router error is logged, never raised (the failure must be recorded)."""
        release = self.release
        for step in ("reconcile", "set_weight"):
            try:
                if step == "reconcile":
                    self.router.reconcile(release)
                else:
                    self.router.set_weight(release, action.primary, action.canary, action.match)
            except RouterError as e:
                log.warning("traffic of %s/%s not routed back to the primary: %s",
                            release.metadata.namespace, release.metadata.name, e)

    def carry_out(self, action: Action, effect: Effect | None = None) -> RevertOutcome | None:
        """Carry one action out; a recorded one (`effect`) under its key, so it happens once."""
        release = self.release
        key = effect.key if effect else None
        phase = effect.phase if effect else self.phase
        if isinstance(action, InitializePrimary):
            self.workloads.initialize(release)
            self.router.reconcile(release)
        elif isinstance(action, ScaleTarget):
            self.workloads.scale_target(release, action.up)
        elif isinstance(action, SetWeight):
            if action.best_effort:
                self._route_back(action)
            else:
                self.router.reconcile(release)
                self.router.set_weight(release, action.primary, action.canary, action.match,
                                       mirror=action.mirror, cookie=action.cookie)
        elif isinstance(action, PromotePrimary):
            self.workloads.promote(release)
        elif isinstance(action, CallWebhooks):
            self.webhooks.notify(release, action.type, phase, key=key)
        elif isinstance(action, Emit):
            self.events.emit(release, action.reason, action.message, action.warning, key=key)
            self.webhooks.notify_event(release, action.reason, action.message, phase, warning=action.warning, key=key)
        elif isinstance(action, Alert):
            if self.alerts is not None:
                self.alerts.release(release, action, phase, key=key)
        elif isinstance(action, RevertInGit):
            return self.revert(release, action, self.status, self.report())
        return None
