"""The whole GitOps loop on the sandbox: a commit is synced, its canary fails, the revert lands in
Git, the GitSource applies it, and Git, the cluster and the Canary's status agree.

Git is a real bare repository; the operator is `rollout run` as its own process; Prometheus is
real and scrapes the test's exporter, which plays the bad version's pods.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from rollout.cli.releases import detail, releases, table
from tests.e2e.conftest import (
    GROUP,
    VERSION,
    OperatorProcess,
    image_of,
    release_status,
    wait_for,
    wait_phase,
)
from tests.e2e.exporter import Exporter
from tests.githosts import fake_host
from tests.gitrepo import GitRemote, deployment_yaml, git
from tests.tools import missing_tool

pytestmark = pytest.mark.e2e

OLD, BAD = "ghcr.io/stefanprodan/podinfo:6.0.0", "ghcr.io/stefanprodan/podinfo:6.0.1"


def canary_yaml(namespace: str) -> str:
    return yaml.safe_dump({
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Canary",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "provider": "istio", "progressDeadlineSeconds": 60,
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "service": {"port": 9898},
            "analysis": {"interval": "1s", "threshold": 2, "maxWeight": 50, "stepWeight": 10,
                         "metrics": [{"name": "request-success-rate", "interval": "10s",
                                      "thresholdRange": {"min": 99}}]},
            "git": {"source": "apps", "author": {"name": "rollout-bot", "email": "rollout-bot@example.com"}},
        },
    })


def gitsource(namespace: str, url: str) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "GitSource",
            "metadata": {"name": "apps", "namespace": namespace},
            "spec": {"url": url, "branch": "main", "path": "./apps", "interval": "2s"}}


def test_a_failed_canary_is_reverted_in_git_and_the_revert_is_applied(
    api: client.ApiClient, operator: OperatorProcess, exporter: Exporter, namespace: str, tmp_path: Path
) -> None:
    remote = GitRemote(tmp_path / "git")
    first = remote.commit({"apps/web/deployment.yaml": deployment_yaml("web", OLD, namespace=namespace),
                           "apps/web/canary.yaml": canary_yaml(namespace)}, "feat(web): podinfo 6.0.0")
    exporter.set(namespace, "web", rps=50, error_ratio=0.0)
    exporter.set(namespace, "web-primary", rps=50, error_ratio=0.0)
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "gitsources", gitsource(namespace, remote.url))
    wait_phase(api, namespace, "web", "Initialized", timeout=60)
    assert image_of(api, "web-primary", namespace) == OLD

    bad = remote.commit({"apps/web/deployment.yaml": deployment_yaml("web", BAD, namespace=namespace)},
                        "feat(web): podinfo 6.0.1")
    exporter.set(namespace, "web", rps=50, error_ratio=0.3)  # the new version's pods fail 30% of requests
    failed_at = reverted_at = None
    for _ in range(600):
        status = release_status(api, namespace, "web")
        if failed_at is None and status.get("phase") in ("Failed", "Reverting", "Reverted"):
            failed_at = time.monotonic()
        if reverted_at is None and remote.log("-1")[0].startswith("revert("):
            reverted_at = time.monotonic()
        if status.get("phase") == "Reverted":
            break
        time.sleep(0.2)
    status = wait_phase(api, namespace, "web", "Reverted", timeout=5)
    assert failed_at is not None and reverted_at is not None, operator.output()

    # Git: exactly one revert, on top of the history that was there, with the report and trailers
    head = remote.head()
    assert remote.is_ancestor(bad, head)
    subjects = remote.log(f"{first}..{head}")
    assert subjects == [f"revert(web): roll back {BAD} after failed canary", "feat(web): podinfo 6.0.1"]
    message = git(remote.bare, "log", "-1", "--format=%B", head)
    assert "| metric | canary | primary | limit | verdict |" in message
    assert "| request-success-rate |" in message
    trailers = git(remote.bare, "log", "-1", "--format=%(trailers:only,unfold)", head)
    assert f"Rollout-Canary: {namespace}/web" in trailers and f"Rollout-Reverts: {bad}" in trailers
    assert git(remote.bare, "log", "-1", "--format=%an <%ae>", head) == "rollout-bot <rollout-bot@example.com>"
    assert f"image: {OLD}" in remote.show(head, "apps/web/deployment.yaml")

    # the cluster: the target is back on the promoted image, from the revert commit; all traffic on the primary
    assert image_of(api, "web", namespace) == OLD and image_of(api, "web-primary", namespace) == OLD
    target = client.AppsV1Api(api).read_namespaced_deployment("web", namespace)
    assert target.metadata.annotations["rollout.gitops.dev/revision"] == head
    source = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "gitsources", "apps")["status"]
    assert source["lastAppliedRevision"] == head

    # the Canary's status says the same, and no second run starts
    assert status["revert"]["state"] == "Applied" and status["revert"]["commit"] == head
    assert status["revert"]["reverts"] == [bad]
    assert status["canaryWeight"] == 0
    assert f"Reverted  0       2/2     Applied {head[:7]}" in table(releases(api, namespace))  # `rollout status`
    shown = detail(releases(api, namespace, "web")[0])  # `rollout status web`
    assert f"  git         Applied {head[:7]}: reverted {bad[:7]} in {head[:7]} (git revert)\n" in shown, shown
    assert "  why         request-success-rate " in shown and f"revision {bad[:12]}" in shown, shown
    time.sleep(3)
    assert release_status(api, namespace, "web")["phase"] == "Reverted"
    events = client.CoreV1Api(api).list_namespaced_event(namespace).items
    about_canary = [(e.reason, e.message) for e in events if e.involved_object.kind == "Canary"]
    assert sum("New revision detected" in m for _, m in about_canary) == 1  # no second run
    assert {"Failed", "Reverting", "GitReverted", "Reverted"} <= {r for r, _ in about_canary}
    # /metrics: one failed run, one revert pushed, the GitSource ready on the revert it applied
    assert operator.sample("flagger_canary_failures_total", name="web", namespace=namespace,
                           deployment_strategy="canary", analysis_status="completed") == 1
    assert operator.sample("flagger_canary_status", name="web", namespace=namespace) == 2
    assert operator.sample("rollout_reverts_total", namespace=namespace, name="web", outcome="pushed") == 1
    assert operator.sample("rollout_gitsource_ready", namespace=namespace, name="apps") == 1
    assert operator.sample("rollout_gitsource_applied_revision_info", namespace=namespace, name="apps",
                           revision=head) == 1
    print(f"\nrollback decision -> revert on the remote: {reverted_at - failed_at:.2f}s")
    print(subprocess.run(["git", "show", "--stat", head], cwd=remote.bare, capture_output=True, text=True).stdout)


def test_url_mode_writes_the_revert_for_flux_and_retries_while_the_remote_is_down(
    api: client.ApiClient, operator: OperatorProcess, exporter: Exporter, namespace: str, tmp_path: Path
) -> None:
    """No GitSource: Flux or Argo CD syncs (here: the test applies what is in Git), the operator only
    writes the revert. While the remote is unreachable the release stays Reverting with all
    traffic on the primary and a GitRevertFailed condition, and the revert lands once it is back."""
    remote = GitRemote(tmp_path / "git")
    manifest = "deploy/web.yaml"
    remote.commit({manifest: deployment_yaml("web", OLD, namespace=namespace)}, "feat(web): podinfo 6.0.0")
    apps = client.AppsV1Api(api)

    def flux_sync() -> None:  # what Flux would do: apply the file as it is on the remote
        obj = yaml.safe_load(remote.show(remote.head(), manifest))
        if image_of(api, "web", namespace) != obj["spec"]["template"]["spec"]["containers"][0]["image"]:
            apps.patch_namespaced_deployment("web", namespace, {"spec": {"template": obj["spec"]["template"]}})

    apps.create_namespaced_deployment(namespace, yaml.safe_load(remote.show(remote.head(), manifest)))
    exporter.set(namespace, "web", rps=50, error_ratio=0.0)
    exporter.set(namespace, "web-primary", rps=50, error_ratio=0.0)
    canary = yaml.safe_load(canary_yaml(namespace))
    canary["spec"]["git"] = {"url": remote.url, "branch": "main", "path": "./deploy"}
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "canaries", canary)
    wait_phase(api, namespace, "web", "Initialized", timeout=60)

    bad = remote.commit({manifest: deployment_yaml("web", BAD, namespace=namespace)}, "feat(web): podinfo 6.0.1")
    flux_sync()
    exporter.set(namespace, "web", rps=50, error_ratio=0.3)
    moved = tmp_path / "away.git"
    wait_for("the rollback", lambda: release_status(api, namespace, "web").get("phase") in ("Failed", "Reverting"))
    remote.bare.rename(moved)  # the remote goes down before the revert can be pushed

    def revert_failed() -> dict[str, Any] | None:
        status = release_status(api, namespace, "web")
        cond = next((c for c in status.get("conditions") or [] if c["type"] == "GitRevertFailed"), {})
        return status if cond.get("status") == "True" else None

    status = wait_for("GitRevertFailed", revert_failed, timeout=60)
    assert status["phase"] == "Reverting" and status["canaryWeight"] == 0
    assert "revert" in status and status["revert"]["state"] == "Failed"
    moved.rename(remote.bare)  # back up: the next retry pushes
    wait_for("the revert on the remote", lambda: remote.log("-1")[0].startswith("revert("), timeout=60)
    flux_sync()
    status = wait_phase(api, namespace, "web", "Reverted", timeout=30)
    head = remote.head()
    assert remote.is_ancestor(bad, head) and remote.log(f"{bad}..{head}") == [
        f"revert(web): roll back {BAD} after failed canary"]
    assert status["revert"]["commit"] == head and status["revert"]["reverts"] == [bad]
    cond = next(c for c in status["conditions"] if c["type"] == "GitRevertFailed")
    assert cond["status"] == "False"

    # Flux's image automation commits the failed image again: held, no second run. (Flux applies
    # no revision annotation, so the condition names the image rather than the commit.)
    remote.commit({manifest: deployment_yaml("web", BAD, namespace=namespace)}, "chore: podinfo 6.0.1")
    flux_sync()

    def held() -> dict[str, Any] | None:
        status = release_status(api, namespace, "web")
        cond = next((c for c in status.get("conditions") or [] if c["type"] == "Held"), {})
        return status if cond.get("status") == "True" and f"brings back {BAD}" in cond.get("message", "") else None

    status = wait_for("the Held condition", held, timeout=30)
    assert status["phase"] == "Reverted" and image_of(api, "web-primary", namespace) == OLD
    events = client.CoreV1Api(api).list_namespaced_event(namespace).items
    assert sum("New revision detected" in e.message for e in events if e.involved_object.kind == "Canary") == 1


def test_a_kustomized_image_is_reverted_where_it_was_set(
    api: client.ApiClient, operator: OperatorProcess, exporter: Exporter, namespace: str, tmp_path: Path
) -> None:
    """Flux image automation's layout: the GitSource builds the folder with kustomize and the tag
    lives in kustomization.yaml; the revert puts the tag back there."""
    if shutil.which("kubectl") is None:
        missing_tool("kubectl is not installed (`kubectl kustomize` renders kustomizations)")
    remote = GitRemote(tmp_path / "git")

    def kustomization(tag: str) -> str:
        return ("resources: [deployment.yaml, canary.yaml]\n"
                f"images:\n  - name: ghcr.io/stefanprodan/podinfo\n    newTag: '{tag}'\n")

    remote.commit({"apps/deployment.yaml": deployment_yaml("web", "ghcr.io/stefanprodan/podinfo:latest",
                                                           namespace=namespace),
                   "apps/canary.yaml": canary_yaml(namespace), "apps/kustomization.yaml": kustomization("6.0.0")},
                  "feat(web): kustomized podinfo 6.0.0")
    exporter.set(namespace, "web", rps=50, error_ratio=0.0)
    exporter.set(namespace, "web-primary", rps=50, error_ratio=0.0)
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "gitsources",
                                                                 gitsource(namespace, remote.url))
    wait_phase(api, namespace, "web", "Initialized", timeout=60)
    assert image_of(api, "web-primary", namespace) == OLD
    bad = remote.commit({"apps/kustomization.yaml": kustomization("6.0.1")}, "chore: podinfo 6.0.1")
    exporter.set(namespace, "web", rps=50, error_ratio=0.3)
    status = wait_phase(api, namespace, "web", "Reverted", timeout=90)
    head = remote.head()
    assert remote.log(f"{bad}..{head}") == [f"revert(web): roll back {BAD} after failed canary"]
    assert "newTag: '6.0.0'" in remote.show(head, "apps/kustomization.yaml")
    assert status["revert"]["commit"] == head and status["revert"]["reverts"] == [bad]
    assert image_of(api, "web", namespace) == OLD == image_of(api, "web-primary", namespace)


def test_url_mode_operator_killed_as_its_revert_lands_ends_reverted_after_restart(
    api: client.ApiClient, operator: OperatorProcess, exporter: Exporter, namespace: str, tmp_path: Path
) -> None:
    """The remote's post-receive hook SIGKILLs the operator the moment its revert arrives, before
    it can record the push; Flux applies the reverted file while it is down. Restarted, it finds
    its own revert in Git, adopts it, and the release ends Reverted: one revert on the remote, no
    Event twice."""
    remote = GitRemote(tmp_path / "git")
    manifest = "deploy/web.yaml"
    remote.commit({manifest: deployment_yaml("web", OLD, namespace=namespace)}, "feat(web): podinfo 6.0.0")
    apps = client.AppsV1Api(api)

    def flux_sync() -> None:
        obj = yaml.safe_load(remote.show(remote.head(), manifest))
        if image_of(api, "web", namespace) != obj["spec"]["template"]["spec"]["containers"][0]["image"]:
            apps.patch_namespaced_deployment("web", namespace, {"spec": {"template": obj["spec"]["template"]}})

    apps.create_namespaced_deployment(namespace, yaml.safe_load(remote.show(remote.head(), manifest)))
    exporter.set(namespace, "web", rps=50, error_ratio=0.0)
    exporter.set(namespace, "web-primary", rps=50, error_ratio=0.0)
    canary = yaml.safe_load(canary_yaml(namespace))
    canary["spec"]["git"] = {"url": remote.url, "branch": "main", "path": "./deploy"}
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "canaries", canary)
    wait_phase(api, namespace, "web", "Initialized", timeout=60)

    bad = remote.commit({manifest: deployment_yaml("web", BAD, namespace=namespace)}, "feat(web): podinfo 6.0.1")
    assert operator.process is not None
    hook = remote.bare / "hooks" / "post-receive"  # the next push is the operator's revert
    hook.write_text(f"#!/bin/sh\nkill -9 {operator.process.pid}\n")
    hook.chmod(0o755)
    flux_sync()
    exporter.set(namespace, "web", rps=50, error_ratio=0.3)
    try:
        wait_for("the operator killed by the revert's push", lambda: operator.process.poll() is not None
                 if operator.process else True, timeout=90)
        head = remote.head()
        assert remote.log(f"{bad}..{head}") == [f"revert(web): roll back {BAD} after failed canary"]
        flux_sync()  # Flux applies the revert while the operator is down
    finally:
        hook.unlink()
        if operator.process is None or operator.process.poll() is not None:
            operator.start()  # the operator is shared by the tests that follow
    status = wait_phase(api, namespace, "web", "Reverted", timeout=60)
    assert remote.head() == head, "no second revert"
    assert status["revert"]["commit"] == head and status["revert"]["reverts"] == [bad]
    assert status["canaryWeight"] == 0

    def events_seen() -> Counter[tuple[str | None, str | None]] | None:
        # the Reverted Event is posted just after the phase it reports, so it may trail the status
        events = client.CoreV1Api(api).list_namespaced_event(namespace).items
        seen = Counter((e.reason, e.message) for e in events if e.involved_object.kind == "Canary")
        return seen if {"Failed", "Reverting", "GitReverted", "Reverted"} <= {r for r, _ in seen} else None

    seen = wait_for("the release's Events", events_seen, timeout=10)
    # nothing the restart replays; a check without data is posted at each check, so may repeat
    assert [k for k, n in seen.items() if n > 1 and k[0] not in ("NoData", "Halted")] == []


PROTECTED_MAIN = """#!/bin/sh
# main is protected: changes land through pull requests, merged by the host (E2E_ADMIN: the test's own setup)
[ -n "$E2E_ADMIN" ] && exit 0
while read old new ref; do
  if [ "$ref" = "refs/heads/main" ]; then echo "main is protected: open a pull request" >&2; exit 1; fi
