"""The revert writer against real Git remotes: a bare repository served over file:// and over a
real `git daemon` on 127.0.0.1.

Each test builds a history the way a team would (a promoted image, then a bad one, maybe other
workloads' changes around it), runs the writer, and reads the result back from the remote with
plain git: the message and trailers, the files, the author, and how many reverts exist. Crashes
are real too: a subprocess killed with SIGKILL between commit and push, a daemon stopped
mid-life. Whatever happens, the remote's history is only ever extended: every call asserts that
the branch head before is an ancestor of the branch head after.
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from rollout.api.spec import GitAuthor, PushMode, RevertMode
from rollout.api.status import RevertState
from rollout.core import RevertOutcome
from rollout.gitops.manifests import WorkloadId
from rollout.gitops.repo import Credentials, clone_folder
from rollout.gitops.revert import RevertHooks, RevertRequest, TrackedConfig, write_revert
from rollout.settings import Settings
from tests.gitrepo import GitRemote, deployment_yaml, git, service_yaml
from tests.tools import missing_tool

pytestmark = pytest.mark.component

REPO_ROOT = Path(__file__).resolve().parents[2]
PODINFO = "apps/podinfo/deployment.yaml"
BACKEND = "apps/backend/deployment.yaml"
GOOD = "ghcr.io/stefanprodan/podinfo:6.0.0"
BAD = "ghcr.io/stefanprodan/podinfo:6.1.0"
WORSE = "ghcr.io/stefanprodan/podinfo:6.2.0"
REPORT = """**Failed** after 3 of 10 checks: request-success-rate below its minimum.

| metric | verdict | canary | primary | limit |
|---|---|---|---|---|
| request-success-rate | fail | 91.20 | 99.95 | >= 99 |
| request-duration | pass | 212 | 198 | <= 500 |
"""
REASON = "request-success-rate 91.20% < 99% in 3 consecutive checks"
AUTHOR = GitAuthor("rollout bot", "rollout-bot@example.com")
PASSWORD = "s3cret-token-never-shown"
READY_TIMEOUT = 20.0


# --- remotes --------------------------------------------------------------------------------------


class Daemon:
    """`git daemon` serving one folder on a fixed free port, stoppable and restartable by pid."""

    def __init__(self, base: Path) -> None:
        self.base = base
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack", f"--base-path={self.base}",
             "--listen=127.0.0.1", f"--port={self.port}", str(self.base)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"git daemon exited with {self.proc.returncode} before listening")
            with socket.socket() as sock:
                sock.settimeout(0.5)
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"git daemon did not listen on 127.0.0.1:{self.port}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


class Remote(GitRemote):
    """A GitRemote the writer reaches over `transport`, with the writer's cache beside it."""

    def __init__(self, root: Path, transport: str) -> None:
        super().__init__(root)
        self.cache = root / "cache"
        self.daemon: Daemon | None = None
        if transport == "git-daemon":
            self.daemon = Daemon(root)
            self.daemon.start()

    @property
    def url(self) -> str:
        if self.daemon:
            return f"git://127.0.0.1:{self.daemon.port}/{self.bare.name}"
        return f"file://{self.bare}"

    def revert(self, request: RevertRequest, **kwargs: object) -> RevertOutcome:
        """Run the writer; the branch must only ever move forward."""
        before = self.head()
        outcome = write_revert(self.url, "main", Credentials("rollout", PASSWORD), request, self.cache,
                               settings=Settings(), **kwargs)  # type: ignore[arg-type]
        assert self.is_ancestor(before, self.head()), "the writer rewrote the remote's history"
        assert PASSWORD not in outcome.message
        return outcome

    def message(self, revision: str) -> str:
        return git(self.bare, "log", "-1", "--format=%B", revision)

    def trailers(self, revision: str) -> list[str]:
        message = self.message(revision)
        done = subprocess.run(["git", "interpret-trailers", "--parse"], input=message, text=True,
                              capture_output=True, check=True)
        return done.stdout.splitlines()

    def reverts_by(self, canary: str, ref: str = "main") -> list[str]:
        """Commits on `ref` whose trailers name `canary`."""
        out = git(self.bare, "log", "--format=%H %(trailers:key=Rollout-Canary,valueonly,separator=%x2C)", ref)
        return [line.split()[0] for line in out.splitlines() if line.split()[1:] == [canary]]

    def files(self, revision: str = "main") -> set[str]:
        return set(git(self.bare, "ls-tree", "-r", "--name-only", revision).splitlines())


# Tests about what is written run over file://; tests about talking to a remote (pushes, rejections,
# crashes, outages) also run over git://.
BOTH_TRANSPORTS = pytest.mark.parametrize("remote", ["file", "git-daemon"], indirect=True)


@pytest.fixture
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Remote]:
    transport = getattr(request, "param", "file")
    if shutil.which("git") is None:
        missing_tool("GIT NOT FOUND - the revert writer's tests need the git program")
    exec_path = Path(git(tmp_path, "--exec-path"))
    if transport == "git-daemon" and not (exec_path / "git-daemon").exists():
        missing_tool("GIT-DAEMON NOT FOUND - install git's daemon (`git daemon`) to test the git:// transport")
    served = Remote(tmp_path, transport)
    try:
        yield served
    finally:
        if served.daemon:
            served.daemon.stop()


