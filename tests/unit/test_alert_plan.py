"""The planner sends `analysis.alerts` Flagger's messages: on every failure path, with the numbers,
and (severity info) on progress and promotion; an alert is an action recorded with its Event."""

from __future__ import annotations

from dataclasses import replace

from rollout.api.spec import AlertRef, AlertSeverity, GitSpec, Webhook, WebhookType
from rollout.api.status import Phase, RevertState
from rollout.core import Alert, Emit, RevertInGit, RevertOutcome
from rollout.core.actions import from_record, to_record
from tests.unit.test_plan import canary, started
from tests.unit.world import World, failing

ON_CALL = (AlertRef("on-call", "slack", None, AlertSeverity.INFO),)


def alerting(**analysis: object) -> object:
    spec = canary(**analysis)
    return replace(spec, analysis=replace(spec.analysis, alerts=ON_CALL))


def alerts(world: World) -> list[Alert]:
    return [a for a in world.actions if isinstance(a, Alert)]


def test_without_alerts_no_alert_is_planned() -> None:
    world = started(World(canary(threshold=1)))
    world.tick()
    world.checks = lambda w: failing()
    world.run_until(Phase.FAILED)
    assert alerts(world) == []


def test_a_promotion_sends_info_at_initialization_start_and_end() -> None:
    world = started(World(alerting()))  # type: ignore[arg-type]
    world.run_until(Phase.SUCCEEDED)
    sent = alerts(world)
    assert [(a.severity, a.message.split("!")[0]) for a in sent] == [
        (AlertSeverity.INFO, "Initialization done"),
        (AlertSeverity.INFO, "New revision detected"),
        (AlertSeverity.INFO, "Promotion completed"),
    ]
    # Flagger's metadata facts come with the start of a run.
    assert dict(sent[1].fields) == {"Target": "Deployment/podinfo", "Failed checks threshold": "5",
                                   "Progress deadline": "600s", "Traffic routing": "Weight step: 10 max: 50"}


def test_a_rollback_sends_an_error_naming_the_failed_metric_and_its_numbers() -> None:
    world = started(World(alerting(threshold=2)))  # type: ignore[arg-type]
    world.tick()
    world.checks = lambda w: failing()
    world.run_until(Phase.FAILED)
    error = [a for a in alerts(world) if a.severity == AlertSeverity.ERROR]
    assert len(error) == 1 and error[0].reason == "Failed"
    assert "Rolling back podinfo" in error[0].message and "90% < 99%" in error[0].message
    assert "failed checks 2/2" in error[0].message
    assert error[0].fields == (("request-success-rate", "canary 90, primary 99.9, limit >= 99"),
                               ("Failed checks", "2/2"))
    # The alert follows its Event in the same decision.
    decision = next(d for d in world.log if d.status.phase == Phase.FAILED)
    kinds = [type(a) for a in decision.actions]
    assert kinds.index(Alert) == kinds.index(Emit) + 1


def test_the_progress_deadline_sends_an_error() -> None:
    world = World(alerting(progress_deadline_seconds=120))  # type: ignore[arg-type]
    world.run_until(Phase.INITIALIZED)
    world.release("v2", "c2")
    world.target_ready = False
    world.run_until(Phase.FAILED, limit=200)  # looked at every second while the canary scales up
    last = alerts(world)[-1]
    assert last.severity == AlertSeverity.ERROR and "progressDeadlineSeconds (120s)" in last.message


def test_a_failing_pre_rollout_webhook_warns_then_errors() -> None:
    spec = alerting(threshold=2)
    spec = replace(spec, analysis=replace(  # type: ignore[attr-defined]
        spec.analysis, webhooks=(Webhook("load", "http://hooks.test/", WebhookType.PRE_ROLLOUT),)))  # type: ignore[attr-defined]
    world = started(World(spec, hooks={WebhookType.PRE_ROLLOUT: False}))  # type: ignore[arg-type]
    world.tick()
    world.tick()
    assert world.status.phase == Phase.FAILED
    tail = [(a.severity, a.message) for a in alerts(world)[-2:]]
    assert tail == [
        (AlertSeverity.WARN, "Halt advancement: pre-rollout webhook failed (failed checks 1/2)"),
        (AlertSeverity.ERROR, "Canary failed! Rolling back podinfo: pre-rollout webhook failed (failed checks 2/2)"),
    ]


