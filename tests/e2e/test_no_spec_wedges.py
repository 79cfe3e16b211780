"""Specs the operator cannot hold wedge nothing: a condition and an Event say why, deletion completes.

The sandbox, like an API server without the CRD's bounds (durations are strings there anyway),
stores an interval of `99999999999999999999s` and a deadline of 10**20 seconds; the operator must
refuse them by name, keep serving, and let the Canary be deleted.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.e2e.conftest import GROUP, VERSION, OperatorProcess, create_deployment, create_release, release_status
from tests.e2e.test_operator import canary
from tests.tools import wait_for

pytestmark = pytest.mark.e2e


def test_an_unholdable_spec_gets_a_condition_and_an_event_and_is_deleted(
    api: client.ApiClient, operator: OperatorProcess, namespace: str
) -> None:
    bad = canary("huge", namespace)
    bad["spec"]["analysis"]["interval"] = "99999999999999999999s"
    bad["spec"]["progressDeadlineSeconds"] = 10**20
    create_deployment(api, "huge", namespace)
    create_release(api, bad)

    def refused() -> dict[str, Any] | None:
        conditions = release_status(api, namespace, "huge").get("conditions") or []
        return next((c for c in conditions if c["type"] == "Ready" and c["status"] == "False"), None)

    condition = wait_for("the Ready=False condition", refused, timeout=30)
    assert condition["reason"] == "InvalidSpec"
    assert "spec.analysis.interval: must be at most 24h, got '99999999999999999999s'" in condition["message"]
    assert "spec.progressDeadlineSeconds: must be at most 604800, got 100000000000000000000" in condition["message"]
    events = client.CoreV1Api(api).list_namespaced_event(namespace).items
    assert any(e.reason == "InvalidSpec" and e.type == "Warning" and e.involved_object.name == "huge" for e in events)

    objects = client.CustomObjectsApi(api)
    objects.delete_namespaced_custom_object(GROUP, VERSION, namespace, "canaries", "huge")

    def gone() -> bool:
        try:
            objects.get_namespaced_custom_object(GROUP, VERSION, namespace, "canaries", "huge")
        except client.exceptions.ApiException as e:
            return e.status == 404
        return False

    wait_for("the Canary to be deleted, finalizer and all", gone, timeout=30)
    assert "Traceback" not in operator.output()