def failed_release(**changes: object) -> RevertRequest:
    base = RevertRequest(
        namespace="prod", name="podinfo", kind="Deployment", workload="podinfo", workload_namespace="prod",
        candidate_revision=None, promoted_revision=None, source_path=PODINFO, search_path="./apps",
        images=(BAD,), promoted_images=(GOOD,), reason=REASON, report=REPORT, author=AUTHOR,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def colleague(remote: Remote, tmp_path: Path) -> GitRemote:
    """Another person's clone of the same remote."""
    other = GitRemote(tmp_path / "colleague")
    other.bare = remote.bare
    git(other.work, "remote", "set-url", "origin", str(remote.bare))
    return other


def with_pull_policy(text: str) -> str:
    """A later edit on the line right after the image: a `git revert` of the image change conflicts."""
    return text.replace("          ports:", "          imagePullPolicy: Always\n          ports:")


def bad_release(remote: Remote) -> tuple[str, str]:
    """podinfo promoted at GOOD, then BAD committed; returns (promoted, candidate)."""
    promoted = remote.commit({PODINFO: deployment_yaml("podinfo", GOOD, namespace="prod"),
                              BACKEND: deployment_yaml("backend", "backend:1.0", namespace="prod")}, "podinfo 6.0.0")
    candidate = remote.commit({PODINFO: deployment_yaml("podinfo", BAD, namespace="prod")}, "podinfo 6.1.0")
    return promoted, candidate


# --- tests ----------------------------------------------------------------------------------------


@BOTH_TRANSPORTS
def test_clean_revert_is_a_git_revert_with_report_and_trailers(remote: Remote) -> None:
    promoted, candidate = bad_release(remote)
    unrelated = remote.commit({BACKEND: deployment_yaml("backend", "backend:1.1", namespace="prod")}, "backend 1.1")

    outcome = remote.revert(failed_release(candidate_revision=candidate, promoted_revision=promoted))

    assert outcome.state is RevertState.PUSHED, outcome.message
    head = remote.head()
    assert outcome.commit == head and outcome.branch is None and outcome.reverts == (candidate,)
    assert outcome.message == f"reverted {candidate[:7]} in {head[:7]} (git revert)"
    assert git(remote.bare, "rev-parse", f"{head}^") == unrelated
    message = remote.message(head)
    subject, blank, reason = message.splitlines()[:3]
    assert subject == f"revert(podinfo): roll back {BAD} after failed canary"
    assert blank == "" and reason == REASON
    assert "| request-success-rate | fail | 91.20 | 99.95 | >= 99 |" in message.splitlines()
    assert remote.trailers(head) == ["Rollout-Canary: prod/podinfo", f"Rollout-Reverts: {candidate}"]
    assert remote.show("main", PODINFO) == remote.show(promoted, PODINFO)
    assert remote.show("main", BACKEND) == deployment_yaml("backend", "backend:1.1", namespace="prod").rstrip("\n")
    who = git(remote.bare, "log", "-1", "--format=%an <%ae>|%cn <%ce>", head)
    assert who == "rollout bot <rollout-bot@example.com>|rollout bot <rollout-bot@example.com>"


def test_later_change_to_the_same_lines_falls_back_to_a_file_restore(remote: Remote) -> None:
    promoted, candidate = bad_release(remote)
    later = remote.commit({PODINFO: with_pull_policy(deployment_yaml("podinfo", BAD, namespace="prod"))},
                          "podinfo: always pull")

    outcome = remote.revert(failed_release(candidate_revision=candidate, promoted_revision=promoted))

    assert outcome.state is RevertState.PUSHED, outcome.message
    assert outcome.message.endswith("(file restore)") and outcome.reverts == (candidate,)
    restored = remote.show("main", PODINFO)
    assert BAD not in restored and restored == remote.show(promoted, PODINFO)
    assert git(remote.bare, "rev-parse", "main^") == later
    assert f"Rollout-Reverts: {candidate}" in remote.trailers("main")


def test_commit_that_changed_two_workloads_keeps_the_other_ones_change(remote: Remote) -> None:
    promoted = remote.commit({PODINFO: deployment_yaml("podinfo", GOOD, namespace="prod"),
                              BACKEND: deployment_yaml("backend", "backend:1.0", namespace="prod")}, "first")
    both = remote.commit({PODINFO: deployment_yaml("podinfo", BAD, namespace="prod"),
                          BACKEND: deployment_yaml("backend", "backend:2.0", namespace="prod")}, "bump both")

    outcome = remote.revert(failed_release(candidate_revision=both, promoted_revision=promoted))

    assert outcome.state is RevertState.PUSHED, outcome.message
    assert outcome.message.endswith("(file restore)") and outcome.reverts == (both,)
    assert remote.show("main", PODINFO) == remote.show(promoted, PODINFO)
    assert "image: backend:2.0" in remote.show("main", BACKEND)
    assert git(remote.bare, "diff", "--name-only", "main^", "main") == PODINFO


ALL = "apps/all.yaml"


def multi_document(podinfo: str, backend: str) -> str:
    return "\n".join([
        "# everything the shop runs",
        "---",
        deployment_yaml("podinfo", podinfo),
        "---",
        service_yaml("podinfo"),
        "--- # the backend",
        deployment_yaml("backend", backend, namespace="prod"),
    ])


@pytest.mark.parametrize("backend_too", [False, True], ids=["only-podinfo", "podinfo-and-backend"])
def test_multi_document_file(remote: Remote, backend_too: bool) -> None:
    promoted = remote.commit({ALL: multi_document(GOOD, "backend:1.0")}, "all at 6.0.0")
    candidate = remote.commit({ALL: multi_document(BAD, "backend:2.0" if backend_too else "backend:1.0")},
                              "podinfo 6.1.0")
    request = failed_release(candidate_revision=candidate, promoted_revision=promoted, source_path=None)

    outcome = remote.revert(request)

    assert outcome.state is RevertState.PUSHED, outcome.message
    assert outcome.message.endswith("(file restore)" if backend_too else "(git revert)")
    expected = multi_document(GOOD, "backend:2.0" if backend_too else "backend:1.0")
    assert remote.show("main", ALL) == expected.rstrip("\n")
    assert remote.trailers("main") == ["Rollout-Canary: prod/podinfo", f"Rollout-Reverts: {candidate}"]


def test_url_mode_finds_the_file_and_the_last_good_image(remote: Remote) -> None:
    remote.commit({PODINFO: deployment_yaml("podinfo", GOOD, namespace="prod"),
                   BACKEND: deployment_yaml("backend", "backend:1.0", namespace="prod")}, "first")
    good = remote.commit({PODINFO: deployment_yaml("podinfo", GOOD, namespace="prod", replicas=3)}, "scale up")
    bad = remote.commit({PODINFO: deployment_yaml("podinfo", BAD, namespace="prod", replicas=3)}, "6.1.0")
    remote.commit({BACKEND: deployment_yaml("backend", "backend:1.1", namespace="prod")}, "backend 1.1")
    worse = remote.commit({PODINFO: deployment_yaml("podinfo", WORSE, namespace="prod", replicas=3)}, "6.2.0")
    request = failed_release(source_path=None, images=(WORSE,))

    outcome = remote.revert(request)

    assert outcome.state is RevertState.PUSHED, outcome.message
    assert outcome.reverts == (worse, bad) and outcome.message.endswith("(git revert)")
    assert remote.show("main", PODINFO) == remote.show(good, PODINFO)
    assert remote.trailers("main") == ["Rollout-Canary: prod/podinfo", f"Rollout-Reverts: {worse}",
                                       f"Rollout-Reverts: {bad}"]
    assert "image: backend:1.1" in remote.show("main", BACKEND)

    again = remote.revert(request)  # the status patch was lost: the same call finds its own commit
    assert again.state is RevertState.PUSHED and again.commit == outcome.commit, again.message
    assert again.message == f"already reverted in {remote.head()[:7]}"
    assert remote.reverts_by("prod/podinfo") == [outcome.commit]


@BOTH_TRANSPORTS
def test_concurrent_commit_between_fetch_and_push(remote: Remote, tmp_path: Path) -> None:
    promoted, candidate = bad_release(remote)
    other = colleague(remote, tmp_path)
    landed: list[str] = []

    def colleague_pushes() -> None:
        if not landed:
            landed.append(other.commit({BACKEND: deployment_yaml("backend", "backend:3.0", namespace="prod")},
                                       "backend 3.0"))

    outcome = remote.revert(failed_release(candidate_revision=candidate, promoted_revision=promoted),
                            hooks=RevertHooks(after_fetch=colleague_pushes))

    assert outcome.state is RevertState.PUSHED, outcome.message
    assert landed and outcome.commit == remote.head()
    assert git(remote.bare, "rev-parse", "main^") == landed[0]  # rebased onto the colleague's commit
    assert remote.show("main", PODINFO) == remote.show(promoted, PODINFO)
    assert "image: backend:3.0" in remote.show("main", BACKEND)
    assert remote.reverts_by("prod/podinfo") == [outcome.commit]


def test_rebase_that_conflicts_is_planned_again_from_the_new_head(remote: Remote, tmp_path: Path) -> None:
    promoted, candidate = bad_release(remote)
    other = colleague(remote, tmp_path)
    landed: list[str] = []

    def colleague_edits_the_same_lines() -> None:
        if not landed:
            text = with_pull_policy(deployment_yaml("podinfo", BAD, namespace="prod"))
            landed.append(other.commit({PODINFO: text}, "podinfo: always pull"))

    outcome = remote.revert(failed_release(candidate_revision=candidate, promoted_revision=promoted),
                            hooks=RevertHooks(after_fetch=colleague_edits_the_same_lines))

    assert outcome.state is RevertState.PUSHED, outcome.message
    assert git(remote.bare, "rev-parse", "main^") == landed[0]
    assert outcome.message.endswith("(file restore)")
    assert remote.show("main", PODINFO) == remote.show(promoted, PODINFO)


def test_branch_that_keeps_moving_fails_after_the_attempts_then_succeeds(remote: Remote, tmp_path: Path) -> None:
    promoted, candidate = bad_release(remote)
    other = colleague(remote, tmp_path)
    pushed: list[str] = []

    def busy_team() -> None:
        pushed.append(other.commit({"README.md": f"change {len(pushed)}\n"}, f"docs {len(pushed)}"))

    request = failed_release(candidate_revision=candidate, promoted_revision=promoted)
    outcome = remote.revert(request, attempts=2, hooks=RevertHooks(after_fetch=busy_team))

    assert outcome.state is RevertState.FAILED
    assert "rejected 2 times" in outcome.message and len(pushed) == 2
    assert remote.reverts_by("prod/podinfo") == []

    outcome = remote.revert(request)
    assert outcome.state is RevertState.PUSHED, outcome.message
    assert remote.reverts_by("prod/podinfo") == [outcome.commit]


@pytest.mark.parametrize("remote", ["git-daemon"], indirect=True)
def test_remote_down_fails_clearly_then_succeeds_when_back(remote: Remote) -> None:
    assert remote.daemon is not None
    promoted, candidate = bad_release(remote)
    request = failed_release(candidate_revision=candidate, promoted_revision=promoted)
    remote.daemon.stop()

    outcome = remote.revert(request)

    assert outcome.state is RevertState.FAILED
    assert outcome.message.startswith("git fetch:") and "127.0.0.1" in outcome.message
    assert "\n" not in outcome.message

    remote.daemon.start()
    outcome = remote.revert(request)
    assert outcome.state is RevertState.PUSHED, outcome.message
    assert remote.reverts_by("prod/podinfo") == [outcome.commit]


_KILLED_RUN = """
import os, pickle, signal, sys
from pathlib import Path
from rollout.gitops.revert import RevertHooks, write_revert
from rollout.settings import Settings

url, cache, request = pickle.loads(Path(sys.argv[1]).read_bytes())
write_revert(url, "main", None, request, cache, settings=Settings(),
             hooks=RevertHooks(after_commit=lambda: os.kill(os.getpid(), signal.SIGKILL)))
raise SystemExit("the hook should have killed this process")
"""


@BOTH_TRANSPORTS
def test_process_killed_between_commit_and_push(remote: Remote, tmp_path: Path) -> None:
    promoted, candidate = bad_release(remote)
    request = failed_release(candidate_revision=candidate, promoted_revision=promoted)
    before = remote.head()
    arguments = tmp_path / "arguments.pickle"
    arguments.write_bytes(pickle.dumps((remote.url, remote.cache, request)))

    killed = subprocess.run([sys.executable, "-c", _KILLED_RUN, str(arguments)], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60, check=False)

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert remote.head() == before  # committed locally, never pushed
    outcome = remote.revert(request)
    assert outcome.state is RevertState.PUSHED, outcome.message
    assert remote.reverts_by("prod/podinfo") == [outcome.commit]
    assert git(remote.bare, "rev-parse", "main^") == before
    assert remote.show("main", PODINFO) == remote.show(promoted, PODINFO)


@BOTH_TRANSPORTS
def test_called_again_after_a_push_finds_its_commit(remote: Remote) -> None:
    promoted, candidate = bad_release(remote)
    request = failed_release(candidate_revision=candidate, promoted_revision=promoted)
    first = remote.revert(request)
    assert first.state is RevertState.PUSHED and first.commit, first.message
    remote.commit({BACKEND: deployment_yaml("backend", "backend:1.1", namespace="prod")}, "later work")
    head = remote.head()

    again = remote.revert(request)

    assert again == RevertOutcome(RevertState.PUSHED, commit=first.commit, reverts=(candidate,),
                                  message=f"already reverted in {first.commit[:7]}", branch=None)
    assert remote.head() == head and remote.reverts_by("prod/podinfo") == [first.commit]


@BOTH_TRANSPORTS
def test_push_branch_leaves_main_alone(remote: Remote) -> None:
    promoted, candidate = bad_release(remote)
    head = remote.head()
    request = failed_release(candidate_revision=candidate, promoted_revision=promoted, push=PushMode.BRANCH)

    outcome = remote.revert(request)

    branch = f"rollout/revert-prod-podinfo-{candidate[:7]}"
    assert outcome.state is RevertState.PUSHED, outcome.message
    assert outcome.branch == branch and remote.head() == head
    assert git(remote.bare, "rev-parse", branch) == outcome.commit
    assert git(remote.bare, "rev-parse", f"{branch}^") == head
    assert remote.show(branch, PODINFO) == remote.show(promoted, PODINFO)
    assert remote.reverts_by("prod/podinfo", branch) == [outcome.commit]

    again = remote.revert(request)
    assert again.state is RevertState.PUSHED and again.commit == outcome.commit and again.branch == branch
    assert git(remote.bare, "rev-parse", branch) == outcome.commit

    git(remote.bare, "update-ref", "refs/heads/main", branch, head)  # the pull request is merged
    merged = remote.revert(request)
    assert (merged.state, merged.commit, merged.branch) == (RevertState.PUSHED, outcome.commit, None), merged.message


def test_mode_commit_with_a_conflict_fails_and_files_mode_restores(remote: Remote) -> None:
    promoted, candidate = bad_release(remote)
    remote.commit({PODINFO: with_pull_policy(deployment_yaml("podinfo", BAD, namespace="prod"))}, "always pull")
    head = remote.head()

    outcome = remote.revert(failed_release(candidate_revision=candidate, promoted_revision=promoted,
                                           mode=RevertMode.COMMIT))

    assert outcome.state is RevertState.FAILED
    assert "does not apply cleanly" in outcome.message and candidate[:7] in outcome.message
    assert remote.head() == head

    outcome = remote.revert(failed_release(candidate_revision=candidate, promoted_revision=promoted,
                                           mode=RevertMode.FILES))
    assert outcome.state is RevertState.PUSHED and outcome.message.endswith("(file restore)"), outcome.message
    assert remote.show("main", PODINFO) == remote.show(promoted, PODINFO)


def test_mode_files_restores_even_a_clean_commit(remote: Remote) -> None:
    promoted, candidate = bad_release(remote)
    outcome = remote.revert(failed_release(candidate_revision=candidate, promoted_revision=promoted,
                                           mode=RevertMode.FILES))
    assert outcome.state is RevertState.PUSHED and outcome.message.endswith("(file restore)"), outcome.message
    assert remote.show("main", PODINFO) == remote.show(promoted, PODINFO)


@pytest.mark.parametrize("case", ["same-revision", "other-workload-only", "url-already-good", "not-declared"])
def test_nothing_to_revert_is_skipped(remote: Remote, case: str) -> None:
    _, candidate = bad_release(remote)
    backend = remote.commit({BACKEND: deployment_yaml("backend", "backend:2.0", namespace="prod")}, "backend 2")
    request = {
        "same-revision": failed_release(candidate_revision=candidate, promoted_revision=candidate),
        "other-workload-only": failed_release(candidate_revision=backend, promoted_revision=candidate),
        "url-already-good": failed_release(promoted_images=(BAD,)),
        "not-declared": failed_release(source_path=None, workload="frontend"),
    }[case]
    head = remote.head()

    outcome = remote.revert(request)

    assert outcome.state is RevertState.SKIPPED, outcome.message
    assert outcome.message.startswith("nothing to revert: ") and outcome.commit is None
    assert remote.head() == head
    expected = {
        "same-revision": "no commit in",
        "other-workload-only": "changed Deployment/podinfo",
        "url-already-good": "already runs the promoted images",
        "not-declared": "no YAML document for Deployment/frontend",
    }[case]
    assert expected in outcome.message


def test_stale_source_path_annotation_falls_back_to_a_search(remote: Remote) -> None:
    promoted, candidate = bad_release(remote)
    request = failed_release(candidate_revision=candidate, promoted_revision=promoted,
                             source_path="apps/podinfo/moved-away.yaml")

    outcome = remote.revert(request)

    assert outcome.state is RevertState.PUSHED, outcome.message
    assert remote.show("main", PODINFO) == remote.show(promoted, PODINFO)
    assert "apps/podinfo/moved-away.yaml" not in remote.files()


def test_source_path_outside_the_repository_is_refused(remote: Remote) -> None:
    promoted, candidate = bad_release(remote)
    request = failed_release(candidate_revision=candidate, promoted_revision=promoted,
                             source_path="../../etc/passwd")

    outcome = remote.revert(request)

    assert outcome.state is RevertState.FAILED and "leaves the repository" in outcome.message


def test_mode_commit_never_undoes_another_workloads_change(remote: Remote) -> None:
    promoted = remote.commit({PODINFO: deployment_yaml("podinfo", GOOD, namespace="prod"),
                              BACKEND: deployment_yaml("backend", "backend:1.0", namespace="prod")}, "first")
    both = remote.commit({PODINFO: deployment_yaml("podinfo", BAD, namespace="prod"),
                          BACKEND: deployment_yaml("backend", "backend:2.0", namespace="prod")}, "bump both")

    outcome = remote.revert(failed_release(candidate_revision=both, promoted_revision=promoted,
                                           mode=RevertMode.COMMIT))

    assert outcome.state is RevertState.FAILED and "other workloads" in outcome.message
    assert remote.head() == both


@pytest.mark.parametrize("damage", ["index", "HEAD"])
def test_broken_local_clone_does_not_block_a_revert(remote: Remote, damage: str) -> None:
    promoted, candidate = bad_release(remote)
    warm_up = remote.revert(failed_release(candidate_revision=candidate, promoted_revision=candidate))
    assert warm_up.state is RevertState.SKIPPED, warm_up.message
    dot_git = clone_folder(remote.cache, "revert", remote.url, "main") / ".git"
    (dot_git / damage).write_bytes(b"\x00garbage left by a crash\n")

    outcome = remote.revert(failed_release(candidate_revision=candidate, promoted_revision=promoted))

    assert outcome.state is RevertState.PUSHED, outcome.message
    assert remote.show("main", PODINFO) == remote.show(promoted, PODINFO)


# --- workloads built by kustomize -----------------------------------------------------------------

KUSTOMIZED = "apps/shop"


def kustomization(podinfo_tag: str, backend_tag: str = "1.0") -> str:
    return ("resources:\n  - podinfo.yaml\n  - backend.yaml\nimages:\n"
            f"  - name: ghcr.io/stefanprodan/podinfo\n    newTag: '{podinfo_tag}'\n"
            f"  - name: backend\n    newTag: '{backend_tag}'\n")


def require_kubectl() -> None:
    if shutil.which("kubectl") is None:
        missing_tool("KUBECTL NOT FOUND - kustomized workloads are rendered with `kubectl kustomize`")


@pytest.fixture
def kustomized_release(remote: Remote) -> tuple[str, str]:
    """Flux image automation's layout: the image tag lives in kustomization.yaml's `images:`."""
    require_kubectl()
    promoted = remote.commit({
        f"{KUSTOMIZED}/podinfo.yaml": deployment_yaml("podinfo", "ghcr.io/stefanprodan/podinfo:latest",
                                                      namespace="prod"),
        f"{KUSTOMIZED}/backend.yaml": deployment_yaml("backend", "backend:latest", namespace="prod"),
        f"{KUSTOMIZED}/kustomization.yaml": kustomization("6.0.0"),
    }, "shop: podinfo 6.0.0")
    candidate = remote.commit({f"{KUSTOMIZED}/kustomization.yaml": kustomization("6.1.0")}, "podinfo 6.1.0")
    return promoted, candidate


def test_an_image_set_by_a_kustomization_is_reverted_as_the_folder_renders_it(
    remote: Remote, kustomized_release: tuple[str, str]
) -> None:
    promoted, candidate = kustomized_release
    later = remote.commit({f"{KUSTOMIZED}/backend.yaml": deployment_yaml("backend", "backend:latest",
                                                                         namespace="prod", replicas=3)},
                          "backend: 3 replicas")
    outcome = remote.revert(failed_release(candidate_revision=candidate, promoted_revision=promoted,
                                           source_path=KUSTOMIZED, search_path=KUSTOMIZED))
    assert outcome.state is RevertState.PUSHED and outcome.reverts == (candidate,), outcome
    assert "git revert" in outcome.message
    head = remote.head()
    assert remote.is_ancestor(later, head)
    assert "newTag: '6.0.0'" in remote.show(head, f"{KUSTOMIZED}/kustomization.yaml")
    assert "replicas: 3" in remote.show(head, f"{KUSTOMIZED}/backend.yaml")  # the later change stays
    assert f"Rollout-Reverts: {candidate}" in remote.trailers(head)


def test_a_kustomization_commit_that_also_moved_another_workload_keeps_that_change(
    remote: Remote, kustomized_release: tuple[str, str]
) -> None:
    promoted, _ = kustomized_release
    both = remote.commit({f"{KUSTOMIZED}/kustomization.yaml": kustomization("6.2.0", backend_tag="2.0")},
                         "podinfo 6.2.0 and backend 2.0")
    outcome = remote.revert(failed_release(candidate_revision=both, promoted_revision=promoted,
                                           source_path=KUSTOMIZED, search_path=KUSTOMIZED))
    # No revert or restore of the shared file can undo one image and keep the other: it says so, writes nothing.
    assert outcome.state is RevertState.FAILED and "revert by hand" in outcome.message, outcome
    assert remote.head() == both


def test_url_mode_finds_the_last_good_state_as_the_folder_renders_it(
    remote: Remote, kustomized_release: tuple[str, str]
) -> None:
    """Flux or Argo CD syncs a kustomized folder: no revision annotations, the tag lives in `images:`."""
    promoted, candidate = kustomized_release
    later = remote.commit({f"{KUSTOMIZED}/kustomization.yaml": kustomization("6.1.0", backend_tag="1.1")},
                          "backend 1.1")
    request = failed_release(source_path=None, search_path=f"./{KUSTOMIZED}")

    outcome = remote.revert(request)

    assert outcome.state is RevertState.PUSHED and outcome.reverts == (candidate,), outcome
    head = remote.head()
    assert remote.is_ancestor(later, head)
    text = remote.show(head, f"{KUSTOMIZED}/kustomization.yaml")
    assert "newTag: '6.0.0'" in text and "newTag: '1.1'" in text  # podinfo back, backend's later bump kept
    assert remote.trailers(head) == ["Rollout-Canary: prod/podinfo", f"Rollout-Reverts: {candidate}"]
    assert remote.show(promoted, f"{KUSTOMIZED}/podinfo.yaml") == remote.show(head, f"{KUSTOMIZED}/podinfo.yaml")

    again = remote.revert(request)  # the status patch was lost: the same call finds its own commit
    assert again.state is RevertState.PUSHED and again.commit == head, again.message
    assert remote.reverts_by("prod/podinfo") == [head]


def test_url_mode_overlay_on_a_base_outside_the_folder(remote: Remote) -> None:
    require_kubectl()

    repository = GOOD.split(":")[0]

    def overlay(tag: str) -> str:
        return f"resources: [../../base]\nimages:\n  - name: {repository}\n    newTag: '{tag}'\n"

    remote.commit({"base/podinfo.yaml": deployment_yaml("podinfo", f"{repository}:latest", namespace="prod"),
                   "base/kustomization.yaml": "resources: [podinfo.yaml]\n",
                   "clusters/prod/kustomization.yaml": overlay("6.0.0")}, "prod: podinfo 6.0.0")
    bad = remote.commit({"clusters/prod/kustomization.yaml": overlay("6.1.0")}, "prod: podinfo 6.1.0")
    # A later change in the base: not the image, so it stays.
    remote.commit({"base/podinfo.yaml": deployment_yaml("podinfo", f"{repository}:latest", namespace="prod",
                                                        replicas=4)}, "base: 4 replicas")

    outcome = remote.revert(failed_release(source_path=None, search_path="clusters/prod"))

    assert outcome.state is RevertState.PUSHED and outcome.reverts == (bad,), outcome
    assert "newTag: '6.0.0'" in remote.show("main", "clusters/prod/kustomization.yaml")
    assert "replicas: 4" in remote.show("main", "base/podinfo.yaml")


def test_url_mode_kustomized_without_the_promoted_images_in_history_is_skipped(
    remote: Remote, kustomized_release: tuple[str, str]
) -> None:
    outcome = remote.revert(failed_release(source_path=None, search_path=KUSTOMIZED,
                                           promoted_images=("ghcr.io/stefanprodan/podinfo:5.0.0",)))
    assert outcome.state is RevertState.SKIPPED and "no good state" in outcome.message, outcome
    assert remote.head() == kustomized_release[1]


@pytest.mark.parametrize("mode", ["revisions", "url"])
def test_a_newer_version_already_on_the_branch_is_not_undone(remote: Remote, mode: str) -> None:
    """A fix landed after the failed commit and before the revert: reverting now would throw the
    fix away, so Git is left as it is (the fix then gets its own release)."""
    promoted, candidate = bad_release(remote)
    fixed = remote.commit({PODINFO: deployment_yaml("podinfo", WORSE, namespace="prod")}, "podinfo 6.2.0: the fix")
    if mode == "revisions":
        request = failed_release(candidate_revision=candidate, promoted_revision=promoted)
    else:
        request = failed_release(source_path=None)
    outcome = remote.revert(request)
    assert outcome.state is RevertState.SKIPPED, outcome
    assert "Git has moved on" in outcome.message and WORSE in outcome.message, outcome.message
    assert remote.head() == fixed


def test_a_second_failure_after_a_revert_reverts_only_its_own_commit(remote: Remote) -> None:
    """The primary still carries the revision it was promoted from: the range promoted..candidate
    holds the first failure and our revert of it. Those cancel out; reverting the revert would
    bring the first bad version back (found by the chaos suite: reverts then ping-ponged)."""
    promoted, first = bad_release(remote)
    reverted = remote.revert(failed_release(candidate_revision=first, promoted_revision=promoted))
    assert reverted.state is RevertState.PUSHED, reverted.message
    worse = "ghcr.io/stefanprodan/podinfo:6.3.0"
    second = remote.commit({PODINFO: deployment_yaml("podinfo", worse, namespace="prod")}, "podinfo 6.3.0")

    outcome = remote.revert(failed_release(candidate_revision=second, promoted_revision=promoted, images=(worse,)))

    assert outcome.state is RevertState.PUSHED, outcome.message
    assert outcome.reverts == (second,)
    assert remote.trailers(remote.head()) == ["Rollout-Canary: prod/podinfo", f"Rollout-Reverts: {second}"]
    assert remote.show("main", PODINFO) == remote.show(promoted, PODINFO)


# --- tracked ConfigMaps and Secrets ---------------------------------------------------------------

CONFIG = "apps/podinfo/config.yaml"


def configmap_yaml(name: str, color: str, namespace: str = "prod") -> str:
    return f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  namespace: {namespace}
data:
  color: {color}
"""


def settings_tracked(path: str | None = CONFIG) -> tuple[TrackedConfig, ...]:
    return (TrackedConfig(WorkloadId("ConfigMap", "podinfo-settings", "prod"), path),)


def config_release(remote: Remote, files: dict[str, str | None], changed: dict[str, str | None]) -> tuple[str, str]:
    """podinfo promoted at GOOD with its ConfigMap, then a commit that changes `changed` only."""
    promoted = remote.commit(files, "podinfo 6.0.0, blue")
    candidate = remote.commit(changed, "podinfo: green")
    return promoted, candidate


def test_a_configmap_only_release_is_reverted_in_its_own_file(remote: Remote) -> None:
    promoted, candidate = config_release(
        remote,
        {PODINFO: deployment_yaml("podinfo", GOOD, namespace="prod"),
         CONFIG: configmap_yaml("podinfo-settings", "blue"),
         BACKEND: deployment_yaml("backend", "backend:1.0", namespace="prod")},
        {CONFIG: configmap_yaml("podinfo-settings", "green")})
    # the failed target runs the promoted image: only its ConfigMap changed
    request = failed_release(candidate_revision=candidate, promoted_revision=promoted, images=(GOOD,),
                             configs=settings_tracked())

    outcome = remote.revert(request)

    assert outcome.state is RevertState.PUSHED, outcome.message
    assert outcome.reverts == (candidate,) and outcome.message.endswith("(git revert)")
    assert remote.show("main", CONFIG) == configmap_yaml("podinfo-settings", "blue").rstrip("\n")
    assert remote.show("main", PODINFO) == remote.show(promoted, PODINFO)
    assert remote.message("main").splitlines()[0] == (
        "revert(podinfo): roll back the configuration of podinfo after failed canary")
    assert remote.trailers("main") == ["Rollout-Canary: prod/podinfo", f"Rollout-Reverts: {candidate}"]
    # asked again, it finds its own revert
    again = remote.revert(request)
    assert again.state is RevertState.PUSHED and again.commit == outcome.commit


def test_without_tracking_a_configmap_only_commit_is_not_the_workloads(remote: Remote) -> None:
    promoted, candidate = config_release(
        remote,
        {PODINFO: deployment_yaml("podinfo", GOOD, namespace="prod"),
         CONFIG: configmap_yaml("podinfo-settings", "blue")},
        {CONFIG: configmap_yaml("podinfo-settings", "green")})
    outcome = remote.revert(failed_release(candidate_revision=candidate, promoted_revision=promoted, images=(GOOD,)))
    assert outcome.state is RevertState.SKIPPED, outcome.message
    assert "no commit" in outcome.message
    assert remote.show("main", CONFIG) == configmap_yaml("podinfo-settings", "green").rstrip("\n")


def test_a_configmap_beside_the_workload_is_restored_and_a_neighbours_change_kept(remote: Remote) -> None:
    def together(color: str, backend: str) -> str:
        return "---\n".join([deployment_yaml("podinfo", GOOD, namespace="prod"),
                             configmap_yaml("podinfo-settings", color),
                             deployment_yaml("backend", backend, namespace="prod")])

    promoted, candidate = config_release(remote, {ALL: together("blue", "backend:1.0")},
                                         {ALL: together("green", "backend:2.0")})
    # no source-path annotation on the ConfigMap: it is searched for under the search path
    request = failed_release(candidate_revision=candidate, promoted_revision=promoted, images=(GOOD,),
                             source_path=ALL, configs=settings_tracked(None))

    outcome = remote.revert(request)

    assert outcome.state is RevertState.PUSHED, outcome.message
    assert outcome.reverts == (candidate,) and outcome.message.endswith("(file restore)")
    assert remote.show("main", ALL) == together("blue", "backend:2.0").rstrip("\n")


def test_a_configmap_only_change_in_a_kustomization_is_reverted_as_the_folder_renders_it(remote: Remote) -> None:
    require_kubectl()
    files = {
        f"{KUSTOMIZED}/podinfo.yaml": deployment_yaml("podinfo", GOOD, namespace="prod"),
        f"{KUSTOMIZED}/config.yaml": configmap_yaml("podinfo-settings", "blue"),
        f"{KUSTOMIZED}/backend.yaml": deployment_yaml("backend", "backend:1.0", namespace="prod"),
        f"{KUSTOMIZED}/kustomization.yaml": "resources:\n  - podinfo.yaml\n  - config.yaml\n  - backend.yaml\n",
    }
    promoted, candidate = config_release(remote, files,
                                         {f"{KUSTOMIZED}/config.yaml": configmap_yaml("podinfo-settings", "green")})
    later = remote.commit({f"{KUSTOMIZED}/backend.yaml": deployment_yaml("backend", "backend:1.0", namespace="prod",
                                                                         replicas=3)}, "backend: 3 replicas")
    request = failed_release(candidate_revision=candidate, promoted_revision=promoted, images=(GOOD,),
                             source_path=KUSTOMIZED, search_path=KUSTOMIZED, configs=settings_tracked(None))

    outcome = remote.revert(request)

    assert outcome.state is RevertState.PUSHED and outcome.reverts == (candidate,), outcome
    head = remote.head()
    assert remote.is_ancestor(later, head)
    assert remote.show(head, f"{KUSTOMIZED}/config.yaml") == configmap_yaml("podinfo-settings", "blue").rstrip("\n")
    assert "replicas: 3" in remote.show(head, f"{KUSTOMIZED}/backend.yaml")  # the later change stays
    # without tracking, no commit changed the workload as the folder renders it
    assert remote.revert(replace(request, configs=())).state is RevertState.SKIPPED