def test_a_pushed_revert_sends_its_commit() -> None:
    world = started(World(alerting(threshold=1, git=GitSpec(source="app"))))  # type: ignore[arg-type]
    world.tick()
    world.checks = lambda w: failing()
    world.run_until(Phase.REVERTING)
    reverted = alerts(world)[-1]
    assert (reverted.severity, reverted.commit) == (AlertSeverity.ERROR, "r1")
    assert reverted.message == "revert commit r1 pushed"
    assert dict(reverted.fields) == {"Revert commit": "r1", "Reverted": "c2"}
    world.release("v1", "r1")
    world.run_until(Phase.REVERTED)
    assert alerts(world)[-1].severity == AlertSeverity.INFO and "revert was applied" in alerts(world)[-1].message


def test_a_revert_that_cannot_be_written_alerts_once_per_reason() -> None:
    world = started(World(alerting(threshold=1, git=GitSpec(url="https://git.test/app.git"))))  # type: ignore[arg-type]
    world.tick()
    world.checks = lambda w: failing()
    answers = iter(["remote unreachable"] * 3 + ["permission denied"])

    def refused(a: RevertInGit) -> RevertOutcome:
        return RevertOutcome(RevertState.FAILED, message=next(answers, "permission denied"))

    world.revert_outcome = refused
    world.run_until(Phase.REVERTING)
    for _ in range(5):
        world.tick()
    failed = [a.message for a in alerts(world) if "not written" in a.message]
    assert failed == ["revert not written yet: remote unreachable", "revert not written yet: permission denied"]
    events = [a for a in world.actions if isinstance(a, Emit) and a.reason == "GitRevertFailed"]
    assert len(events) > len(failed)  # the Event still says it at every try


def test_waiting_on_a_gate_warns_unless_its_hooks_mute_alerts() -> None:
    for mute, expected in ((False, [AlertSeverity.WARN]), (True, [])):
        spec = alerting()
        gate = Webhook("approve", "http://hooks.test/", WebhookType.CONFIRM_PROMOTION, mute_alert=mute)
        spec = replace(spec, analysis=replace(spec.analysis, webhooks=(gate,)))  # type: ignore[attr-defined]
        world = started(World(spec, hooks={WebhookType.CONFIRM_PROMOTION: False}))  # type: ignore[arg-type]
        world.run_until(Phase.WAITING_PROMOTION)
        world.tick()
        assert [a.severity for a in alerts(world) if "waiting for promotion" in a.message] == expected


def test_an_alert_is_recorded_before_it_is_sent_and_finished_once_after_a_kill() -> None:
    world = started(World(alerting(threshold=1)))  # type: ignore[arg-type]
    world.tick()
    world.checks = lambda w: failing()
    world.kill_at_recorded = True  # dies after recording the failure, before its first effect
    world.tick()
    assert world.status.intent is not None
    assert any(r["kind"] == "Alert" for r in world.status.intent.actions)
    before = len(alerts(world))
    world.tick()  # the restarted operator finishes the record, then decides again
    sent = [(a, e) for a, e in world.effects if isinstance(a, Alert) and a.severity == AlertSeverity.ERROR]
    assert len(alerts(world)) == before + 1 and len(sent) == 1 and sent[0][1] is not None
    for _ in range(3):
        world.tick()
    assert len([a for a in alerts(world) if a.severity == AlertSeverity.ERROR]) == 1


def test_an_alert_survives_the_status_record() -> None:
    alert = Alert(AlertSeverity.ERROR, "m", (("request-success-rate", "canary 90"),), commit="abc", reason="Failed")
    record = to_record(alert)
    assert record == {"kind": "Alert", "severity": "error", "message": "m",
                      "fields": [["request-success-rate", "canary 90"]], "commit": "abc", "reason": "Failed"}
    assert from_record(record) == alert
