"""`rollout demo --json` as a user runs it: v2 promoted, v3 rolled back and reverted in Git, once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gitrepo import git

pytestmark = pytest.mark.e2e


def test_the_demo_promotes_v2_reverts_v3_and_git_and_the_cluster_agree(tmp_path: Path) -> None:
    done = subprocess.run([str(Path(sys.executable).parent / "rollout"), "demo", "--json", "--interval", "2",
                           "--dir", str(tmp_path)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:] + (tmp_path / "operator.log").read_text()[-3000:]
    result = json.loads(done.stdout)
    assert result["v2"]["phase"] == "Succeeded" and result["v3"]["phase"] == "Reverted"
    assert result["agree"] and result["phase"] == "Reverted"
    assert result["target_image"] == result["primary_image"] == "ghcr.io/stefanprodan/podinfo:6.0.1"

    remote = tmp_path / "git" / "remote.git"
    reverts = git(remote, "log", "--format=%H", "--grep=Rollout-Reverts: ", "main").split()
    assert reverts == [result["revert_commit"]] == [result["remote_head"]]  # exactly one, and it is applied
    message = git(remote, "log", "-1", "--format=%B", result["revert_commit"])
    assert message.startswith("revert(podinfo): roll back ghcr.io/stefanprodan/podinfo:6.0.2 after failed canary")
    assert "| request-success-rate |" in message and "| fail |" in message
    trailers = git(remote, "log", "-1", "--format=%(trailers:only,unfold)", result["revert_commit"])
    assert "Rollout-Canary: demo/podinfo" in trailers and f"Rollout-Reverts: {result['v3']['bad_revision']}" in trailers
    v3 = result["v3"]
    # Timed from the first request the data plane sent to v3's pods: the rollback comes after it
    # (the first checks see errors), and the revert after the rollback.
    assert v3["bad_to_rollback"] is not None and v3["rollback_to_revert"] is not None, v3
    assert 0 < v3["bad_to_rollback"] < v3["bad_to_revert"], v3
    assert len(result["reports"]) == 2 and all(Path(p).is_file() for p in result["reports"])
    # The DORA figures of the demo's two runs, as `rollout dora` computes them from the Canary's records.
    dora = result["dora"]
    assert dora["runs"] == 2 and dora["deploymentFrequency"]["promotions"] == 1
    assert dora["changeFailureRate"] == {"failures": 1, "runs": 2, "rate": 0.5}
    assert dora["leadTimeForChanges"]["count"] == 1 and 0 < dora["leadTimeForChanges"]["medianSeconds"] < 300
    assert dora["timeToRestore"]["traffic"]["count"] == dora["timeToRestore"]["revert"]["count"] == 1
    assert 0 < dora["timeToRestore"]["revert"]["medianSeconds"] < v3["bad_to_revert"] + 60


def test_make_demo_prints_the_summary_and_the_dora_figures(tmp_path: Path) -> None:
    """What `make demo` shows a person: the summary, then `rollout dora`'s table of the demo's runs."""
    done = subprocess.run([str(Path(sys.executable).parent / "rollout"), "demo", "--interval", "2",
                           "--dir", str(tmp_path)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:] + (tmp_path / "operator.log").read_text()[-3000:]
    out = done.stdout
    assert "Git and cluster agree: yes" in out
    dora = out[out.index("DORA figures of this demo (rollout dora -n demo):"):]
    lines = dora.splitlines()
    assert lines[2].split() == ["NAMESPACE", "NAME", "KIND", "RUNS", "PROMOTED", "FAILED", "LEAD", "TIME",
                                "RESTORE", "TRAFFIC", "RESTORE", "REVERT"]
    assert lines[3].split()[:6] == ["demo", "podinfo", "Canary", "2", "1", "1"]
    for expected in ("  deployment frequency   1 promotion in ", "  lead time for changes  median ",
                     "  change failure rate    50% (1 of 2 runs)",
                     "  time to restore        traffic back on the primary: median ",
                     "                         revert applied from Git:     median "):
        assert expected in dora, dora


def test_the_mirror_demo_judges_on_mirrored_traffic(tmp_path: Path) -> None:
    """`rollout demo --mirror`: users stay on the primary; v2 passes and v3 fails on the canary's
    mirrored requests alone, so no user ever got v3's answers."""
    done = subprocess.run([str(Path(sys.executable).parent / "rollout"), "demo", "--json", "--mirror", "--provider",
                           "istio", "--interval", "2", "--dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:] + (tmp_path / "operator.log").read_text()[-3000:]
    result = json.loads(done.stdout)
    assert result["mirror"] and result["v2"]["phase"] == "Succeeded" and result["v3"]["phase"] == "Reverted"
    assert result["agree"] and result["target_image"] == "ghcr.io/stefanprodan/podinfo:6.0.1"
    assert result["v3"]["bad_to_rollback"] is None  # no user request ever reached v3
    canary = (tmp_path / "git" / "work" / "apps" / "podinfo" / "canary.yaml")
    assert not canary.exists() or "mirror: true" in canary.read_text()


def test_the_mirror_demo_needs_a_mirroring_provider() -> None:
    done = subprocess.run([str(Path(sys.executable).parent / "rollout"), "demo", "--mirror", "--provider", "nginx"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "--mirror needs --provider istio or gatewayapi" in done.stderr
