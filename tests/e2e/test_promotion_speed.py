"""How long a healthy release takes on the real operator (`rollout run` under kopf, on the sandbox):
from the change, and from the first Progressing, to Succeeded, against its steps x interval.

Promoting, Finalising and Succeeded follow as soon as the primary is rolled out, and the first step
as soon as the canary is ready, so the run takes its steps x interval plus a few seconds of rollout.
The bound (1.2x) holds from the change too: the target's watch event wakes the idle release at once
(the watch-fed cache), rather than its next interval.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest
from kubernetes import client, watch

from tests.e2e.conftest import GROUP, VERSION, OperatorProcess, set_image, wait_phase
from tests.e2e.test_operator import NEW, canary, start

pytestmark = pytest.mark.e2e

INTERVAL = 10.0
STEP_WEIGHTS = [33, 66, 99]
BOUND = 1.2 * len(STEP_WEIGHTS) * INTERVAL


class Timeline:
    """When each phase and each weight of one Canary was first seen, from its watch stream."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str) -> None:
        self.objects = client.CustomObjectsApi(api)
        self.namespace, self.name = namespace, name
        self.seen: list[tuple[float, str, int]] = []  # (monotonic time, phase, weight), on each change
        self._stop = threading.Event()
        listed: Any = self.objects.list_namespaced_custom_object(GROUP, VERSION, namespace, "canaries")
        self._version = str(listed["metadata"]["resourceVersion"])
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            stream = watch.Watch()
            for event in stream.stream(self.objects.list_namespaced_custom_object, GROUP, VERSION, self.namespace,
                                       "canaries", resource_version=self._version, timeout_seconds=2):
                obj = event["object"]
                self._version = str(obj["metadata"]["resourceVersion"])
                status = obj.get("status") or {}
                seen = (str(status.get("phase")), int(status.get("canaryWeight") or 0))
                if obj["metadata"]["name"] == self.name and (not self.seen or self.seen[-1][1:] != seen):
                    self.seen.append((time.monotonic(), *seen))
                if self._stop.is_set():
                    stream.stop()

    def first(self, phase: str, weight: int | None = None) -> float:
        return next(t for t, p, w in self.seen if p == phase and (weight is None or w == weight))

    def __enter__(self) -> Timeline:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def test_a_three_step_canary_succeeds_within_its_steps_times_interval(
        api: client.ApiClient, operator: OperatorProcess, namespace: str) -> None:
    obj = canary("podinfo", namespace, interval=f"{INTERVAL:g}s", metrics=[], stepWeights=STEP_WEIGHTS)
    for field in ("stepWeight", "maxWeight"):
        del obj["spec"]["analysis"][field]
    start(api, obj)
    with Timeline(api, namespace, "podinfo") as timeline:
        changed = time.monotonic()
        set_image(api, "podinfo", namespace, NEW)
        status = wait_phase(api, namespace, "podinfo", "Succeeded", "Failed", timeout=BOUND + INTERVAL + 60)
        assert status["phase"] == "Succeeded", operator.output()
        time.sleep(0.5)  # the watch event of the last write
    progressing, succeeded = timeline.first("Progressing"), timeline.first("Succeeded")
    marks = [("Progressing", progressing)] + [(f"weight {w}", timeline.first("Progressing", w)) for w in STEP_WEIGHTS]
    marks += [(p, timeline.first(p)) for p in ("Promoting", "Finalising", "Succeeded")]
    print(f"\n3-step canary (stepWeights {STEP_WEIGHTS}), interval {INTERVAL:g}s, no metrics: "
          f"{succeeded - changed:.1f}s from the change, {succeeded - progressing:.1f}s from Progressing "
          f"(detection {progressing - changed:.1f}s); steps x interval {len(STEP_WEIGHTS) * INTERVAL:g}s, so "
          f"{(succeeded - changed) / (len(STEP_WEIGHTS) * INTERVAL):.2f}x from the change and "
          f"{(succeeded - progressing) / (len(STEP_WEIGHTS) * INTERVAL):.2f}x from Progressing (bound 1.2x)\n"
          + "  ".join(f"{label} +{t - progressing:.1f}s" for label, t in marks))
    # Flagger's sequence, each phase recorded in status, in order.
    assert [t for _, t in marks] == sorted(t for _, t in marks)
    assert succeeded - progressing <= BOUND
    # The change is seen on the target's watch event, not at the idle release's next interval.
    assert succeeded - changed <= BOUND
    # A step per interval still: the analysis clock is not shortened.
    steps = [timeline.first("Progressing", w) for w in STEP_WEIGHTS]
    assert all(b - a >= INTERVAL * 0.9 for a, b in itertools.pairwise(steps))  # (0.9: watch delivery jitter)
    messages = {(e.reason, e.message) for e in client.CoreV1Api(api).list_namespaced_event(namespace).items
                if e.involved_object.name == "podinfo"}
    assert {("Progressing", "New revision detected! Scaling up podinfo"),
            *(("Progressing", f"Advance podinfo canary weight {w}") for w in STEP_WEIGHTS),
            ("Promoting", "Copying podinfo template spec to podinfo-primary"),
            ("Finalising", "Routing all traffic to podinfo-primary"),
            ("Succeeded", "Promotion completed! podinfo is promoted")} <= messages, messages
