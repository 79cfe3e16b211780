"""High availability end to end: two `rollout run --leader-elect` processes on the sandbox, the leader
SIGKILLed in the middle of two releases (one good, one failing), the standby taking over.

The chaos harness's world (sandbox with its data plane, a real Prometheus, Git remotes, the webhook
receiver, the simulated Flux) and its checks are reused: exactly one promotion of the good version
(one Succeeded Event, the primary on it), exactly one revert commit of the failing one, Git, cluster
and status agreeing, no Event or webhook repeated. The takeover time (kill to the standby's Lease
acquire, and to its first status write) is printed. Short lease settings keep it quick.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from kubernetes import client

from rollout.engine.kube import api_client
from tests.chaos.campaign import RELEASE_BOUND, Campaign
from tests.chaos.ledger import Ledger
from tests.chaos.receiver import Receiver
from tests.chaos.world import APP, Flux, Operator, PrometheusProcess, SandboxProcess, create_lane
from tests.e2e.conftest import lease_holder, release_status
from tests.gitrepo import git
from tests.tools import wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]

FIRST_IMAGE = "ghcr.io/stefanprodan/podinfo:6.0.0"
LEASE, RENEW, RETRY = 4, 3, 1


class Candidate(Operator):
    """`rollout run --leader-elect` with its own identity, logs, reports and Git cache."""

    def __init__(self, kubeconfig: Path, prometheus: str, root: Path, name: str, lease_namespace: str) -> None:
        root.mkdir()
        super().__init__(kubeconfig, prometheus, root)
        self.name = name
        self.env = {"POD_NAME": name}
        self.args += ["--leader-elect", "--leader-election-namespace", lease_namespace, "--lease-duration",
                      str(LEASE), "--renew-deadline", str(RENEW), "--retry-period", str(RETRY)]


def test_sigkill_of_the_leader_mid_release_one_promotion_one_revert(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path_factory.mktemp("ha")

    def say(line: str) -> None:
        with capsys.disabled():
            print(line, flush=True)

    sandbox = SandboxProcess(root, rps=80, seed=0)
    prometheus = PrometheusProcess(root, sandbox.metrics_url)
    receiver = Receiver().start()
    candidates: list[Candidate] = []
    flux: Flux | None = None
    try:
        prometheus.start()
        api = api_client(sandbox.kubeconfig)
        suffix = uuid.uuid4().hex[:4]
        lease_namespace = f"ha-lease-{suffix}"
        client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=lease_namespace)))
        lanes = [create_lane(api, root, f"ha-good-{suffix}", "gitsource", receiver.url, FIRST_IMAGE),
                 create_lane(api, root, f"ha-bad-{suffix}", "url", receiver.url, FIRST_IMAGE)]
        flux = Flux(api, lanes).start()
        a = Candidate(sandbox.kubeconfig, prometheus.url, root / "a", "rollout-a", lease_namespace)
        b = Candidate(sandbox.kubeconfig, prometheus.url, root / "b", "rollout-b", lease_namespace)
        candidates += [a, b]
        a.start()
        wait_for("rollout-a leads", lambda: lease_holder(api, lease_namespace) == "rollout-a", timeout=30, every=0.2)
        b.start()
        for lane in lanes:
            wait_for(f"{lane.namespace}/{APP} initialized",
                     lambda lane=lane: release_status(api, lane.namespace, APP).get("phase") == "Initialized",  # type: ignore[misc]
                     timeout=90)
        assert lease_holder(api, lease_namespace) == "rollout-a" and b.alive()

        ledger = Ledger(0, say)
        campaign = Campaign(api, lanes, b, prometheus, receiver, "", root, ledger, faults=False,
                            sandbox_log=sandbox.log)
        good, bad = campaign.release(lanes[0], 1, good=True), campaign.release(lanes[1], 1, good=False)
        releases = [good, bad]
        t0 = time.monotonic()

        def sample() -> None:
            now = time.monotonic()
            for r in releases:
                campaign.sample(r, now, {}, [], t0)

        def mid_release() -> bool:
            sample()
            return all(r.started and not r.outcome for r in releases) and bool(
                release_status(api, good.lane.namespace, APP).get("canaryWeight"))

        wait_for("both releases under way, the good one with traffic on its canary", mid_release, timeout=60,
                 every=0.2)
        before = {r.lane.namespace: release_status(api, r.lane.namespace, APP) for r in releases}
        a.sigkill()
        killed = time.monotonic()
        for r in releases:
            r.note(killed, "LEADER SIGKILLED")

        acquired = wait_for("rollout-b holds the Lease",
                            lambda: time.monotonic() if lease_holder(api, lease_namespace) == "rollout-b" else None,
                            timeout=LEASE + 4 * RETRY + 10, every=0.05) - killed
        first_write = wait_for(
            "the new leader's first status write",
            lambda: time.monotonic() if any(release_status(api, ns, APP) != status for ns, status in before.items())
            else None, timeout=30, every=0.05) - killed
        campaign.operator_since = killed + acquired
        say(f"\nHA takeover: leader SIGKILLed mid-release; the standby acquired the Lease {acquired:.1f}s later and "
            f"wrote its first release status {first_write:.1f}s after the kill (lease {LEASE}s, renew deadline "
            f"{RENEW}s, retry period {RETRY}s)")

        deadline = time.monotonic() + RELEASE_BOUND
        while time.monotonic() < deadline and not all(r.outcome for r in releases):
            sample()
            time.sleep(0.25)
        for r in releases:
            campaign.check(r)
        say(ledger.summary())
        assert not ledger.failed, "\n".join(ledger.violations)
        assert (good.outcome, bad.outcome) == ("Succeeded", "Reverted"), [r.trace for r in releases]

        # said plainly, besides the harness's checks: one promotion, one revert commit
        events = client.CoreV1Api(api).list_namespaced_event(good.lane.namespace).items
        succeeded = [e for e in events if e.reason == "Succeeded" and e.involved_object.name == APP
                     and e.metadata.name not in good.events_before]
        assert len(succeeded) == 1, [(e.reason, e.message) for e in succeeded]
        trailers = git(bad.lane.remote.bare, "log", "--format=%(trailers:key=Rollout-Reverts,valueonly)",
                       bad.lane.remote.branch)
        assert trailers.split().count(bad.sha) == 1, trailers
        assert not a.alive() and b.alive()
        assert acquired <= LEASE + 2 * RETRY * 2.2 + 2  # lease duration and (jittered) retries, some slack

        b.stop()  # SIGTERM: a clean stop releases the Lease
        assert b.process is not None and b.process.returncode == 0, b.output()
        assert lease_holder(api, lease_namespace) == ""
    finally:
        for candidate in candidates:
            candidate.stop()
        if flux is not None:
            flux.stop()
        receiver.stop()
        prometheus.stop()
        sandbox.stop()
