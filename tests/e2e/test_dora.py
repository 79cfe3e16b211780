"""`rollout dora` as a user runs it, against the sandbox after a promoted and a reverted release.

The GitSource applies each commit (annotating its commit time, read from its clone), the operator
records each run's end in the Canary's `status.history`, and `rollout dora` computes the figures
from those records alone: the commit times it reports are Git's own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from prometheus_client import REGISTRY

from rollout.cli.releases import detail, releases
from rollout.engine.kube import api_client
from rollout.engine.operator import Operator
from rollout.settings import Settings
from sandbox import Sandbox
from tests.e2e.conftest import (
    GROUP,
    VERSION,
    OperatorProcess,
    create_deployment,
    create_release,
    release_status,
    set_image,
    wait_phase,
)
from tests.e2e.exporter import Exporter
from tests.e2e.test_gitops import canary_yaml, gitsource
from tests.e2e.test_operator import canary
from tests.gitrepo import GitRemote, deployment_yaml, git

pytestmark = pytest.mark.e2e

OLD, GOOD, BAD = ("ghcr.io/stefanprodan/podinfo:6.0.0", "ghcr.io/stefanprodan/podinfo:6.0.1",
                  "ghcr.io/stefanprodan/podinfo:6.0.2")
ROLLOUT = str(Path(sys.executable).parent / "rollout")


def dora(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ROLLOUT, "dora", "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
                          timeout=60, check=False)


def time_of(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def committed(remote: GitRemote, sha: str) -> datetime:
    return datetime.fromisoformat(git(remote.bare, "show", "-s", "--format=%cI", sha))


def test_rollout_dora_after_a_promoted_and_a_reverted_release(
    api: client.ApiClient, sandbox: Path, operator: OperatorProcess, exporter: Exporter, namespace: str,
    tmp_path: Path,
) -> None:
    remote = GitRemote(tmp_path / "git")
    remote.commit({"apps/web/deployment.yaml": deployment_yaml("web", OLD, namespace=namespace),
                   "apps/web/canary.yaml": canary_yaml(namespace)}, "feat(web): podinfo 6.0.0")
    exporter.set(namespace, "web", rps=50, error_ratio=0.0)
    exporter.set(namespace, "web-primary", rps=50, error_ratio=0.0)
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "gitsources",
                                                                 gitsource(namespace, remote.url))
    wait_phase(api, namespace, "web", "Initialized", timeout=60)
    empty = dora(sandbox, "-n", namespace, "--json")
    assert empty.returncode == 0 and json.loads(empty.stdout)["runs"] == 0, empty.stderr  # no run ended yet

    good = remote.commit({"apps/web/deployment.yaml": deployment_yaml("web", GOOD, namespace=namespace)},
                         "feat(web): podinfo 6.0.1")
    wait_phase(api, namespace, "web", "Progressing", "Succeeded", timeout=60)
    wait_phase(api, namespace, "web", "Succeeded", timeout=120)
    exporter.set(namespace, "web", rps=50, error_ratio=0.3)  # the next version's pods fail 30% of requests
    bad = remote.commit({"apps/web/deployment.yaml": deployment_yaml("web", BAD, namespace=namespace)},
                        "feat(web): podinfo 6.0.2")
    wait_phase(api, namespace, "web", "Failed", "Reverting", "Reverted", timeout=120)
    status: dict[str, Any] = wait_phase(api, namespace, "web", "Reverted", timeout=120)

    # The records: one per run, with Git's commit times and the times of the failure's handling.
    promoted, reverted = status["history"]
    assert (promoted["outcome"], promoted["revision"]) == ("Succeeded", good), operator.output()
    assert (reverted["outcome"], reverted["revision"]) == ("Reverted", bad)
    assert time_of(promoted["committedAt"]) == committed(remote, good)
    assert time_of(reverted["committedAt"]) == committed(remote, bad)
    assert reverted["revertCommit"] == remote.head() == status["revert"]["commit"]
    times = [time_of(reverted[k]) for k in ("startedAt", "failedAt", "restoredAt", "revertedAt", "endedAt")]
    assert times == sorted(times) and times[1] == times[2]
    lead = (time_of(promoted["endedAt"]) - committed(remote, good)).total_seconds()
    traffic = (time_of(reverted["restoredAt"]) - time_of(reverted["failedAt"])).total_seconds()
    revert = (time_of(reverted["revertedAt"]) - time_of(reverted["failedAt"])).total_seconds()

    # `rollout dora --json`: the same figures, from the records.
    done = dora(sandbox, "-n", namespace, "--since", "1h", "--json")
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["runs"] == 2 and figures["deploymentFrequency"]["promotions"] == 1
    assert figures["changeFailureRate"] == {"failures": 1, "runs": 2, "rate": 0.5}
    assert figures["leadTimeForChanges"]["count"] == 1
    assert figures["leadTimeForChanges"]["medianSeconds"] == pytest.approx(lead)
    assert figures["timeToRestore"]["traffic"]["medianSeconds"] == pytest.approx(traffic)
    assert figures["timeToRestore"]["revert"]["medianSeconds"] == pytest.approx(revert)
    assert [(r["namespace"], r["name"], r["kind"], r["runs"]) for r in figures["releases"]] == [
        (namespace, "web", "Canary", 2)]

    # The table, as a person reads it.
    table = dora(sandbox, "-n", namespace, "--since", "1h")
    assert table.returncode == 0, table.stderr
    print("\n" + table.stdout)
    lines = table.stdout.splitlines()
    assert lines[0].split()[:6] == ["NAMESPACE", "NAME", "KIND", "RUNS", "PROMOTED", "FAILED"]
    assert lines[1].split()[:6] == [namespace, "web", "Canary", "2", "1", "1"]
    assert "  deployment frequency   1 promotion in 1h (24.00/day, 168/week)" in table.stdout
    assert "  change failure rate    50% (1 of 2 runs)" in table.stdout
    assert "  lead time for changes  median " in table.stdout and "(n=1)" in table.stdout

    # `rollout status web` names the records too.
    shown = detail(releases(api, namespace, "web")[0])
    assert f"  runs        2 recorded (rollout dora); last Reverted {bad[:12]} at {reverted['endedAt']}\n" in shown

    # Nothing more is recorded later, and a namespace with no releases is said, never a traceback.
    assert release_status(api, namespace, "web")["history"] == status["history"]  # nothing more was recorded
    none = dora(sandbox, "-n", f"{namespace}-none")
    assert none.returncode == 1 and none.stdout == ""
    assert none.stderr == (f"rollout dora: no Canary or BlueGreen in namespace {namespace}-none: "
                           "no release records to compute figures from\n")


def test_rollout_dora_says_in_one_line_what_is_wrong(tmp_path: Path) -> None:
    unreachable = tmp_path / "kubeconfig"
    unreachable.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {}}]\n")
    for args, code, expected in (
        (["--kubeconfig", str(unreachable)], 1,
         "rollout dora: cannot reach the Kubernetes API at http://127.0.0.1:9 ("),
        (["--kubeconfig", str(tmp_path / "missing")], 1, "rollout dora: no usable kubeconfig ("),
        (["--since", "yesterday"], 2, "rollout dora: --since must be a positive duration like 30d, 2w, 12h or 90m"),
    ):
        done = subprocess.run([ROLLOUT, "dora", *args], capture_output=True, text=True, timeout=60, check=False,
                              env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
        assert done.returncode == code and done.stderr.startswith(expected), done.stderr
        assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr


def test_the_dora_metrics_count_each_run_once_even_when_the_operator_restarts(tmp_path: Path) -> None:
    """The operator's reconcile in-process (no kopf) on an in-process sandbox, so the default
    registry it records in is this one: a promoted run and an aborted run are counted once each,
    and a second operator (a restart) reading the same status counts nothing again."""
    def sample(metric: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(metric, labels) or 0.0

    ns = "dora-metrics"
    with Sandbox(deployment_ready_delay=0.1) as sb:
        api = api_client(sb.write_kubeconfig(tmp_path / "kubeconfig"))
        client.CoreV1Api(api).create_namespace({"metadata": {"name": ns}})
        create_deployment(api, "app", ns)
        create_release(api, canary("app", ns, "istio", metrics=[], stepWeight=50, interval="1s"))
        custom = client.CustomObjectsApi(api)

        def status() -> dict[str, Any]:
            return dict(custom.get_namespaced_custom_object(GROUP, VERSION, ns, "canaries", "app").get("status") or {})

        def run_until(operator: Operator, phase: str) -> dict[str, Any]:
            for _ in range(60):
                operator.reconcile("Canary", ns, "app")
                if status().get("phase") == phase:
                    return status()
                time.sleep(0.3)
            raise AssertionError(f"never reached {phase}: {status().get('phase')}")

        first = Operator(api, settings=Settings(prometheus="http://127.0.0.1:9"))
        run_until(first, "Initialized")
        set_image(api, "app", ns, "x:2")
        run_until(first, "Succeeded")
        assert sample("rollout_dora_deployments_total", namespace=ns, name="app") == 1
        assert sample("rollout_dora_lead_time_seconds_count", namespace=ns) == 0  # no Git: no commit time

        set_image(api, "app", ns, "x:3")
        run_until(first, "Progressing")
        custom.patch_namespaced_custom_object_status(GROUP, VERSION, ns, "canaries", "app",
                                                     {"status": {"command": "abort"}})
        failed = run_until(first, "Failed")
        assert [r["outcome"] for r in failed["history"]] == ["Succeeded", "Failed"]
        assert sample("rollout_dora_change_failures_total", namespace=ns, name="app") == 1
        assert sample("rollout_dora_time_to_restore_seconds_count", namespace=ns, stage="traffic") == 1
        assert sample("rollout_dora_time_to_restore_seconds_count", namespace=ns, stage="revert") == 0

        restarted = Operator(api, settings=Settings(prometheus="http://127.0.0.1:9"))
        for _ in range(5):
            restarted.reconcile("Canary", ns, "app")
            time.sleep(0.2)
        assert status()["history"] == failed["history"]
        assert sample("rollout_dora_deployments_total", namespace=ns, name="app") == 1
        assert sample("rollout_dora_change_failures_total", namespace=ns, name="app") == 1