done
"""


def test_a_protected_branch_gets_a_signed_revert_pull_request_and_the_failed_image_is_then_held(
    api: client.ApiClient, operator: OperatorProcess, exporter: Exporter, namespace: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """main refuses direct pushes (a pre-receive hook), so the revert goes to a branch and a pull
    request on the Git host's API (GitHub's, played by a fake on 127.0.0.1: the host cannot run
    here; see tests/githosts.py for the documented shapes). The revert commit is signed with the
    secret's SSH key. While the request is open the release stays Failed with RevertPending; the
    test merges it, the GitSource applies it, the release ends Reverted. Then the image updater
    commits the failed image again: it is held, no second run."""
    if shutil.which("ssh-keygen") is None:
        missing_tool("SSH-KEYGEN NOT FOUND - signed reverts are tested with a real ssh-keygen key")
    monkeypatch.setenv("E2E_ADMIN", "1")  # this test's own commits; the operator has no such key
    remote = GitRemote(tmp_path / "git")
    hook = remote.bare / "hooks" / "pre-receive"
    hook.write_text(PROTECTED_MAIN)
    hook.chmod(0o755)
    key = tmp_path / "signing"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    token = "ghp-e2e-token-never-shown"
    client.CoreV1Api(api).create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="git"),
        string_data={"username": "rollout-bot", "password": token, "signingKey": key.read_text()}))
    with fake_host("github", remote.bare, "platform/deploy", token) as github:
        canary = yaml.safe_load(canary_yaml(namespace))
        canary["spec"]["git"].update({"push": "pullRequest", "pullRequest": {
            "host": "github", "apiURL": github.api_url, "repository": "platform/deploy"}})
        remote.commit({"apps/web/deployment.yaml": deployment_yaml("web", OLD, namespace=namespace),
                       "apps/web/canary.yaml": yaml.safe_dump(canary)}, "feat(web): podinfo 6.0.0")
        exporter.set(namespace, "web", rps=50, error_ratio=0.0)
        exporter.set(namespace, "web-primary", rps=50, error_ratio=0.0)
        source = gitsource(namespace, remote.url)
        source["spec"]["secretRef"] = {"name": "git"}
        client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "gitsources", source)
        wait_phase(api, namespace, "web", "Initialized", timeout=60)

        bad = remote.commit({"apps/web/deployment.yaml": deployment_yaml("web", BAD, namespace=namespace)},
                            "feat(web): podinfo 6.0.1")
        head = remote.head()
        exporter.set(namespace, "web", rps=50, error_ratio=0.3)

        def pending() -> dict[str, Any] | None:
            status = release_status(api, namespace, "web")
            cond = next((c for c in status.get("conditions") or [] if c["type"] == "RevertPending"), {})
            return status if cond.get("status") == "True" and status.get("phase") == "Failed" else None

        status = wait_for("the revert pull request", pending, timeout=60)
        monkeypatch.delenv("E2E_ADMIN")
        with pytest.raises(RuntimeError, match="main is protected"):
            remote.commit({"apps/web/notes.txt": "direct\n"}, "docs: a direct push")  # as the operator's would be
        monkeypatch.setenv("E2E_ADMIN", "1")
        git(remote.work, "reset", "-q", "--hard", "origin/main")
        assert remote.head() == head and status["canaryWeight"] == 0  # main untouched, traffic on the primary
        assert len(github.pulls) == 1
        pull = github.pulls[0]
        branch = f"rollout/revert-{namespace}-web-{bad[:7]}"
        revert = status["revert"]
        assert revert["state"] == "Pushed" and revert["branch"] == branch
        assert revert["pullRequest"] == {"url": f"https://github.com/platform/deploy/pull/{pull.number}",
                                         "number": pull.number, "state": "Open"}
        assert (pull.branch, pull.base) == (branch, "main")
        assert "| request-success-rate |" in pull.body and f"Rollout-Reverts: {bad}" in pull.body
        signers = tmp_path / "allowed_signers"
        signers.write_text(f"rollout-bot@example.com {(tmp_path / 'signing.pub').read_text()}")
        verified = subprocess.run(["git", "-c", f"gpg.ssh.allowedSignersFile={signers}", "verify-commit",
                                   revert["commit"]], cwd=remote.bare, capture_output=True, text=True, timeout=30)
        assert verified.returncode == 0, verified.stderr
        time.sleep(2)  # asked again every interval: still one request
        assert len(github.pulls) == 1 and release_status(api, namespace, "web")["phase"] == "Failed"

        merged = github.merge(pull.number)  # a person approves and merges it
        status = wait_phase(api, namespace, "web", "Reverted", timeout=30)
        assert status["revert"]["state"] == "Applied" and status["revert"]["commit"] == revert["commit"]
        assert image_of(api, "web", namespace) == OLD and remote.head() == merged
        print("\n" + pull.body)

        again = remote.commit({"apps/web/deployment.yaml": deployment_yaml("web", BAD, namespace=namespace)},
                              "chore(web): image update podinfo 6.0.1")  # the image updater brings it back

        def held() -> dict[str, Any] | None:
            status = release_status(api, namespace, "web")
            cond = next((c for c in status.get("conditions") or [] if c["type"] == "Held"), {})
            return status if cond.get("status") == "True" else None

        status = wait_for("the Held condition", held, timeout=30)
        message = next(c for c in status["conditions"] if c["type"] == "Held")["message"]
        assert f"commit {again[:12]}" in message and BAD in message and "rollout retry web" in message
        time.sleep(2)
        status = release_status(api, namespace, "web")
        assert status["phase"] == "Reverted" and status["canaryWeight"] == 0 and status["hold"]["images"] == [BAD]
        assert image_of(api, "web-primary", namespace) == OLD
        events = client.CoreV1Api(api).list_namespaced_event(namespace).items
        assert sum("New revision detected" in e.message for e in events if e.involved_object.kind == "Canary") == 1
        print(detail(releases(api, namespace, "web")[0]))


def test_a_signed_push_webhook_syncs_the_source_at_once_and_a_forged_one_is_refused(
    api: client.ApiClient, operator: OperatorProcess, namespace: str, tmp_path: Path
) -> None:
    """`rollout run --webhook-addr`: a GitHub push delivery, signed with the webhook's secret and sent
    by a real HTTP client, syncs a GitSource whose interval is an hour; a forged one gets a 401 and a
    log line that names the source and not the secret."""
    token = "e2e-w3bh00k-s3cr3t"
    remote = GitRemote(tmp_path / "git")

    def settings(version: str) -> str:
        return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": "settings", "namespace": namespace}, "data": {"v": version}})

    remote.commit({"apps/settings.yaml": settings("1")}, "feat: settings 1")
    client.CoreV1Api(api).create_namespaced_secret(namespace, {"metadata": {"name": "hook"},
                                                               "stringData": {"token": token}})
    source = gitsource(namespace, remote.url)
    source["spec"].update(interval="1h", webhook={"type": "github", "secretRef": {"name": "hook"}})
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "gitsources", source)

    def version() -> str | None:
        try:
            return str(client.CoreV1Api(api).read_namespaced_config_map("settings", namespace).data["v"])
        except client.ApiException:
            return None

    wait_for("the first sync", lambda: version() == "1", timeout=30)
    conditions = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, "gitsources", "apps")["status"]["conditions"]
    webhook = next(c for c in conditions if c["type"] == "Webhook")
    assert (webhook["status"], webhook["message"]) == (
        "True", f"POST /hook/{namespace}/apps on 127.0.0.1:{operator.webhook_port}")
    remote.commit({"apps/settings.yaml": settings("2")}, "feat: settings 2")
    body = json.dumps({"ref": "refs/heads/main", "after": remote.head(),
                       "repository": {"clone_url": remote.url}}).encode()
    mac = hmac.new(token.encode(), body, hashlib.sha256).hexdigest()
    url = f"http://127.0.0.1:{operator.webhook_port}/hook/{namespace}/apps"

    def post(signature: str) -> int:
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", "X-GitHub-Event": "push", "X-Hub-Signature-256": signature})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as e:
            return e.code

    assert post("sha256=" + "0" * 64) == 401
    time.sleep(1)
    assert version() == "1"  # refused: nothing synced
    sent = time.monotonic()
    assert post(f"sha256={mac}") == 202
    wait_for("the pushed revision applied", lambda: version() == "2", timeout=15, every=0.1)
    print(f"\npush webhook -> revision applied: {time.monotonic() - sent:.2f}s")
    log = operator.log.read_text(errors="replace")
    assert f"webhook for GitSource {namespace}/apps refused (401)" in log
    assert token not in log and mac not in log
