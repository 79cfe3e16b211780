"""The operator's HTTP port, served for real on a free 127.0.0.1 port and read over HTTP: /metrics,
/healthz and /readyz through each state of kopf, the API and the caller's readiness; and
`rollout run` refusing, in one line, a port it cannot bind."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter

from rollout.engine.health import STALE, Health, HealthServer, serve
from sandbox.prometheus import free_port

pytestmark = pytest.mark.component


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class World:
    def __init__(self) -> None:
        self.clock = Clock()
        self.api_problem: str | None = None
        self.api_calls = 0
        self.leader: tuple[bool, str] = (True, "leader")
        self.health = Health(lambda: self.leader, self.api, clock=self.clock)

    def api(self) -> str | None:
        self.api_calls += 1
        return self.api_problem


@pytest.fixture
def world() -> Iterator[tuple[World, HealthServer]]:
    w = World()
    registry = CollectorRegistry()
    Counter("demo_things", "things seen", registry=registry).inc(3)
    server = serve(f"127.0.0.1:{free_port()}", w.health, registry)
    assert server is not None
    yield w, server
    server.stop()


def test_metrics_are_the_registrys_exposition(world: tuple[World, HealthServer]) -> None:
    _, server = world
    code, text = get(f"{server.url}/metrics")
    assert code == 200
    assert "# TYPE demo_things_total counter" in text and "demo_things_total 3.0" in text


def test_liveness_follows_kopfs_loop(world: tuple[World, HealthServer]) -> None:
    w, server = world
    assert get(f"{server.url}/healthz") == (200, "ok: kopf not started\n")  # the process alone is alive
    w.health.starting()
    assert get(f"{server.url}/healthz")[0] == 200
    w.health.started()
    w.clock.now += 5
    code, text = get(f"{server.url}/healthz")
    assert code == 200 and text.startswith("ok: kopf running, its event loop ran 5.0s ago")
    w.clock.now += STALE
    code, text = get(f"{server.url}/healthz")
    assert code == 500 and text == f"kopf's event loop (its watch streams) has not run for {STALE + 5:.0f}s\n"
    w.health.beat()
    assert get(f"{server.url}/healthz")[0] == 200
    w.health.stopped()
    assert get(f"{server.url}/healthz") == (500, "kopf has stopped\n")


def test_readiness_needs_kopf_started_the_api_and_the_callers_word(world: tuple[World, HealthServer]) -> None:
    w, server = world
    # A standby never starts kopf: it is ready when the API answers and its readiness says so.
    assert get(f"{server.url}/readyz") == (200, "ok: leader\n")
    w.health.starting()
    assert get(f"{server.url}/readyz") == (503, "kopf is starting: its watches are not open yet\n")
    w.health.started()
    assert get(f"{server.url}/readyz") == (200, "ok: leader\n")
    w.leader = (False, "lease held by rollout-7d9f-abcde")
    assert get(f"{server.url}/readyz") == (503, "lease held by rollout-7d9f-abcde\n")
    w.leader = (True, "standby")
    w.api_problem = "GET /version failed: connection refused"
    w.clock.now += 10  # past the cached answer
    assert get(f"{server.url}/readyz") == (
        503, "the API server does not answer: GET /version failed: connection refused\n")


def test_the_api_is_asked_at_most_every_few_seconds(world: tuple[World, HealthServer]) -> None:
    w, server = world
    for _ in range(5):
        assert get(f"{server.url}/readyz")[0] == 200
    assert w.api_calls == 1
    w.clock.now += 10
    get(f"{server.url}/readyz")
    assert w.api_calls == 2


def test_readiness_that_raises_is_not_ready(world: tuple[World, HealthServer]) -> None:
    w, server = world

    def broken() -> tuple[bool, str]:
        raise RuntimeError("lease unreadable")

    w.health.readiness = broken
    assert get(f"{server.url}/readyz") == (503, "readiness unknown: RuntimeError: lease unreadable\n")


def test_zero_or_empty_serves_nothing() -> None:
    assert serve("0", Health()) is None
    assert serve("", Health()) is None


def test_a_busy_port_stops_rollout_run_with_one_line(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("""apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:9"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
""")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "rollout", "run", "--kubeconfig", str(kubeconfig), "--metrics-addr",
             f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 2, done.stderr
    assert done.stderr == (f"rollout run: --metrics-addr 127.0.0.1:{port} cannot be served: Address already in use; "
                           "pick another HOST:PORT (or 0 for no metrics and health server)\n")
    # The dashboard's port likewise, named by its own flag.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "rollout", "run", "--kubeconfig", str(kubeconfig), "--metrics-addr", "0",
             "--dashboard-addr", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=60,
            env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 2, done.stderr
    assert done.stderr == (f"rollout run: --dashboard-addr 127.0.0.1:{port} cannot be served: Address already in "
                           "use; pick another HOST:PORT (or 0 for no dashboard)\n")


def test_an_ipv6_address_is_served() -> None:
    if not socket.has_ipv6:
        pytest.skip("this machine has no IPv6")
    try:
        server = serve(f"[::1]:{free_port()}", Health())
    except OSError as e:  # IPv6 compiled in but no ::1 configured
        pytest.skip(f"no IPv6 loopback here: {e}")
    assert server is not None
    try:
        assert server.url.startswith("http://[::1]:")
        assert get(f"{server.url}/healthz") == (200, "ok: kopf not started\n")
    finally:
        server.stop()
