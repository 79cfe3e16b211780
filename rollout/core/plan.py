"""The release state machine, as one pure function.

`plan(spec, status, observations, now)` reads the spec, the status (the release's only memory)
and what the engine observed, and returns what to do and the status to write. It follows
Flagger's phases (Initializing -> Initialized -> Progressing -> Promoting -> Finalising ->
Succeeded, or -> Failed) and adds Reverting -> Reverted, where the failed change is undone in
Git. It never reads the clock, sleeps or performs I/O, so a restarted controller that feeds it
the same status and observations gets the same answer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from analysis.scoring import Score, ScoreClass
from analysis.verdicts import Verdict
from rollout.api.spec import AlertSeverity, BlueGreenSpec, CanarySpec, RevertMode, WebhookType
from rollout.api.status import (
    RUNNING_PHASES,
    SLOT_PHASES,
    AnalysisStatus,
    Candidate,
    Command,
    Condition,
    MetricStatus,
    Phase,
    PullRequestState,
    ReleaseStatus,
    RevertState,
    RevertStatus,
    RunOutcome,
)
from rollout.core.actions import (
    Action,
    Alert,
    CallWebhooks,
    Emit,
    InitializePrimary,
    PromotePrimary,
    RevertInGit,
    ScaleTarget,
    SetWeight,
)
from rollout.core.decision import Decision
from rollout.core.hold import held_condition, held_message, hold_failed, holds
from rollout.core.observations import CheckResult, Observations
from rollout.core.queue import QUEUED, look_again, queued_message
from rollout.core.records import end_run, failure_detected, traffic_restored
from rollout.core.requests import AskGate, AskSlot, Request, RunChecks
from rollout.core.scores import score_check

Spec = CanarySpec | BlueGreenSpec

# A tick that arrives this fraction of an interval early still counts as due (timer jitter).
_DUE_SLACK = 0.02
# How soon to look again while waiting on something that is not the analysis clock.
_QUICK = timedelta(seconds=5)
# How soon to look again while a workload rolls out (the primary at initialisation and after
# promotion, the canary scaling up): the next phase follows as soon as it is ready, not an interval later.
_ROLLOUT_POLL = timedelta(seconds=1)
# After a rollback whose revert goes to Git, the next look only confirms the route is back on the
# primary (nothing is judged), so it comes at once: the revert should not wait on a timer.
_CONFIRM = timedelta(seconds=1)


class _Need(Exception):
    """The decision needs observations that have not been gathered yet."""

    def __init__(self, request: Request) -> None:
        self.request = request


def plan(spec: Spec, status: ReleaseStatus, obs: Observations, now: datetime) -> Decision:
    """Decide what to do next for one Canary or BlueGreen."""
    planner = _Planner(spec, status, obs, now)
    try:
        planner.decide()
    except _Need as need:
        return Decision(actions=(), status=status, requeue_after=timedelta(0), gather=(need.request,))
    return planner.decision()


@dataclass
class _Planner:
    spec: Spec
    old: ReleaseStatus
    obs: Observations
    now: datetime

    def __post_init__(self) -> None:
        generation = self.obs.generation if self.obs.generation is not None else self.old.observed_generation
        self.st = replace(self.old, observed_generation=generation, provider=self.spec.provider.value)
        self.actions: list[Action] = []
        self.requeue = self.interval
        self.message = ""
        self.reason: str | None = None
        # While queued for a slot: the Promoted condition's message (the place in the queue).
        self.queue_message = ""
        # While the failed version is held back: the Held condition's message.
        self.held: str | None = None

    # -- helpers ---------------------------------------------------------------------------------

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=self.spec.analysis.interval)

    @property
    def quick(self) -> timedelta:
        return min(self.interval, _QUICK)

    @property
    def poll(self) -> timedelta:
        return min(self.interval, _ROLLOUT_POLL)

    @property
    def is_bluegreen(self) -> bool:
        return isinstance(self.spec, BlueGreenSpec)

    @property
    def target_name(self) -> str:
        return self.spec.target_ref.name

    def act(self, *actions: Action) -> None:
        self.actions.extend(actions)

    def emit(self, reason: str, message: str, warning: bool = False, *, alert: AlertSeverity | None = None,
             fields: tuple[tuple[str, str], ...] = (), commit: str | None = None) -> None:
        """An Event; with `alert`, the same message for `analysis.alerts` too (in the same intent)."""
        self.message = message
        self.act(Emit(reason, message, warning))
        if alert is not None and self.spec.analysis.alerts:
            self.act(Alert(alert, message, fields, commit, reason))

    def target_fields(self) -> tuple[tuple[str, str], ...]:
        """Flagger's alert metadata: the target, the failed-checks threshold, the deadline, the routing."""
        analysis = self.spec.analysis
        ref = self.spec.target_ref
        if self.is_bluegreen:
            routing = "Blue/Green"
        elif analysis.match:
            routing = "A/B Testing"
        elif analysis.step_weights:
            routing = f"Weight steps: {','.join(map(str, analysis.step_weights))} max: {analysis.max_weight}"
        elif analysis.step_weight:
            routing = f"Weight step: {analysis.step_weight} max: {analysis.max_weight}"
        else:
            routing = f"Iterations: {analysis.iterations or 1}"
        return (
            ("Target", f"{ref.kind}/{ref.name}"),
            ("Failed checks threshold", str(analysis.threshold)),
            ("Progress deadline", f"{self.spec.progress_deadline_seconds}s"),
            ("Traffic routing", routing),
        )

    def failure_fields(self) -> tuple[tuple[str, str], ...]:
        """What failed, with its numbers: each failing metric of the last analysis, and the count."""
        out: list[tuple[str, str]] = []
        analysis = self.st.analysis
        for m in analysis.metrics if analysis else ():
            if m.verdict != Verdict.FAIL.value:
                continue
            numbers = [f"canary {_num(m.value)}" if m.value is not None else "canary no data"]
            if m.primary is not None:
                numbers.append(f"primary {_num(m.primary)}")
            if m.limit:
                numbers.append(f"limit {m.limit.removeprefix(m.name).strip()}")
            out.append((m.name, ", ".join(numbers)))
        if self.st.failed_checks:
            out.append(("Failed checks", f"{self.st.failed_checks}/{self.spec.analysis.threshold}"))
        return tuple(out)

    def muted(self, kind: WebhookType) -> bool:
        """Flagger's `muteAlert`: a closed gate whose hooks are all muted sends no alert."""
        hooks = self.spec.analysis.hooks(kind)
        return bool(hooks) and all(h.mute_alert for h in hooks)

    def waiting(self, kind: WebhookType | None, message: str, reason: str = "Waiting") -> None:
        """Halted on a gate: an Event, and (Flagger's) a warn alert unless the gate's hooks mute it."""
        quiet = kind is not None and self.muted(kind)
        self.emit(reason, message, alert=None if quiet else AlertSeverity.WARN)

    def set_phase(self, phase: Phase) -> None:
        self.st = replace(self.st, phase=phase)

    def set_weight(self, canary: int, match: bool = False, mirror: bool = False) -> None:
        self.st = replace(self.st, canary_weight=canary)
        self.act(SetWeight(primary=100 - canary, canary=canary, match=match, mirror=mirror,
                           cookie=self.affinity_cookie(canary)))

    def affinity_cookie(self, canary: int) -> str:
        """This run's session-affinity cookie `name=value` (Flagger draws 10 random letters and keeps
        them in status; here they derive from the run's candidate, so a restart finds the same one).
        At weight 0 it is the cookie of the run that just ended, which the router expires."""
        affinity = self.spec.analysis.session_affinity
        candidate = self.st.candidate if canary else (self.old.candidate or self.st.candidate)
        if affinity is None or candidate is None:
            return ""
        seed = f"{candidate.spec}|{candidate.started_at.isoformat() if candidate.started_at else ''}"
        return f"{affinity.cookie_name}={hashlib.sha256(seed.encode()).hexdigest()[:10]}"

    @property
    def mirroring(self) -> bool:
        """Whether the analysis now runs on mirrored traffic: Flagger mirrors during the iterations of
        a blue/green run, and for one interval before the first step of a progressive one."""
        return self.spec.analysis.mirror and self.st.analysis is not None and self.st.canary_weight == 0

    def has_hooks(self, kind: WebhookType) -> bool:
        return bool(self.spec.analysis.hooks(kind))

    def gate(self, kind: WebhookType) -> bool:
        """Whether every webhook of this type said yes; asks the engine to call them if unknown."""
        if kind not in self.obs.hooks:
            raise _Need(AskGate(kind))
        return self.obs.hooks[kind]

    def checks(self, sequential_only: bool = False) -> tuple[CheckResult, ...]:
        if self.obs.checks is None:
            raise _Need(RunChecks(sequential_only))
        return self.obs.checks

    def since_progress(self) -> timedelta:
        start = self.st.last_transition_time or (self.st.candidate.started_at if self.st.candidate else None)
        return self.now - start if start else timedelta(0)

    def deadline_exceeded(self) -> bool:
        return self.since_progress() > timedelta(seconds=self.spec.progress_deadline_seconds)

    def cannot_route(self) -> str | None:
        """Why the release fails for want of a route: a routing problem (a router error, a route
        kind not served, a missing Gateway or Ingress) outlasting progressDeadlineSeconds, counted
        as Flagger counts it, from the last progress (or, before any was recorded, from when the
        problem was first seen). None while there is no problem or time is left. A problem seen
        for the first time (no `since`: no earlier tick stopped on it) never fails a release at
        once, so one failed read after a long wait (a promotion gate held for hours) is not fatal."""
        problem = self.obs.routing
        if problem is None or problem.since is None:
            return None
        deadline = self.spec.progress_deadline_seconds
        start = self.st.last_transition_time or (self.st.candidate.started_at if self.st.candidate else None)
        start = start or problem.since
        if start is None or self.now - start <= timedelta(seconds=deadline):
            return None
        return f"traffic cannot be routed within progressDeadlineSeconds ({deadline}s): {problem.message}"

    def due(self) -> bool:
        """Whether a full analysis interval has passed since the last check (or the last step)."""
        last = self.st.analysis.checked_at if self.st.analysis else None
        last = last or self.st.last_transition_time
        if last is None:
            return True
        elapsed = self.now - last
        if elapsed >= self.interval * (1 - _DUE_SLACK):
            return True
        self.requeue = self.interval - elapsed
        return False

    def look(self) -> None:
        """Between checks, the sequential judge looks every `analysis.lookInterval`: its test is valid
        however often it looks, so a crossing rolls the release back at once, a regression need not
        wait for the step's check. A look that does not cross changes nothing but its time."""
        analysis = self.spec.analysis
        if analysis.look_interval is None:
            return
        look = timedelta(seconds=analysis.look_interval)
        before = self.st.analysis
        last = max((t for t in (before.looked_at if before else None, before.checked_at if before else None,
                                self.st.last_transition_time) if t is not None), default=None)
        if last is not None and self.now - last < look * (1 - _DUE_SLACK):
            self.requeue = min(self.requeue, look - (self.now - last))
            return
        results = self.checks(sequential_only=True)
        crossed = [r for r in results if r.verdict == Verdict.FAIL and r.final and not r.dry_run]
        if crossed:
            self.record(results)
            self.st = replace(self.st, failed_checks=self.st.failed_checks + 1)
            self.rollback(f"{'; '.join(_why(r) for r in crossed)} (conclusive, between checks)")
            return
        self.st = replace(self.st, analysis=replace(before or AnalysisStatus(), looked_at=self.now))
        self.requeue = min(self.requeue, look)

    def take_command(self) -> Command | None:
        cmd = self.st.command
        if cmd is not None:
            self.st = replace(self.st, command=None)
        return cmd

    # -- the state machine -----------------------------------------------------------------------

    def decide(self) -> None:
        if self.spec.suspend:
            return
        phase = self.st.phase
        if phase is None or phase == Phase.INITIALIZING:
            self.initialize()
            return
        if phase == Phase.FAILED and self.st.last_promoted_spec is None:
            self.initialization_failed()
            return
        if phase in (Phase.TERMINATING, Phase.TERMINATED):
            return
        if not self.obs.target.exists:
            if phase in (Phase.PROGRESSING, Phase.WAITING_PROMOTION) and self.deadline_exceeded():
                # Gone in the middle of a run: the run fails (nothing left to scale down).
                self.rollback(f"target {self.spec.target_ref.kind} {self.target_name} not found within "
                              f"progressDeadlineSeconds ({self.spec.progress_deadline_seconds}s)", scale=False)
                return
            self.emit("TargetMissing", f"target {self.spec.target_ref.kind} {self.target_name} not found", warning=True)
            self.requeue = self.quick
            return
        target = self.obs.target.spec_hash
        if self.st.command == Command.RETRY and self.st.hold is not None:
            self.st = replace(self.st, hold=None)  # a person released the held version
        if target == self.st.last_promoted_spec:
            self.at_promoted_spec()
        elif holds(self.st, target):
            self.hold_back()
        elif target != self.st.last_applied_spec:
            self.start_run(restart=phase in RUNNING_PHASES and self.old.queued_at is None)
        elif self.st.command == Command.RETRY and phase in (Phase.FAILED, Phase.REVERTED):
            self.take_command()
            self.emit("Retry", f"retrying the release of {self.target_name} on request")
            self.start_run(restart=False)
        else:
            self.continue_run(phase)

    def initialize(self) -> None:
        self.set_phase(Phase.INITIALIZING)
        self.requeue = self.quick
        if (why := self.cannot_route()) is not None:
            # Nothing was released yet: the primary (where it exists) keeps serving through the Service.
            self.reason = why
            self.st = replace(self.st, phase=Phase.FAILED, last_applied_spec=self.obs.target.spec_hash,
                              candidate=None, canary_weight=0)
            self.act(SetWeight(primary=100, canary=0, best_effort=True))
            self.emit("Failed", f"Initialization of {self.target_name} failed: {why}", warning=True,
                      alert=AlertSeverity.ERROR)
            self.requeue = self.interval
            return
        if not self.obs.target.exists:
            self.emit("TargetMissing", f"target {self.spec.target_ref.kind} {self.target_name} not found", warning=True)
            return
        if not (self.obs.primary.exists and self.obs.primary.ready):
            self.act(InitializePrimary())
            self.requeue = self.poll
            return
        target = self.obs.target.spec_hash
        self.st = replace(
            self.st,
            phase=Phase.INITIALIZED,
            last_applied_spec=target,
            last_promoted_spec=target,
            candidate=None,
            failed_checks=0,
            iterations=0,
        )
        self.set_weight(0)
        self.act(ScaleTarget(up=False))
        self.emit("Initialized", f"Initialization done! {self.target_name}-primary serves all traffic",
                  alert=AlertSeverity.INFO, fields=self.target_fields())
        self.requeue = self.interval

    def initialization_failed(self) -> None:
        """Failed before anything was promoted (it could not route): a new spec (the Canary edited,
        or a new target revision) or `rollout retry` initializes again; until then nothing happens."""
        edited = self.obs.generation is not None and self.obs.generation != self.old.observed_generation
        changed = self.obs.target.exists and self.obs.target.spec_hash != self.st.last_applied_spec
        if self.take_command() == Command.RETRY or edited or changed:
            # A fresh start: the deadline counts from now. (No Event here: one would be recorded with
            # the initialization after it, which a router still failing would then repeat every tick.)
            self.st = replace(self.st, last_transition_time=self.now)
            self.initialize()

    def at_promoted_spec(self) -> None:
        """The target equals what the primary serves: nothing to release."""
        phase = self.st.phase
        self.take_command()
        if phase == Phase.FAILED and self.reverts_in_git and self.st.candidate is not None and self.st.revert is None:
            # Back on the promoted spec with no revert recorded: a revert may have been pushed by an
            # operator killed before it could record it. The writer finds its own commit, or says why not.
            self.failed()
        elif phase == Phase.REVERTING or (phase == Phase.FAILED and self.pull_request_pending):
            revert = self.st.revert or RevertStatus()
            outcome = self.obs.revert
            if outcome is not None and outcome.state in (RevertState.COMMITTED, RevertState.PUSHED):
                # Finished after a restart, and applied meanwhile: keep what the writer found.
                revert = RevertStatus(outcome.state, outcome.commit, outcome.reverts, outcome.message, outcome.branch,
                                      outcome.pull_request or revert.pull_request)
                self.reverted_in_git(outcome.commit, outcome.state, outcome.branch)
            self.st = replace(self.st, phase=Phase.REVERTED, revert=replace(revert, state=RevertState.APPLIED))
            self.st = end_run(self.st, RunOutcome.REVERTED, self.now, reverted=True)
            self.emit("Reverted", f"the revert was applied: {self.target_name} is back to the promoted spec",
                      alert=AlertSeverity.INFO)
        elif phase == Phase.FAILED and self.st.hold is not None and self.st.last_applied_spec == self.st.hold.spec:
            # Put back on the promoted spec by other hands: the failed version coming back from here
            # on is a comeback, and held.
            self.st = replace(self.st, last_applied_spec=None)
        elif phase in RUNNING_PHASES:
            self.set_weight(0)
            self.act(ScaleTarget(up=False))
            self.st = replace(self.st, phase=Phase.INITIALIZED, candidate=None, last_applied_spec=None)
            self.emit("Cancelled", f"{self.target_name} returned to the promoted spec; release cancelled")

    def start_run(self, restart: bool) -> None:
        target = self.obs.target
        assert target.spec_hash is not None
        if restart:
            self.emit("Restart", f"New revision detected! Restarting analysis for {self.target_name}")
        if self.st.phase in (Phase.FAILED, Phase.REVERTING):
            # A failed run whose revert never landed ends here, when a new one takes its place.
            self.st = end_run(self.st, RunOutcome.FAILED, self.now)
        self.st = replace(
            self.st,
            candidate=Candidate(spec=target.spec_hash, revision=target.revision, started_at=self.now,
                                committed_at=target.committed_at),
            last_applied_spec=target.spec_hash,
            failed_checks=0,
            iterations=0,
            analysis=None,
            revert=None,
            switched_at=None,
            command=None if self.st.command == Command.RETRY else self.st.command,
        )
        if restart or self.st.canary_weight:
            self.set_weight(0)
        if self.has_hooks(WebhookType.CONFIRM_ROLLOUT) and not self.gate(WebhookType.CONFIRM_ROLLOUT):
            self.set_phase(Phase.WAITING)
            self.waiting(WebhookType.CONFIRM_ROLLOUT,
                         f"Halt {self.target_name} advancement: waiting for rollout approval")
            return
        self.begin()

    def begin(self) -> None:
        if self.old.phase not in SLOT_PHASES and not self.admitted():
            return
        if self.old.queued_at is not None and self.st.candidate is not None:
            # The run starts when it leaves the queue, not when it joined it.
            self.st = replace(self.st, candidate=replace(self.st.candidate, started_at=self.now))
        self.set_phase(Phase.PROGRESSING)
        self.act(ScaleTarget(up=True))
        self.emit("Progressing", f"New revision detected! Scaling up {self.target_name}",
                  alert=AlertSeverity.INFO, fields=self.target_fields())
        self.requeue = self.poll

    def admitted(self) -> bool:
        """Whether this new run may start now (the engine's answer on the operator's cap); when it
        may not, the release waits in the queue, in the place it took when it first asked."""
        slot = self.obs.slot
        if slot is None:
            raise _Need(AskSlot())
        if slot.granted:
            return True
        joined = self.st.queued_at is None
        self.set_phase(Phase.WAITING)
        self.st = replace(self.st, queued_at=self.st.queued_at or self.now)
        self.queue_message = queued_message(slot)
        if joined:
            self.emit(QUEUED, f"{self.target_name} {self.queue_message}")
        self.requeue = look_again(slot, self.interval)
        return False

    def continue_run(self, phase: Phase) -> None:
        if phase == Phase.WAITING:
            if self.take_command() == Command.ABORT:
                self.rollback("aborted on request")
            elif self.st.queued_at is not None or self.gate(WebhookType.CONFIRM_ROLLOUT):
                # A queued release passed its confirm-rollout gate before it joined the queue.
                self.begin()
        elif phase in (Phase.PROGRESSING, Phase.WAITING_PROMOTION):
            self.analyse()
        elif phase == Phase.PROMOTING:
            self.promoting()
        elif phase == Phase.FINALISING:
            self.finalising()
        elif phase == Phase.FAILED:
            self.failed()
        elif phase == Phase.REVERTING:
            self.reverting()
        else:
            self.take_command()

    # -- analysis --------------------------------------------------------------------------------

    def analyse(self) -> None:
        self._analyse()
        look = self.spec.analysis.look_interval
        if look is not None and self.st.phase == Phase.PROGRESSING:
            # The sequential judge's next look comes before the next check (see `look`).
            self.requeue = min(self.requeue, timedelta(seconds=look))

    def _analyse(self) -> None:
        analysis = self.spec.analysis
        command = self.take_command()
        if command == Command.ABORT:
            self.rollback("aborted on request")
            return
        if self.has_hooks(WebhookType.ROLLBACK) and self.gate(WebhookType.ROLLBACK):
            self.rollback("rollback webhook asked for a rollback")
            return
        if (why := self.cannot_route()) is not None:
            self.rollback(why, route_lost=True)
            return
        if not (self.obs.target.ready and self.obs.primary.ready):
            if self.deadline_exceeded():
                which = self.target_name if not self.obs.target.ready else f"{self.target_name}-primary"
                self.rollback(
                    f"{which} not ready within progressDeadlineSeconds ({self.spec.progress_deadline_seconds}s)"
                )
            else:
                self.requeue = self.poll
            return
        if self.st.failed_checks >= analysis.threshold:
            self.rollback(f"failed checks threshold reached ({self.st.failed_checks})")
            return
        if command == Command.PROMOTE:
            self.emit("Promote", f"promotion of {self.target_name} requested: analysis skipped")
            self.promote()
            return
        if self.spec.skip_analysis:
            self.promote()
            return
        expected = self.expected_weights()
        if self.obs.weights is not None and self.obs.weights != expected:
            # The route drifted (or a write was lost): put it back before judging anything on it.
            self.act(SetWeight(primary=expected[0], canary=expected[1], match=self.ab_testing,
                               mirror=self.mirroring, cookie=self.affinity_cookie(expected[1])))
            self.requeue = self.quick
            return
        first = self.st.analysis is None and self.st.canary_weight == 0 and self.st.iterations == 0
        if first and self.st.failed_checks == 0:
            # Nothing is judged before the first step: it comes as soon as the canary is ready.
            self.start_traffic()
            return
        if not self.due():
            self.look()
            return
        if first:
            self.start_traffic()  # a pre-rollout gate that said no is asked again once per interval
            return
        results = self.checks()
        score = score_check(analysis, results)
        self.record(results, score)
        shadow = [r for r in results if r.dry_run and r.verdict == Verdict.FAIL]
        if shadow:
            # A dry-run metric is judged and reported like any other, but never decides the release.
            self.emit("DryRun", "; ".join(f"dry run: would have failed: {_why(r)}" for r in shadow))
        failed = [r for r in results if r.verdict == Verdict.FAIL and not r.dry_run]
        missing = [r for r in results if r.verdict == Verdict.NO_DATA and not r.dry_run]
        if score is not None:
            # Kayenta's score decides the check: a metric counts through it, except a final failure
            # (a critical metric's, or a sequential test's that crossed its boundary).
            metrics = {m.name for m in analysis.metrics}
            failed = [r for r in failed if r.final or r.name not in metrics]
            missing = [r for r in missing if r.name not in metrics]
            if not failed and score.classification == ScoreClass.FAIL:
                failed = [CheckResult("score", Verdict.FAIL, score.value, reason=score.reason)]
            elif not failed and not missing and score.classification == ScoreClass.MARGINAL:
                before = self.old.analysis
                if before is None or before.score_classification != ScoreClass.MARGINAL.value:
                    self.emit("Marginal", f"Halt advancement for one interval: {score.reason}", warning=True)
                    return
                # Held once already: a step that stays marginal is a failed check, so a canary that
                # never reaches `pass` is rolled back after `threshold` of them rather than held forever.
                failed = [CheckResult("score", Verdict.FAIL, score.value,
                                      reason=f"{score.reason}, marginal again after one interval's hold")]
        if failed:
            self.st = replace(self.st, failed_checks=self.st.failed_checks + 1)
            reasons = "; ".join(_why(r) for r in failed)
            if any(r.final for r in failed):
                self.rollback(f"{reasons} (conclusive)")
            elif self.st.failed_checks >= analysis.threshold:
                self.rollback(f"{reasons} (failed checks {self.st.failed_checks}/{analysis.threshold})")
            else:
                self.emit("Halted", f"Halt advancement: {reasons}", warning=True)
            return
        if missing:
            names = ", ".join(r.name for r in missing)
            if self.deadline_exceeded():
                self.rollback(f"no data for {names} within progressDeadlineSeconds")
            else:
                self.emit("NoData", f"Halt advancement: no data for {names}", warning=True)
            return
        if analysis.steps:
            if self.st.canary_weight < analysis.steps[-1]:
                self.advance_weight()
            else:
                self.promotion_gate()
            return
        self.st = replace(self.st, iterations=self.st.iterations + 1)
        if self.st.iterations >= (analysis.iterations or 1):
            self.promotion_gate()

    @property
    def ab_testing(self) -> bool:
        return bool(self.spec.analysis.match) and (self.st.analysis is not None or self.st.iterations > 0)

    def expected_weights(self) -> tuple[int, int]:
        return (100 - self.st.canary_weight, self.st.canary_weight)

    def start_traffic(self) -> None:
        """The first look of a run: pre-rollout hooks, then the first step or the A/B route."""
        if self.has_hooks(WebhookType.PRE_ROLLOUT) and not self.gate(WebhookType.PRE_ROLLOUT):
            self.st = replace(self.st, failed_checks=self.st.failed_checks + 1)
            threshold = self.spec.analysis.threshold
            if self.st.failed_checks >= threshold:
                self.rollback(f"pre-rollout webhook failed (failed checks {self.st.failed_checks}/{threshold})")
            else:
                self.emit("Halted", f"Halt advancement: pre-rollout webhook failed (failed checks "
                          f"{self.st.failed_checks}/{threshold})", warning=True, alert=AlertSeverity.WARN,
                          fields=self.failure_fields())
            return
        self.st = replace(self.st, analysis=AnalysisStatus(checked_at=self.now))
        if self.spec.analysis.mirror:
            self.set_weight(0, mirror=True)
            self.emit("Progressing", f"Mirroring traffic to {self.target_name}")
        elif self.spec.analysis.steps:
            self.advance_weight()
        elif self.spec.analysis.match:
            self.set_weight(0, match=True)
            self.emit("Progressing", f"Routing matched requests to {self.target_name} (A/B testing)")

    def record(self, results: tuple[CheckResult, ...], score: Score | None = None) -> None:
        verdicts = {r.verdict for r in results if not r.dry_run}
        verdict = next(
            (v for v in (Verdict.FAIL, Verdict.NO_DATA) if v in verdicts), Verdict.PASS
        )
        metrics = tuple(
            MetricStatus(r.name, r.verdict.value, r.value, r.primary, r.limit, r.reason, dry_run=r.dry_run,
                         classification=r.classification, effect_size=r.effect_size, critical=r.critical)
            for r in results
        )
        self.st = replace(self.st, analysis=AnalysisStatus(
            verdict.value, self.now, metrics, score=score.value if score else None,
            score_classification=score.classification.value if score else ""))

    def advance_weight(self) -> None:
        if self.has_hooks(WebhookType.CONFIRM_TRAFFIC_INCREASE) and not self.gate(
            WebhookType.CONFIRM_TRAFFIC_INCREASE
        ):
            self.waiting(WebhookType.CONFIRM_TRAFFIC_INCREASE,
                         f"Halt {self.target_name} advancement: waiting for traffic increase approval")
            return
        step = next(w for w in self.spec.analysis.steps if w > self.st.canary_weight)
        self.set_weight(step)
        if self.st.analysis is not None:
            self.st = replace(self.st, analysis=replace(self.st.analysis, checked_at=self.now))
        self.emit("Progressing", f"Advance {self.target_name} canary weight {step}")

    def promotion_gate(self) -> None:
        held = isinstance(self.spec, BlueGreenSpec) and not self.spec.auto_promotion
        if not held and self.has_hooks(WebhookType.CONFIRM_PROMOTION):
            held = not self.gate(WebhookType.CONFIRM_PROMOTION)
        if held:
            if self.st.phase != Phase.WAITING_PROMOTION:
                self.set_phase(Phase.WAITING_PROMOTION)
                gate = WebhookType.CONFIRM_PROMOTION if self.has_hooks(WebhookType.CONFIRM_PROMOTION) else None
                self.waiting(gate, f"Halt {self.target_name} advancement: waiting for promotion", "WaitingPromotion")
            return
        self.promote()

    def promote(self) -> None:
        self.set_phase(Phase.PROMOTING)
        if self.is_bluegreen:
            # Switch all live traffic to the tested version at once, then update the primary behind it.
            self.set_weight(100)
            self.emit("Promoting", f"Switching traffic to {self.target_name}; copying its spec to the primary")
        else:
            self.emit("Promoting", f"Copying {self.target_name} template spec to {self.target_name}-primary")
        self.act(PromotePrimary())
        self.requeue = self.poll

    def promoting(self) -> None:
        self.take_command()
        candidate = self.st.candidate.spec if self.st.candidate else None
        if not (self.obs.primary.ready and self.obs.primary.spec_hash == candidate):
            self.act(PromotePrimary())
            self.requeue = self.poll
            return
        step = self.spec.analysis.step_weight_promotion
        if not self.is_bluegreen and step and self.st.canary_weight > 0:
            weight = max(0, self.st.canary_weight - step)
            self.set_weight(weight)
            if weight > 0:
                self.requeue = self.quick
                return
        elif self.st.canary_weight or self.is_bluegreen or self.spec.analysis.mirror:
            self.set_weight(0)  # with mirror, this also stops the mirroring
        if self.is_bluegreen:
            self.st = replace(self.st, switched_at=self.now)
        self.set_phase(Phase.FINALISING)
        self.emit("Finalising", f"Routing all traffic to {self.target_name}-primary")
        self.requeue = timedelta(0)  # nothing to wait for: Succeeded (or the scale-down delay) follows

    def finalising(self) -> None:
        self.take_command()
        if isinstance(self.spec, BlueGreenSpec) and self.st.switched_at is not None:
            delay = timedelta(seconds=self.spec.scale_down_delay_seconds)
            if self.now - self.st.switched_at < delay:
                self.requeue = delay - (self.now - self.st.switched_at)
                return
        candidate = self.st.candidate.spec if self.st.candidate else self.st.last_applied_spec
        self.st = replace(self.st, phase=Phase.SUCCEEDED, last_promoted_spec=candidate, canary_weight=0)
        self.st = end_run(self.st, RunOutcome.SUCCEEDED, self.now)
        self.st = replace(self.st, hold=None)  # another version is promoted: the failed one is history
        self.act(ScaleTarget(up=False), CallWebhooks(WebhookType.POST_ROLLOUT))
        self.emit("Succeeded", f"Promotion completed! {self.target_name} is promoted", alert=AlertSeverity.INFO)

    # -- failure and revert ----------------------------------------------------------------------

    def rollback(self, reason: str, route_lost: bool = False, scale: bool = True) -> None:
        self.reason = reason
        self.st = replace(self.st, canary_weight=0)
        # When the route is what failed, sending traffic back is tried but must not stop the failure.
        self.act(SetWeight(primary=100, canary=0, best_effort=route_lost))
        self.st = replace(self.st, phase=Phase.FAILED)
        # The route back is carried out before the status is written (a router error stops the tick
        # first), so traffic is back now; only a best-effort route back is not known to have landed.
        self.st = failure_detected(self.st, self.now, restored=not route_lost)
        self.st = hold_failed(self.st, self.obs.target.images, self.now)
        if not self.reverts_in_git:
            self.st = end_run(self.st, RunOutcome.FAILED, self.now)
        if scale:
            self.act(ScaleTarget(up=False))
        self.act(CallWebhooks(WebhookType.POST_ROLLOUT))
        self.emit("Failed", f"Canary failed! Rolling back {self.target_name}: {reason}", warning=True,
                  alert=AlertSeverity.ERROR, fields=self.failure_fields())
        self.requeue = min(self.quick, _CONFIRM) if self.reverts_in_git else self.quick

    @property
    def reverts_in_git(self) -> bool:
        git = self.spec.git
        return git is not None and git.revert != RevertMode.OFF

    def failed(self) -> None:
        self.take_command()
        already = self.st.revert is not None and self.st.revert.state == RevertState.SKIPPED
        if not self.reverts_in_git or already or self.st.candidate is None:
            return
        if self.pull_request_pending:
            self.follow_pull_request()
            return
        if self.obs.weights not in (None, (100, 0)):
            # Git is only touched once traffic is verifiably back on the primary.
            self.set_weight(0)
            self.requeue = self.quick
            return
        if self.obs.weights == (100, 0):
            self.st = traffic_restored(self.st, self.now)
        reason = self.failure_reason()
        revision = (self.st.candidate.revision if self.st.candidate else None) or self.target_name
        self.st = replace(self.st, phase=Phase.REVERTING, revert=RevertStatus(state=RevertState.PENDING))
        self.act(self.revert_action(reason))
        self.emit("Reverting", f"Reverting {revision} in Git: {reason}")
        self.requeue = self.quick

    def reverted_in_git(self, commit: str | None, state: RevertState, branch: str | None) -> None:
        """The revert commit was written: an Event, and an error alert linking the commit (the
        release failed; this is how its owners learn Git was changed)."""
        candidate = self.st.candidate.revision if self.st.candidate else None
        fields = [("Revert commit", commit or "?")]
        if candidate:
            fields.append(("Reverted", candidate))
        if branch:
            fields.append(("Branch", branch))
        self.emit("GitReverted", f"revert commit {commit} {state.value.lower()}", alert=AlertSeverity.ERROR,
                  fields=tuple(fields), commit=commit)

    def failure_reason(self) -> str:
        promoted = self.st.condition("Promoted")
        return promoted.message if promoted and promoted.status == "False" else "canary analysis failed"

    def revert_action(self, reason: str) -> RevertInGit:
        candidate = self.st.candidate
        return RevertInGit(
            candidate_revision=candidate.revision if candidate else None,
            promoted_revision=self.obs.primary.revision,
            reason=reason,
        )

    def reverting(self) -> None:
        self.take_command()
        self.requeue = self.quick
        outcome = self.obs.revert
        revert = self.st.revert or RevertStatus()
        if outcome is not None:
            # The writer tries again every interval: its Event says so each time, the alert once per reason.
            again = revert.state == RevertState.FAILED and revert.message == outcome.message
            revert = RevertStatus(outcome.state, outcome.commit, outcome.reverts, outcome.message, outcome.branch,
                                  outcome.pull_request)
            self.st = replace(self.st, revert=revert)
            if outcome.pull_request is not None and outcome.state == RevertState.PUSHED:
                self.pull_request_opened()
            elif outcome.state == RevertState.FAILED:
                self.emit("GitRevertFailed", f"revert not written yet: {outcome.message}", warning=True,
                          alert=None if again else AlertSeverity.ERROR)
                self.requeue = self.interval
            elif outcome.state == RevertState.SKIPPED:
                self.set_phase(Phase.FAILED)
                self.st = end_run(self.st, RunOutcome.FAILED, self.now)
                self.emit("GitRevertSkipped", outcome.message, warning=True, alert=AlertSeverity.WARN)
            elif outcome.state in (RevertState.COMMITTED, RevertState.PUSHED):
                self.reverted_in_git(outcome.commit, outcome.state, outcome.branch)
                if self.spec.git is not None and self.spec.git.source and not outcome.branch:
                    self.requeue = min(self.quick, _CONFIRM)  # our GitSource applies it right away
            return
        if revert.state in (RevertState.PENDING, RevertState.FAILED):
            self.act(self.revert_action(self.failure_reason()))

    # -- the revert as a pull request, and the hold on the failed version -------------------------

    @property
    def pull_request_pending(self) -> bool:
        """Failed, its revert waiting in a pull request (git.push: pullRequest) to be merged and applied."""
        revert = self.st.revert
        return revert is not None and revert.pull_request is not None and revert.state == RevertState.PUSHED

    def pull_request_opened(self) -> None:
        """The revert's pull request is open: the release stays Failed (traffic on the primary) with a
        RevertPending condition until the merged revert is applied; its host is asked every interval."""
        revert = self.st.revert
        assert revert is not None and revert.pull_request is not None
        pr = revert.pull_request
        self.set_phase(Phase.FAILED)
        self.reverted_in_git(revert.commit, revert.state, revert.branch)
        self.emit("RevertPullRequest", f"revert pull request {pr.url} is {pr.state.value.lower()}: "
                  f"{self.target_name} stays on the primary until it is merged and applied")
        self.requeue = self.interval

    def follow_pull_request(self) -> None:
        """Ask the writer (idempotent: it finds the branch and its request) how the request stands."""
        self.requeue = self.interval
        outcome = self.obs.revert
        old = self.st.revert
        assert old is not None and old.pull_request is not None
        if outcome is None:
            self.act(self.revert_action(self.failure_reason()))
            return
        pr = outcome.pull_request or old.pull_request
        if outcome.state == RevertState.FAILED:
            # The host did not answer: keep what is known, say why in the message.
            self.st = replace(self.st, revert=replace(old, message=outcome.message))
            return
        self.st = replace(self.st, revert=replace(old, pull_request=pr, message=outcome.message or old.message,
                                                  commit=outcome.commit or old.commit))
        if pr.state != old.pull_request.state:
            self.emit("RevertPullRequest", f"revert pull request {pr.url} is {pr.state.value.lower()}",
                      warning=pr.state == PullRequestState.CLOSED)
        if pr.state == PullRequestState.MERGED:
            self.requeue = self.quick  # the merged revert is applied soon: look again soon

    def hold_back(self) -> None:
        """The held version came back: no run; a run of another version under way is cancelled."""
        hold = self.st.hold
        assert hold is not None
        self.held = held_message(hold, self.obs.target.revision, self.spec.target_ref.name)
        old = self.old.condition("Held")
        if self.st.phase in RUNNING_PHASES:
            self.set_weight(0)
            self.st = replace(self.st, phase=Phase.INITIALIZED, candidate=None, last_applied_spec=None)
        if old is None or old.status != "True" or old.message != self.held:
            self.act(ScaleTarget(up=False))
            self.emit("Held", self.held, warning=True, alert=AlertSeverity.WARN)
        self.take_command()

    # -- result ----------------------------------------------------------------------------------

    def decision(self) -> Decision:
        st = self.st
        old = self.old
        if (st.phase, st.canary_weight, st.iterations) != (old.phase, old.canary_weight, old.iterations):
            st = replace(st, last_transition_time=self.now)
        if st.phase != Phase.WAITING and st.queued_at is not None:
            st = replace(st, queued_at=None)  # out of the queue: started, cancelled or aborted
        st = self.conditions(st)
        st = held_condition(st, self.held, self.now)
        return Decision(actions=tuple(self.actions), status=st, requeue_after=max(self.requeue, timedelta(0)))

    def conditions(self, st: ReleaseStatus) -> ReleaseStatus:
        phase = st.phase
        if phase is None:
            return st
        if phase in (Phase.INITIALIZED, Phase.SUCCEEDED):
            status = "True"
        elif phase in (Phase.FAILED, Phase.REVERTING, Phase.REVERTED):
            status = "False"
        else:
            status = "Unknown"
        old = st.condition("Promoted")
        reason = phase.value
        if phase == Phase.WAITING and st.queued_at is not None:
            reason = QUEUED
            message = self.queue_message or (old.message if old else "")
        elif self.reason:
            message = self.reason
        elif old is not None and (old.status == status or phase == self.old.phase):
            # Failed -> Reverting -> Reverted keeps the reason the release failed.
            message = old.message
        else:
            message = self.message or phase.value
        cond = Condition("Promoted", status, reason, message, self.now)
        st = st.with_condition(cond)
        pr = st.revert.pull_request if st.revert is not None else None
        if pr is not None or st.condition("RevertPending") is not None:
            pending = phase == Phase.FAILED and pr is not None and pr.state != PullRequestState.CLOSED
            st = st.with_condition(Condition(
                "RevertPending", "True" if pending else "False",
                f"PullRequest{pr.state.value}" if pr is not None and phase == Phase.FAILED else phase.value,
                f"revert pull request {pr.url} is {pr.state.value.lower()}" if pr is not None else "", self.now))
        if phase == Phase.REVERTING and st.revert is not None:
            failed = st.revert.state == RevertState.FAILED
            st = st.with_condition(
                Condition(
                    "GitRevertFailed",
                    "True" if failed else "False",
                    "PushFailed" if failed else "Ok",
                    st.revert.message if failed else "",
                    self.now,
                )
            )
        return st


def _num(value: float) -> str:
    return f"{value:.6g}"


def _why(result: CheckResult) -> str:
    """`<metric>: <reason>`, without naming the metric twice when the judge's reason already does."""
    reason = result.reason or "failed"
    return reason if reason.startswith(f"{result.name} ") or reason.startswith(f"{result.name}:") \
        else f"{result.name}: {reason}"
