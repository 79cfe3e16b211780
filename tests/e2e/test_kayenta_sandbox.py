"""Kayenta's rules in the running operator: a scored compare judge through the simulated data plane.

The sandbox (`rollout sandbox up --dataplane`, its own process) serves simulated requests by the
router's weights, a real Prometheus scrapes it and the operator (`rollout run`) judges the built-in
success rate against the primary with Kayenta's effect size and a weighted score. A healthy version
is promoted with a score of 100; one failing 20% of its requests is rolled back, and its status shows
the metric's classification and effect size and the check's score.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kubernetes import client

from sandbox.demo import app
from tests.e2e.conftest import OperatorProcess, create_release, release_status, wait_for
from tests.e2e.test_dataplane_releases import BAD, GOOD
from tests.e2e.test_dataplane_releases import world as dataplane_world

pytestmark = pytest.mark.e2e

# The same world as the data-plane releases: `rollout sandbox up --dataplane` and `rollout run`, each its own
# process (a module-scoped fixture, so this module gets its own pair).
world = dataplane_world


def scored_canary(namespace: str) -> dict[str, Any]:
    # The compare judge counts overlapping rates as one sample per rate window: 3 s rates over up to three
    # 5 s intervals give it enough independent samples to decide.
    obj = app.canary("istio", "compare", 5.0, namespace, git=False)
    obj["spec"]["analysis"].update(
        threshold=2, stepWeight=20, maxWeight=60, scoring={"pass": 95, "marginal": 75},
        metrics=[{"name": "request-success-rate", "interval": "3s",
                  "compare": {"direction": "decrease", "weight": 100,
                              "effectSize": {"measure": "cles", "allowedIncrease": 0.6}}}])
    return obj


def test_a_scored_release_is_promoted_or_rolled_back_and_its_status_shows_why(
    world: tuple[client.ApiClient, OperatorProcess],
) -> None:
    api, operator = world
    apps = client.AppsV1Api(api)
    ns = f"kayenta-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    apps.create_namespaced_deployment(ns, app.deployment(app.VERSIONS[1], ns))
    create_release(api, scored_canary(ns))
    wait_for("the Canary initialized", lambda: release_status(api, ns, app.APP).get("phase") == "Initialized",
             timeout=60)
    seen: dict[str, dict[str, Any]] = {}
    for version, done in ((GOOD, "Succeeded"), (BAD, "Failed")):
        apps.patch_namespaced_deployment(
            app.APP, ns, {"spec": {"template": app.deployment(version, ns)["spec"]["template"]}})
        wait_for("the release started",
                 lambda: release_status(api, ns, app.APP).get("phase") not in ("Initialized", "Succeeded"), timeout=30)
        wait_for(f"the v{version.number} release finished",
                 lambda: release_status(api, ns, app.APP).get("phase") in ("Succeeded", "Failed"), timeout=120)
        seen[done] = release_status(api, ns, app.APP)
    assert operator.process is not None and operator.process.poll() is None, operator.output()
    good, bad = seen["Succeeded"], seen["Failed"]
    assert good["phase"] == "Succeeded", good
    assert good["analysis"]["score"] == 100 and good["analysis"]["scoreClassification"] == "pass"
    assert bad["phase"] == "Failed", bad
    assert bad["analysis"]["score"] == 0 and bad["analysis"]["scoreClassification"] == "fail"
    (metric,) = bad["analysis"]["metrics"]
    # judged on the error rate: the canary's is higher than the primary's in (nearly) every pair of samples
    assert metric["verdict"] == "fail" and metric["classification"] == "High" and metric["effectSize"] > 0.6
    message = next(c["message"] for c in bad["conditions"] if c["type"] == "Promoted")
    assert "score 0 (fail" in message
