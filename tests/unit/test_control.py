"""`rollout status NAME`: one release in full, from its status alone."""

from __future__ import annotations

import copy

from rollout.cli.releases import detail, table

REVERTED = {
    "kind": "Canary",
    "metadata": {"name": "podinfo", "namespace": "demo"},
    "spec": {"provider": "gatewayapi", "analysis": {"interval": "5s", "threshold": 2}},
    "status": {
        "phase": "Reverted", "canaryWeight": 0, "failedChecks": 2,
        "lastTransitionTime": "2026-12-03T06:24:14Z",
        "candidate": {"spec": "5d8f", "revision": "9835a6fb86f2bdfd5f48c510a51015f5734be5bd",
                      "startedAt": "2026-12-03T06:23:57Z"},
        "revert": {"state": "Applied", "commit": "ea1e9dbb32d4f9cd5fb2287c999de6e311aef118",
                   "reverts": ["9835a6fb86f2bdfd5f48c510a51015f5734be5bd"],
                   "message": "reverted 9835a6f in ea1e9db (git revert)", "branch": None},
        "analysis": {"verdict": "fail", "checkedAt": "2026-12-03T06:24:12Z", "metrics": [
            {"name": "request-success-rate", "verdict": "fail", "value": 94.9, "primary": 100.0,
             "limit": "request-success-rate >= 99"},
            {"name": "request-duration", "verdict": "pass", "value": 73.05, "primary": 84.09,
             "limit": "request-duration <= 500"}]},
        "conditions": [
            {"type": "Promoted", "status": "False", "reason": "Reverted",
             "message": "request-success-rate 94.9 < min 99 (failed checks 2/2)"},
            {"type": "Ready", "status": "True", "reason": "Reconciled", "message": ""},
            {"type": "GitRevertFailed", "status": "False", "reason": "Ok", "message": ""}],
    },
}


def test_a_reverted_release_says_why_what_was_judged_and_what_git_holds() -> None:
    lines = detail(REVERTED).splitlines()
    assert lines[0] == "Canary demo/podinfo (provider gatewayapi, judge threshold, every 5s)"
    assert lines[1:] == [
        "  phase       Reverted, since 2026-12-03T06:24:14Z",
        "  traffic     0% to the canary; failed checks 2/2",
        "  why         request-success-rate 94.9 < min 99 (failed checks 2/2)",
        "  candidate   revision 9835a6fb86f2, started 2026-12-03T06:23:57Z",
        "  git         Applied ea1e9db: reverted 9835a6f in ea1e9db (git revert)",
        "  metrics     request-success-rate  canary 94.9  primary 100  fail  (request-success-rate >= 99)",
        "              request-duration      canary 73.05  primary 84.09  pass  (request-duration <= 500)",
        "  conditions  Promoted=False Reverted: request-success-rate 94.9 < min 99 (failed checks 2/2)",
        "              Ready=True Reconciled",
        "              GitRevertFailed=False Ok",
    ]


def test_a_new_release_without_status_still_shows() -> None:
    fresh = {"kind": "BlueGreen", "metadata": {"name": "billing", "namespace": "payments"}, "spec": {}}
    assert detail(fresh).splitlines() == [
        "BlueGreen payments/billing (provider kubernetes, judge threshold, every 1m)",
        "  phase       -",
        "  traffic     0% to the canary; failed checks 0/1",
    ]
    assert "billing  BlueGreen  kubernetes  -" in table([fresh])


def test_a_queued_release_shows_its_place_in_the_table_and_in_full() -> None:
    message = "waiting for a release slot: 2nd of 5 in the queue, 10 releases running, --max-concurrent-releases 10"
    queued = {
        "kind": "Canary", "metadata": {"name": "orders", "namespace": "shop"}, "spec": {"provider": "istio"},
        "status": {"phase": "Waiting", "queuedAt": "2026-12-03T06:20:00Z",
                   "lastTransitionTime": "2026-12-03T06:20:00Z",
                   "conditions": [{"type": "Promoted", "status": "Unknown", "reason": "Queued", "message": message}]},
    }
    assert f"Waiting ({message})" in table([queued])
    lines = detail(queued).splitlines()
    assert lines[1] == "  phase       Waiting, since 2026-12-03T06:20:00Z"
    assert f"  why         {message}" in lines
    # A confirm-rollout gate's Waiting is shown as before.
    gated = {**queued, "status": {"phase": "Waiting", "conditions": [
        {"type": "Promoted", "status": "Unknown", "reason": "Waiting", "message": "Halt orders advancement"}]}}
    assert "Waiting  " in table([gated]) and "slot" not in table([gated])


def test_a_scored_release_shows_its_score_and_each_metrics_classification() -> None:
    scored = copy.deepcopy(REVERTED)
    analysis = scored["status"]["analysis"]
    analysis.update(score=40.0, scoreClassification="fail")
    analysis["metrics"][0].update(classification="High", effectSize=2.5, critical=True)
    lines = detail(scored).splitlines()
    assert ("  metrics     request-success-rate  canary 94.9  primary 100  fail [High, effect size 2.5, critical]"
            "  (request-success-rate >= 99)") in lines
    assert "  score       40 (fail)" in lines
