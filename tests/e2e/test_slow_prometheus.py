"""A Prometheus that never answers holds up only the releases that query it: they tick on a pool of their
own (`--release-workers`), apart from idle releases, so a change to an idle release is seen at once
(`rollout run` as a process, on its own sandbox)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from rollout.engine.kube import api_client
from sandbox import Sandbox
from tests.e2e.conftest import OperatorProcess, create_deployment, create_release, release_status, set_image, wait_phase
from tests.e2e.test_operator import canary
from tests.tools import wait_for

pytestmark = pytest.mark.e2e


class Silent:
    def __init__(self, url: str, held: list[socket.socket]) -> None:
        self.url, self.held = url, held


@pytest.fixture
def silent_prometheus() -> Iterator[Silent]:
    """Accepts connections and never answers, as a Prometheus stuck on a heavy query."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield Silent(f"http://127.0.0.1:{server.getsockname()[1]}", held)
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


def test_a_silent_prometheus_does_not_hold_up_idle_releases(tmp_path: Path, silent_prometheus: Silent) -> None:
    with Sandbox(deployment_ready_delay=0.1) as sb:
        kubeconfig = sb.write_kubeconfig(tmp_path / "kubeconfig")
        api = api_client(kubeconfig)
        client.CoreV1Api(api).create_namespace({"metadata": {"name": "slow"}})
        operator = OperatorProcess(kubeconfig, silent_prometheus.url, tmp_path / "reports", tmp_path / "operator.log")
        # One thread for idle releases, three for releases under way (two of them will be stuck), and each
        # query waits 4 s for an answer that never comes.
        operator.args += ["--workers", "1", "--release-workers", "3", "--prometheus-timeout", "4",
                          "--prometheus-retries", "0"]
        operator.start()
        try:
            for name in ("a", "b", "idle"):
                create_deployment(api, name, "slow")
                metrics = [] if name == "idle" else None
                create_release(api, canary(name, "slow", "istio", interval="1s",
                                           **({"metrics": metrics} if metrics is not None else {})))
            for name in ("a", "b", "idle"):
                wait_phase(api, "slow", name, "Initialized", timeout=60)
            for name in ("a", "b"):
                set_image(api, name, "slow", "ghcr.io/stefanprodan/podinfo:6.0.1")
            for name in ("a", "b"):
                wait_phase(api, "slow", name, "Progressing", timeout=30)
            # Both now spend every tick waiting on the silent Prometheus, on the one under-way thread.
            wait_for("a query to hang", lambda: len(silent_prometheus.held) >= 1, timeout=10)
            set_image(api, "idle", "slow", "ghcr.io/stefanprodan/podinfo:6.0.1")
            changed = time.monotonic()
            wait_phase(api, "slow", "idle", "Progressing", timeout=30)
            seen = time.monotonic() - changed
            print(f"\nan idle release saw its change after {seen:.2f} s while two releases waited on Prometheus")
            assert seen < 2.5, operator.output()
            assert release_status(api, "slow", "a")["phase"] == "Progressing"
        finally:
            operator.stop()
