"""Two leader electors (rollout.engine.leader) against the sandbox's API server, through the official
client: at most one leads at any instant, a standby takes over after the holder stops renewing
(within the lease duration and its retry periods), a released Lease passes at once, and when both
write the same Lease only the first write wins (409 for the other).

The holder "stops renewing" the way a partitioned pod does: it is given a client whose server is a
closed port, so every request it makes is refused while the other candidate still reaches the API.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from prometheus_client import REGISTRY

from rollout.engine.kube import api_client
from rollout.engine.leader import JITTER, LEASE_NAME, LeaderElector, Role, lead
from sandbox import Sandbox
from tests.tools import wait_for

pytestmark = pytest.mark.component

LEASE, RENEW, RETRY = 2.0, 1.5, 0.25
# A standby sees the last renewal up to one of its retries late, then waits the lease duration, then
# up to one more retry: each retry is the retry period plus client-go's jitter.
TAKEOVER_BOUND = LEASE + 2 * RETRY * (1 + JITTER) + 1.0  # 1s of slack for a loaded machine
CLOSED_PORT = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with Sandbox() as sandbox:
        yield sandbox.write_kubeconfig(tmp_path_factory.mktemp("leader") / "kubeconfig")


@pytest.fixture
def namespace(kubeconfig: Path, request: pytest.FixtureRequest) -> str:
    name = f"leader-{abs(hash(request.node.name)) % 10**6}"
    client.CoreV1Api(api_client(kubeconfig)).create_namespace({"metadata": {"name": name}})
    return name


def elector(kubeconfig: Path, namespace: str, name: str, lease: float = LEASE) -> LeaderElector:
    return LeaderElector(api_client(kubeconfig), identity=name, namespace=namespace, lease_duration=lease,
                         renew_deadline=RENEW, retry_period=RETRY, request_timeout=2.0)


def cut_off(kubeconfig: Path) -> Path:
    """The same kubeconfig, but its server is a closed port of 127.0.0.1: every request is refused."""
    config = yaml.safe_load(kubeconfig.read_text())
    for entry in config["clusters"]:
        entry["cluster"]["server"] = CLOSED_PORT
    path = kubeconfig.with_name("cut-off-kubeconfig")
    path.write_text(yaml.safe_dump(config))
    return path


def holder(kubeconfig: Path, namespace: str) -> str:
    lease: Any = client.CoordinationV1Api(api_client(kubeconfig)).read_namespaced_lease(LEASE_NAME, namespace)
    return str(lease.spec.holder_identity or "")


@dataclass
class Candidate:
    """One elector campaigning in a thread, as `rollout run --leader-elect` does; `work` holds until stopped."""

    elector: LeaderElector
    stop: threading.Event = field(default_factory=threading.Event)
    lost_at: float | None = None
    led_at: float | None = None
    thread: threading.Thread | None = None

    def start(self) -> Candidate:
        def work() -> None:
            self.led_at = time.monotonic()
            self.stop.wait()

        def lost() -> None:  # instead of ending the test process: stop the work at once
            self.lost_at = time.monotonic()
            self.stop.set()

        self.thread = threading.Thread(target=lead, args=(self.elector, self.stop, work, lost), daemon=True)
        self.thread.start()
        return self

    def end(self) -> None:
        self.stop.set()
        assert self.thread is not None
        self.thread.join(timeout=10)


class Overlap:
    """Samples both candidates every 10ms and records any instant at which both may act."""

    def __init__(self, *electors: LeaderElector) -> None:
        self.electors, self.both, self.samples = electors, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.samples += 1
            self.both += sum(e.leading() for e in self.electors) > 1

    def end(self) -> None:
        self._stop.set()
        self._thread.join()


def test_one_leader_and_a_takeover_after_the_holder_stops_renewing(kubeconfig: Path, namespace: str) -> None:
    a = Candidate(elector(kubeconfig, namespace, "a")).start()
    wait_for("a leads", lambda: a.elector.role is Role.LEADER, timeout=10, every=0.05)
    b = Candidate(elector(kubeconfig, namespace, "b")).start()
    overlap = Overlap(a.elector, b.elector)
    try:
        wait_for("b stands by", lambda: b.elector.role is Role.STANDBY, timeout=10, every=0.05)
        time.sleep(3 * LEASE)  # a renews all along: b never takes over
        assert (a.elector.role, b.elector.role, holder(kubeconfig, namespace)) == (Role.LEADER, Role.STANDBY, "a")
        assert a.elector.readiness() == (True, f"leader: a holds the Lease {namespace}/{LEASE_NAME}")
        assert b.elector.readiness() == (True, f"standby: a holds the Lease {namespace}/{LEASE_NAME}")

        a.elector.leases = client.CoordinationV1Api(api_client(cut_off(kubeconfig)))
        cut = time.monotonic()
        wait_for("b leads", lambda: b.led_at, timeout=TAKEOVER_BOUND + 5, every=0.02)
        took = time.monotonic() - cut
        print(f"\ntakeover after the holder stopped renewing: {took:.2f}s (lease {LEASE:g}s, retry {RETRY:g}s)")
        assert took <= TAKEOVER_BOUND
        # a gave up (and stopped its work) within the renew deadline, before b took over
        assert a.lost_at is not None and b.led_at is not None
        assert a.lost_at - cut <= RENEW + 0.5
        assert a.lost_at < b.led_at
        assert holder(kubeconfig, namespace) == "b"
        ready, why = a.elector.readiness()
        assert not ready and why.startswith("cannot reach the API server")
    finally:
        overlap.end()
        a.end()
        b.end()
    assert overlap.samples > 100 and overlap.both == 0


def test_a_clean_stop_releases_the_lease_and_the_standby_takes_it_at_once(kubeconfig: Path, namespace: str) -> None:
    long = 30.0  # without the release, b would wait 30s
    a = Candidate(elector(kubeconfig, namespace, "a", lease=long)).start()
    wait_for("a leads", lambda: a.elector.role is Role.LEADER, timeout=10, every=0.05)
    assert REGISTRY.get_sample_value("rollout_leader") == 1.0
    b = Candidate(elector(kubeconfig, namespace, "b", lease=long)).start()
    try:
        wait_for("b stands by", lambda: b.elector.role is Role.STANDBY, timeout=10, every=0.05)
        stopped = time.monotonic()
        a.end()
        assert a.lost_at is None  # a stop, not a loss
        wait_for("b leads", lambda: b.led_at, timeout=10, every=0.02)
        assert time.monotonic() - stopped < RETRY * (1 + JITTER) + 2.0
        lease: Any = client.CoordinationV1Api(api_client(kubeconfig)).read_namespaced_lease(LEASE_NAME, namespace)
        assert (lease.spec.holder_identity, lease.spec.lease_transitions) == ("b", 1)  # created by a, then to b
    finally:
        b.end()
    assert holder(kubeconfig, namespace) == ""  # b released it too
    assert REGISTRY.get_sample_value("rollout_leader") == 0.0


def test_of_two_candidates_writing_the_same_lease_only_the_first_wins(kubeconfig: Path, namespace: str) -> None:
    a, b = elector(kubeconfig, namespace, "a"), elector(kubeconfig, namespace, "b")
    assert a.try_acquire_or_renew() and a.release()  # a released Lease: both may take it at once
    real_write: Callable[..., None] = b._write

    def a_writes_first(*args: Any) -> None:  # b has read and decided; a takes the Lease before b writes
        assert a.try_acquire_or_renew()
        real_write(*args)

    b._write = a_writes_first  # type: ignore[method-assign]
    assert b.try_acquire_or_renew() is False
    assert (a.role, b.role, holder(kubeconfig, namespace)) == (Role.LEADER, Role.STANDBY, "a")
    b._write = real_write  # type: ignore[method-assign]
    assert b.try_acquire_or_renew() is False  # and on its next try it sees a's fresh lease: it waits
    assert b.holder == "a"
