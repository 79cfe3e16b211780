"""`rollout run --max-concurrent-releases 1` on the sandbox: three canaries changed within seconds
run one after another, oldest first; the others wait in Waiting with their place, across an
operator kill."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.e2e.conftest import OperatorProcess, create_deployment, create_release, release_status, set_image, wait_for
from tests.e2e.exporter import Exporter
from tests.e2e.test_operator import NEW, OLD, canary, healthy

pytestmark = pytest.mark.e2e

NAMES = ("cart", "orders", "payment")
RUNNING = {"Progressing", "WaitingPromotion", "Promoting", "Finalising"}


class Watch:
    """Samples the three releases' statuses until stopped: who ran when, what the queued ones said."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self.started: list[str] = []
        self.most_running = 0
        self.waiting: dict[str, set[str]] = {n: set() for n in NAMES}
        self.queued_at: dict[str, str] = {}
        self.statuses: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            statuses = {n: release_status(self.api, self.namespace, n) for n in NAMES}
            self.statuses = statuses
            running = [n for n, s in statuses.items() if s.get("phase") in RUNNING]
            self.most_running = max(self.most_running, len(running))
            for name in running:
                if name not in self.started:
                    self.started.append(name)
            for name, s in statuses.items():
                promoted = next((c for c in s.get("conditions") or () if c["type"] == "Promoted"), {})
                if s.get("phase") == "Waiting" and promoted.get("reason") == "Queued":
                    self.waiting[name].add(promoted.get("message", ""))
                    self.queued_at.setdefault(name, s.get("queuedAt") or "")
            time.sleep(0.2)

    def phase(self, name: str) -> str | None:
        return self.statuses.get(name, {}).get("phase")

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _sample(operator: OperatorProcess, metric: str) -> float | None:
    try:
        return operator.sample(metric)
    except OSError:  # not serving yet
        return None


def test_with_a_cap_of_one_three_changed_canaries_run_one_after_another_oldest_first(
    api: client.ApiClient, operator: OperatorProcess, exporter: Exporter, namespace: str, sandbox: Path
) -> None:
    args = operator.args
    operator.stop()
    operator.args = [*args, "--max-concurrent-releases", "1"]
    operator.start()
    try:
        for name in NAMES:
            healthy(exporter, namespace, name)
            create_deployment(api, name, namespace, image=OLD)
            create_release(api, canary(name, namespace, maxWeight=40, stepWeight=10))
        # Initializing takes no slot: all three initialize together.
        wait_for("three Initialized", lambda: all(
            release_status(api, namespace, n).get("phase") == "Initialized" for n in NAMES), timeout=90)
        with Watch(api, namespace) as watch:
            # Changed one after another, each once the one before has asked for a slot, so that the order
            # in which they ask is known whatever the machine's load.
            set_image(api, "cart", namespace, NEW)
            wait_for("cart running", lambda: "cart" in watch.started, timeout=30)
            set_image(api, "orders", namespace, NEW)
            wait_for("orders queued", lambda: "orders" in watch.queued_at, timeout=30)
            set_image(api, "payment", namespace, NEW)
            wait_for("two queued behind the first", lambda: len(watch.queued_at) == 2 and watch.started, timeout=60)
            first = watch.started[0]
            queued = sorted(watch.queued_at, key=lambda n: watch.queued_at[n])
            assert first == "cart" and queued == ["orders", "payment"], (watch.started, watch.queued_at)

            # Killed while one runs and two wait: the restarted operator learns the running one and the
            # queue's order from the statuses before it lets another start.
            assert watch.phase(first) in RUNNING, watch.statuses
            operator.kill()
            operator.start()
            orders = "waiting for a release slot: 1st of 2 in the queue, 1 release running, --max-concurrent-releases 1"
            wait_for("the queue's places", lambda: orders in watch.waiting["orders"]
                     and any("2nd of 2" in m for m in watch.waiting["payment"]), timeout=30)
            wait_for("the queue's gauge", lambda: _sample(operator, "rollout_releases_queued") == 2, timeout=30)
            shown = subprocess.run([str(Path(sys.executable).parent / "rollout"), "status", "-n", namespace,
                                    "--kubeconfig", str(sandbox)], capture_output=True, text=True, timeout=30)
            print("\n" + shown.stdout)
            assert "Waiting (waiting for a release slot:" in shown.stdout, shown.stdout
            wait_for("all three Succeeded", lambda: all(watch.phase(n) == "Succeeded" for n in NAMES), timeout=150)
        assert watch.started == ["cart", "orders", "payment"], watch.started
        assert watch.most_running == 1
        assert not watch.waiting["cart"]
        assert operator.sample("rollout_releases_queued") == 0
        for name in NAMES:
            status = release_status(api, namespace, name)
            assert status["lastPromotedSpec"] == status["lastAppliedSpec"] and not status.get("queuedAt")
    finally:
        operator.stop()
        operator.args = args
        operator.start()
