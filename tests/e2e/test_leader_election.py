"""`rollout run --leader-elect` processes on the sandbox: what each does when it leads, stands by, is
frozen past its lease, and is stopped. (The SIGKILL of a leader in the middle of releases is
tests/chaos/test_leader_takeover.py.)

A leader frozen (SIGSTOP) longer than the lease duration is a pod whose node stalled: the standby
takes over, and when the old leader runs again it must not act: it finds its lease not renewed
within the renew deadline and exits 1 at once, as controller-runtime's managers do.
"""

from __future__ import annotations

import signal
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from kubernetes import client

from tests.e2e.conftest import OperatorProcess, lease_holder
from tests.tools import wait_for

pytestmark = pytest.mark.e2e

LEASE, RENEW, RETRY = 4, 3, 1


def candidate(sandbox: Path, root: Path, name: str, lease_namespace: str) -> OperatorProcess:
    (root / name).mkdir()
    process = OperatorProcess(sandbox, "http://127.0.0.1:9", root / name / "reports", root / name / "operator.log")
    process.args += ["--leader-elect", "--leader-election-namespace", lease_namespace, "--lease-duration",
                     str(LEASE), "--renew-deadline", str(RENEW), "--retry-period", str(RETRY)]
    process.env = {"POD_NAME": name}
    return process


def test_a_frozen_leader_loses_the_lease_and_exits_and_a_stopped_one_releases_it(
    sandbox: Path, api: client.ApiClient, tmp_path: Path
) -> None:
    namespace = f"ha-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    a, b = candidate(sandbox, tmp_path, "a", namespace), candidate(sandbox, tmp_path, "b", namespace)
    try:
        a.start()
        wait_for("a leads", lambda: lease_holder(api, namespace) == "a", timeout=30, every=0.2)
        b.start()
        time.sleep(LEASE + 2 * RETRY)  # b campaigns all along and stands by
        assert lease_holder(api, namespace) == "a"
        assert a.process is not None and b.process is not None

        a.process.send_signal(signal.SIGSTOP)
        wait_for("b leads", lambda: lease_holder(api, namespace) == "b", timeout=LEASE + 4 * RETRY + 10, every=0.1)
        a.process.send_signal(signal.SIGCONT)
        code = a.process.wait(timeout=10)
        assert code == 1, a.output()
        assert "leadership lost" in a.output()
        assert lease_holder(api, namespace) == "b" and b.process.poll() is None

        b.process.terminate()
        assert b.process.wait(timeout=15) == 0, b.output()
        assert lease_holder(api, namespace) == ""  # released: a new candidate need not wait out the lease
    finally:
        if a.process is not None and a.process.poll() is None:
            a.process.send_signal(signal.SIGCONT)
        a.stop()
        b.stop()
        client.CoreV1Api(api).delete_namespace(namespace)


def test_a_standby_stopped_before_it_leads_exits_cleanly(sandbox: Path, api: client.ApiClient,
                                                          tmp_path: Path) -> None:
    namespace = f"ha-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    a, b = candidate(sandbox, tmp_path, "a", namespace), candidate(sandbox, tmp_path, "b", namespace)
    try:
        a.start()
        wait_for("a leads", lambda: lease_holder(api, namespace) == "a", timeout=30, every=0.2)
        b.start()
        # Stopped only once it runs (its health endpoint answers): under load, importing takes seconds,
        # and a SIGTERM before the process has set up its handling would test nothing of ours.
        wait_for("b serves its health endpoint", lambda: _answers(b.metrics_url + "/healthz"), timeout=60)
        time.sleep(2 * RETRY + 1)
        assert b.process is not None
        b.process.terminate()
        assert b.process.wait(timeout=10) == 0, b.output()
        assert lease_holder(api, namespace) == "a"
    finally:
        a.stop()
        b.stop()
        client.CoreV1Api(api).delete_namespace(namespace)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # it answers, if not yet 200
    except OSError:
        return False
