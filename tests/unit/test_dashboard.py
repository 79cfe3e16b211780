"""The dashboard's pure parts: what a release's row and page show, the timeline it keeps, and the
assets it ships (the browser test drives the whole of it against the sandbox)."""

from __future__ import annotations

import re

from rollout.engine.dashboard import KEEP, STATIC, Timeline, plan, summary


def release(**status: object) -> dict[str, object]:
    return {
        "kind": "Canary", "metadata": {"namespace": "shop", "name": "web"},
        "spec": {"provider": "istio", "analysis": {"interval": "30s", "threshold": 3, "stepWeight": 20,
                                                   "maxWeight": 50, "metrics": [
                                                       {"name": "request-success-rate", "thresholdRange": {"min": 99}},
                                                       {"name": "latency", "threshold": 500}]}},
        "status": status,
    }


def test_a_row_says_phase_weight_checks_revision_and_revert() -> None:
    row = summary(release(
        phase="Failed", canaryWeight=0, failedChecks=3, candidate={"spec": "abc", "revision": "0123456789abcdef"},
        analysis={"checkedAt": "2026-01-01T10:00:00Z", "verdict": "fail"},
        revert={"state": "Pushed", "commit": "fedcba9876"},
        conditions=[{"type": "Ready", "status": "False", "reason": "RouterError", "message": "no VirtualService"}]))
    assert row["phase"] == "Failed" and row["failedChecks"] == 3 and row["threshold"] == 3
    assert row["revision"] == "0123456789abcdef" and row["revert"]["commit"] == "fedcba9876"
    assert row["lastCheck"] == {"at": "2026-01-01T10:00:00Z", "verdict": "fail"}
    assert row["problem"] == "RouterError: no VirtualService"
    idle = summary(release(phase="Succeeded", history=[{"revision": "beef"}]))
    assert idle["revision"] == "beef" and idle["lastCheck"] is None and idle["problem"] == ""


def test_the_plan_is_flaggers_steps_and_each_metrics_limits() -> None:
    shown = plan(release())
    assert shown["steps"] == [20, 40, 50]
    assert shown["limits"] == {"request-success-rate": {"min": 99, "max": None},
                               "latency": {"min": None, "max": 500}}
    ab = release()
    ab["spec"]["analysis"].update(iterations=5)  # type: ignore[index]
    assert plan(ab)["steps"] == []
    listed = release()
    listed["spec"]["analysis"]["stepWeights"] = [1, 5, 25]  # type: ignore[index]
    assert plan(listed)["steps"] == [1, 5, 25]


def test_the_timeline_keeps_each_change_and_each_check_once() -> None:
    timeline = Timeline()
    check = {"checkedAt": "2026-01-01T10:00:00Z", "verdict": "pass",
             "metrics": [{"name": "request-success-rate", "value": 99.5, "primary": 99.9, "verdict": "pass",
                          "reason": "not shown"}]}
    timeline.observe({"phase": "Progressing", "canaryWeight": 10}, 1.0)
    timeline.observe({"phase": "Progressing", "canaryWeight": 10, "analysis": check}, 2.0)
    timeline.observe({"phase": "Progressing", "canaryWeight": 10, "analysis": check}, 3.0)
    timeline.observe({"phase": "Progressing", "canaryWeight": 20}, 4.0)
    timeline.observe({"phase": "Failed", "canaryWeight": 0}, 5.0)
    assert timeline.weights == [(1.0, 10, "Progressing"), (4.0, 20, "Progressing"), (5.0, 0, "Failed")]
    assert len(timeline.checks) == 1 and timeline.checks[0]["weight"] == 10
    assert timeline.checks[0]["metrics"] == [{"name": "request-success-rate", "value": 99.5, "primary": 99.9,
                                              "verdict": "pass", "limit": None}]
    for i in range(KEEP + 10):
        timeline.observe({"phase": "Progressing", "canaryWeight": i % 2}, 10.0 + i)
    assert len(timeline.weights) == KEEP


def test_every_asset_ships_in_the_package_and_nothing_is_fetched_from_elsewhere() -> None:
    assets = {p.name: p.read_text() for p in STATIC.iterdir()}
    assert set(assets) == {"index.html", "dashboard.css", "dashboard.js"}
    for name, text in assets.items():
        assert not re.search(r"(src|href)=\"(https?:)?//", text), name
        assert "@import" not in text and "innerHTML" not in text, name
