"""Write a failed release's revert to Git, so that Git stays the single source of truth.

When a canary fails, the cluster is already back on the primary; this module makes Git agree.
It finds the commits that brought the failed spec, undoes them in ONE new commit (a true
`git revert` when that applies cleanly and touches only this workload, otherwise the workload's
document restored to its last good content) and pushes it, rebasing when the branch moved.

It may be called again at any moment, also after a crash at any point: it always starts from the
remote's head (local leftovers are discarded), recognises its own earlier commits by their
trailers (`Rollout-Canary`, `Rollout-Reverts`), never reverts a commit twice and never
force-pushes. Every failure is an outcome with a scrubbed message, never an exception.
"""

from __future__ import annotations

import io
import itertools
import random
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PurePosixPath

import git

from rollout.api.spec import GitAuthor, PushMode, RevertMode
from rollout.api.status import RevertState
from rollout.core import RevertOutcome
from rollout.gitops import kustomized
from rollout.gitops.manifests import (
    MANIFEST_SUFFIXES,
    WorkloadId,
    container_images,
    other_documents,
    replace_document,
    workload_document,
)
from rollout.gitops.repo import Clone, Credentials, GitError, clone_folder, redact

CANARY_TRAILER = "Rollout-Canary"
REVERTS_TRAILER = "Rollout-Reverts"
REVERT_BRANCH_PREFIX = "rollout/revert-"
_SHORT = 7
_BACKOFF_SECONDS = 0.2
_BACKOFF_MAX_SECONDS = 2.0
# A kustomized workload is judged by rendering each commit: look at this many at most.
_MAX_RENDERED_COMMITS = 50
# A revision annotation: a bare sha, or Flux's `<branch>@sha1:<sha>` / `<branch>/<sha>`.
_REVISION = re.compile(r"(?:^|[@:/])([0-9a-f]{7,64})$")


@dataclass(frozen=True)
class RevertHooks:
    """A test seam, not a feature: callables run right after each fetch of the branch and right
    after the revert commit is written (before it is pushed), so tests can land a concurrent
    commit or kill the process at exactly those points. Production code passes none."""

    after_fetch: Callable[[], None] | None = None
    after_commit: Callable[[], None] | None = None


@dataclass(frozen=True)
class RevertRequest:
    """Everything the writer needs to know about one failed release."""

    namespace: str  # the Canary's namespace and name
    name: str
    kind: str  # the target workload, e.g. "Deployment", "podinfo"
    workload: str
    workload_namespace: str
    candidate_revision: str | None  # commit the failed spec was applied from; None in url mode
    promoted_revision: str | None  # commit of the last promoted spec; None in url mode
    source_path: str | None  # file that declared the target, relative to the repo root; None: search
    search_path: str  # folder searched for the workload's manifest
    images: tuple[str, ...]  # the failed target's container images (url mode: where the failed change is)
    promoted_images: tuple[str, ...]  # the primary's container images (url mode: the last good state)
    reason: str  # why the release failed, one line
    report: str  # the analysis report as Markdown
    mode: RevertMode = RevertMode.AUTO
    push: PushMode = PushMode.DIRECT
    author: GitAuthor = field(default_factory=GitAuthor)

    @property
    def canary(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def image(self) -> str | None:
        """The failed image, for the message."""
        return self.images[0] if self.images else None

    @property
    def target(self) -> WorkloadId:
        return WorkloadId(self.kind, self.workload, self.workload_namespace)


class Method(StrEnum):
    REVERT = "git revert"
    RESTORE = "file restore"


def short(sha: str) -> str:
    return sha[:_SHORT]


def revert_message(request: RevertRequest, reverts: Iterable[str]) -> str:
    """The commit message: subject, reason, report, then trailers `git interpret-trailers` reads."""
    subject = f"revert({request.name}): roll back {request.image or request.workload} after failed canary"
    reason = " ".join(request.reason.split()) or "the canary analysis failed"
    # A line starting with `---` would end the message for git's trailer parser; indenting it by
    # one space keeps its Markdown meaning.
    report = "\n".join(" " + line if line.startswith("---") else line
                       for line in request.report.strip("\n").splitlines())
    trailers = [f"{CANARY_TRAILER}: {request.canary}", *(f"{REVERTS_TRAILER}: {sha}" for sha in reverts)]
    parts = [subject, reason, report, "\n".join(trailers)] if report.strip() else [subject, reason, "\n".join(trailers)]
    return "\n\n".join(parts) + "\n"


def revert_branch(request: RevertRequest, first_reverted: str) -> str:
    """Where push=branch puts the revert: one branch per Canary and reverted commit (the newest)."""
    return f"{REVERT_BRANCH_PREFIX}{request.namespace}-{request.name}-{short(first_reverted)}"


def write_revert(url: str, branch: str, credentials: Credentials | None, request: RevertRequest, cache: Path,
                 *, attempts: int = 5, hooks: RevertHooks | None = None) -> RevertOutcome:
    """Revert in Git what `request` describes and push it; see the module docstring."""
    folder = clone_folder(cache, "revert", url, branch)
    secrets = credentials.secrets if credentials else ()
    clone = Clone(url, branch, folder, credentials, shallow=False)
    for last_try in (False, True):
        writer: _Writer | None = None
        try:
            with clone.opened():
                writer = _Writer(clone, request, max(1, attempts), hooks or RevertHooks())
                return writer.run()
        except GitError as e:
            if last_try or (writer is not None and writer.remote_failed):
                return _failed(str(e), secrets)
        except (git.exc.GitError, OSError, ValueError) as e:
            if last_try:
                shutil.rmtree(folder, ignore_errors=True)
                return _failed(f"{type(e).__name__}: {e}", secrets)
        # The local clone itself is broken (a crash mid-write): it is only a cache, so start afresh.
        shutil.rmtree(folder, ignore_errors=True)
    raise AssertionError("unreachable")


def _failed(message: str, secrets: tuple[str, ...]) -> RevertOutcome:
    return RevertOutcome(RevertState.FAILED, message=_one_line(redact(message, secrets)))


def _skipped(message: str) -> RevertOutcome:
    return RevertOutcome(RevertState.SKIPPED, message=f"nothing to revert: {message}")


def _one_line(text: str, limit: int = 400) -> str:
    lines = [line.strip() for line in text.splitlines()]
    line = "; ".join(x for x in lines if x and not x.startswith("hint:"))
    return line if len(line) <= limit else line[: limit - 3] + "..."


@dataclass(frozen=True)
class _Plan:
    commits: tuple[str, ...]  # to revert, newest first
    files: tuple[str, ...]  # the workload's files
    good: str  # the revision that holds the workload's last good content
    target: str  # the branch the revert is pushed to
    kustomization: str | None = None  # the folder kustomize builds the workload from, if it does


class _Writer:
    def __init__(self, clone: Clone, request: RevertRequest, attempts: int, hooks: RevertHooks) -> None:
        self.clone = clone
        self.request = request
        self.attempts = attempts
        self.hooks = hooks
        self.head = ""  # the remote branch's head, as last fetched
        self.revert_branch = ""  # push=branch: where the revert goes
        self.revert_head: str | None = None  # push=branch: that branch's remote head, if it exists
        self._blobs: dict[tuple[str, str], str | None] = {}
        self._rendered: dict[str, kustomized.Rendered | None] = {}
        self.kustomization: str | None = None  # set by planning when kustomize builds the workload
        self.remote_failed = False
        author = request.author
        self.identity = {
            "GIT_AUTHOR_NAME": author.name, "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": author.name, "GIT_COMMITTER_EMAIL": author.email,
            # A user's global config must not make the operator sign (and wait for a key).
            "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "commit.gpgSign", "GIT_CONFIG_VALUE_0": "false",
        }

    # -- the loop ---------------------------------------------------------------------------------

    def run(self) -> RevertOutcome:
        request = self.request
        if request.mode is RevertMode.OFF:
            return _skipped("revert is off for this Canary")
        pushes = 0
        self._refresh()
        while True:
            plan = self._plan()
            if isinstance(plan, RevertOutcome):
                return plan
            written = self._write(plan)
            if isinstance(written, RevertOutcome):
                return written
            sha, method = written
            if self.hooks.after_commit:
                self.hooks.after_commit()
            while True:
                pushes += 1
                if self._push(sha, plan.target):
                    shorts = ", ".join(short(c) for c in plan.commits)
                    return RevertOutcome(RevertState.PUSHED, commit=sha, reverts=plan.commits,
                                         message=f"reverted {shorts} in {short(sha)} ({method})",
                                         branch=plan.target if request.push is PushMode.BRANCH else None)
                if pushes >= self.attempts:
                    return RevertOutcome(RevertState.FAILED, message=(
                        f"push to {plan.target} rejected {pushes} times: the branch keeps moving; will retry"))
                time.sleep(min(_BACKOFF_MAX_SECONDS, _BACKOFF_SECONDS * 2 ** (pushes - 1)) * random.uniform(0.5, 1))
                old_base = self.head
                self._refresh()
                if request.push is PushMode.BRANCH:
                    break  # the revert branch moved: plan again from both heads
                found = self._existing_revert(plan.commits)
                if found is not None:
                    if isinstance(found, RevertOutcome):
                        return found
                    break  # some of ours were reverted meanwhile: plan again
                rebased = self._rebase(sha, old_base, self.head)
                if rebased is None:
                    break  # conflicts with what landed: plan again from the new head
                sha = rebased

    def _refresh(self) -> None:
        """Fetch the branch and stand on its head, whatever an earlier (maybe killed) run left."""
        dot_git = self.clone.folder / ".git"
        for leftover in ("rebase-merge", "rebase-apply", "sequencer"):
            shutil.rmtree(dot_git / leftover, ignore_errors=True)
        for leftover in ("index.lock", "REVERT_HEAD", "CHERRY_PICK_HEAD", "MERGE_HEAD"):
            (dot_git / leftover).unlink(missing_ok=True)
        # Reads the index: a clone broken by a crash fails here, as a local failure, not at the fetch.
        self.clone.git("status", "--porcelain", "--untracked-files=no")
        with self._talking():
            self.head = self.clone.fetch()
        self.clone.checkout(self.head)
        self._blobs.clear()
        if self.hooks.after_fetch:
            self.hooks.after_fetch()

    # -- what to revert ---------------------------------------------------------------------------

    def _plan(self) -> _Plan | RevertOutcome:
        request = self.request
        files = self._declared_files()
        if isinstance(files, RevertOutcome):
            return files
        if request.candidate_revision and request.promoted_revision:
            found = self._by_revisions(files)
        else:
            found = self._by_images(files)
        if isinstance(found, RevertOutcome):
            return found
        commits, files, good = found
        target = self.clone.branch
        self.revert_head = None
        if request.push is PushMode.BRANCH:
            target = self.revert_branch = revert_branch(request, commits[0])
            self.revert_head = self._fetch_revert_branch(target)
        existing = self._existing_revert(commits)
        if isinstance(existing, RevertOutcome):
            return existing
        if existing is not None:
            commits = tuple(c for c in commits if c not in existing)
        if self.revert_head and not self._ok("merge-base", "--is-ancestor", self.revert_head, self.head):
            return RevertOutcome(RevertState.FAILED, message=(
                f"branch {target} exists, holds no revert by {request.canary} and has diverged from "
                f"{self.clone.branch}; delete or merge it"))
        return _Plan(commits, files, good, target, self.kustomization)

    def _declared_files(self) -> tuple[str, ...] | RevertOutcome:
        source = self.request.source_path
        if source is None:
            return ()
        path = _safe_path(source)
        if path is None:
            return RevertOutcome(RevertState.FAILED, message=f"source path {source!r} leaves the repository")
        return (path,)

    def _by_revisions(self, files: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...], str] | RevertOutcome:
        request = self.request
        assert request.candidate_revision and request.promoted_revision
        candidate = self._resolve(request.candidate_revision)
        promoted = self._resolve(request.promoted_revision)
        for given, resolved in ((request.candidate_revision, candidate), (request.promoted_revision, promoted)):
            if resolved is None:
                return _skipped(f"revision {given!r} is not a commit in the history of {self.clone.branch}")
        assert candidate and promoted
        if not self._ok("merge-base", "--is-ancestor", candidate, self.head):
            return _skipped(f"candidate revision {short(candidate)} is no longer on {self.clone.branch}")
        self.kustomization = self._kustomization(files, candidate)
        if self.kustomization is None:
            if not any(self._images(revision, files) is not None for revision in (candidate, promoted)):
                files = ()  # a stale or missing source-path annotation: look for the workload instead
            if not files:
                files = tuple(sorted(set(self._search(candidate)) | set(self._search(promoted))))
                if not files:
                    return _skipped(f"no YAML document for {request.target} under {request.search_path!r} "
                                    f"at {short(candidate)}")
        images = self._image_reader(files, self.kustomization)
        now, failed = images(self.head), images(candidate)
        if now != failed and now != images(promoted):
            return self._moved_on(self.kustomization or ", ".join(files), now, failed)
        if self.kustomization is not None:
            return self._by_rendering(self.kustomization, promoted, candidate)
        listed = self._rev_list(f"{promoted}..{candidate}", files)
        commits = tuple(c for c in listed if self._changed(c, files))
        if not commits:
            return _skipped(f"no commit in {short(promoted)}..{short(candidate)} changed {request.target} "
                            f"in {', '.join(files)}")
        return commits, files, promoted

    def _kustomization(self, files: tuple[str, ...], revision: str) -> str | None:
        """The folder, when the target's source path is one that kustomize builds (and kubectl is here)."""
        if len(files) != 1 or shutil.which("kubectl") is None:
            return None
        try:
            root = self.clone.repo.commit(revision).tree
            tree = root if files[0] == "." else root / files[0]
        except KeyError:
            return None
        if not isinstance(tree, git.Tree):
            return None
        return files[0] if kustomized.is_kustomization(lambda: [entry.name for entry in tree]) else None

    def _render(self, revision: str, folder: str) -> kustomized.Rendered | None:
        if revision not in self._rendered:
            archive = io.BytesIO()
            self.clone.repo.archive(archive, revision, format="tar")
            self._rendered[revision] = kustomized.rendered(archive.getvalue(), folder)
        return self._rendered[revision]

    def _by_rendering(self, folder: str, promoted: str, candidate: str
                      ) -> tuple[tuple[str, ...], tuple[str, ...], str] | RevertOutcome:
        """The commits in promoted..candidate after which the folder renders the workload differently
        (wherever the change was: the workload's file, an `images:` entry, a patch, a base)."""
        target = self.request.target
        if kustomized.workload(self._render(promoted, folder), target) is None:
            return _skipped(f"{folder} at {short(promoted)} does not render {target} (or does not render)")
        commits = []
        for commit in self._rev_list(f"{promoted}..{candidate}", ())[:_MAX_RENDERED_COMMITS]:
            parent = self._parent(commit)
            if parent and kustomized.changed_workload(self._render(parent, folder), self._render(commit, folder),
                                                      target):
                commits.append(commit)
        if not commits:
            return _skipped(f"no commit in {short(promoted)}..{short(candidate)} changed {target} as {folder} "
                            "renders it")
        return tuple(commits), (folder,), promoted

    def _write_kustomized(self, plan: _Plan) -> Method | RevertOutcome:
        """Revert, else restore the files the commits changed; keep the result only if the folder then
        renders the workload as at the good revision and everything else as on the branch head."""
        assert plan.kustomization is not None
        folder, target, mode = plan.kustomization, self.request.target, self.request.mode
        good, head = self._render(plan.good, folder), self._render(self.head, folder)

        def right() -> bool:
            result = kustomized.rendered_tree(self.clone.folder, folder)
            return kustomized.acceptable(result, good, head, target)

        if mode is not RevertMode.FILES:
            if self._git_revert(plan.commits) and right():
                return Method.REVERT
            self.clone.checkout(self.head)
            if mode is RevertMode.COMMIT:
                return RevertOutcome(RevertState.FAILED, message=(
                    f"a git revert of {', '.join(short(c) for c in plan.commits)} does not apply cleanly or would "
                    f"change more than {target} as {folder} renders it; revert by hand or use `revert: files`"))
        paths = sorted({p for c in plan.commits for p in self.clone.git(
            "diff-tree", "--no-commit-id", "--name-only", "-r", "--no-renames", c).splitlines()})
        self.clone.git("checkout", plan.good, "--", *paths)
        if not right():
            self.clone.checkout(self.head)
            return RevertOutcome(RevertState.FAILED, message=(
                f"restoring {', '.join(paths)} to {short(plan.good)} would change more than {target} as {folder} "
                "renders it (a later commit changed the same files); revert by hand"))
        self.clone.git("add", "--all", "--", *paths)
        return Method.RESTORE

    def _by_images(self, files: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...], str] | RevertOutcome:
        """Url mode: no revisions are known, so the last good state is the newest revision at which
        the workload (its file, or what the search path renders when kustomize builds it) runs the
        primary's container images."""
        request = self.request
        promoted = request.promoted_images
        if not promoted:
            return _skipped("the primary's images are unknown, so there is no last good state to find")
        folder = None if files else self._kustomization((self._search_folder(),), self.head)
        if folder is not None:
            self.kustomization = folder
            # A base outside the folder can change the workload too: every commit is a candidate.
            history = self._rev_list(self.head, ())[:_MAX_RENDERED_COMMITS]
        else:
            if self._images(self.head, files) is None:
                files = ()  # a stale or missing source-path annotation: look for the workload instead
            if not files:
                files = self._search(self.head)
                if not files:
                    return _skipped(f"no YAML document for {request.target} under {request.search_path!r} "
                                    f"on {self.clone.branch}")
            history = self._rev_list(self.head, files)
        images = self._image_reader(files, folder)
        where = folder or ", ".join(files)
        now = images(self.head)
        if now is None:
            return _skipped(f"{where} on {self.clone.branch} does not render {request.target} (or does not render)")
        if now == promoted:
            # Maybe because we reverted already (and crashed before telling anyone).
            ours = dict(self._reverts_on(self.clone.remote_ref))
            for commit in history:
                if images(commit) != promoted:
                    break
                if commit in ours:
                    return self._already(commit, ours[commit], None)
            return _skipped(f"{request.target} in {where} already runs the promoted images "
                            f"({', '.join(promoted)}) on {self.clone.branch}")
        if request.images and now != request.images:
            return self._moved_on(where, now, request.images)
        # The failed change is the commit that brought the head's images; later commits that kept
        # them (a replica count, a neighbour) are not part of it and stay.
        streak = list(itertools.takewhile(lambda c: images(c) == now, history))
        candidate = streak[-1] if streak else self.head
        good = next((c for c in history[len(streak):] if images(c) == promoted), None)
        if good is None:
            looked = f" (looked at the last {len(history)} commits)" if folder else ""
            return _skipped(f"no commit on {self.clone.branch} where {request.target} ran "
                            f"{', '.join(promoted)}{looked}, so there is no good state to go back to")
        if folder is not None:
            return self._by_rendering(folder, good, candidate)
        commits = tuple(c for c in self._rev_list(f"{good}..{candidate}", files) if self._changed(c, files))
        if not commits:
            return _skipped(f"no commit after {short(good)} changed {request.target}")
        return commits, files, good

    def _image_reader(self, files: tuple[str, ...], folder: str | None) -> Callable[[str], tuple[str, ...] | None]:
        """The workload's container images at a revision: from what `folder` renders when kustomize
        builds it, else from its document in `files`; None where it is not declared."""
        if folder is None:
            return lambda revision: self._images(revision, files)

        def rendered(revision: str) -> tuple[str, ...] | None:
            body = kustomized.workload(self._render(revision, folder), self.request.target)
            return None if body is None else container_images(body)

        return rendered

    def _moved_on(self, where: str, now: tuple[str, ...] | None, failed: tuple[str, ...] | None) -> RevertOutcome:
        """The branch no longer holds the failed version (a fix or another version landed since):
        reverting now would undo that newer change, so Git is left as it is."""
        def said(images: tuple[str, ...] | None) -> str:
            return ", ".join(images) if images else "no such workload"

        return _skipped(f"{self.request.target} in {where} on {self.clone.branch} is now {said(now)}, not the "
                        f"failed {said(failed)}: Git has moved on")

    def _search_folder(self) -> str:
        return _safe_path(self.request.search_path.strip() or ".", allow_root=True) or "."

    def _search(self, revision: str) -> tuple[str, ...]:
        """The manifest files under the search path at `revision` that hold the workload's document."""
        out = self.clone.git("grep", "-l", "-F", "-e", self.request.workload, revision, "--", self._search_folder(),
                             check=False)
        found = []
        for line in out.splitlines():
            path = line.split(":", 1)[1] if ":" in line else line
            if path.endswith(MANIFEST_SUFFIXES) and workload_document(self._blob(revision, path), self.request.target):
                found.append(path)
        return tuple(sorted(found))

    def _changed(self, commit: str, files: tuple[str, ...]) -> bool:
        """Did `commit` change the workload's document (not just a neighbour in the same file)?"""
        parent = self._parent(commit)
        for path in files:
            before = workload_document(self._blob(parent, path), self.request.target) if parent else None
            after = workload_document(self._blob(commit, path), self.request.target)
            if (before.content if before else None) != (after.content if after else None):
                return True
        return False

    def _touches_only_workload(self, commit: str, files: tuple[str, ...]) -> bool:
        parents = self.clone.git("rev-list", "--parents", "-n", "1", commit).split()[1:]
        if len(parents) != 1:
            return False
        changed = self.clone.git("diff-tree", "--no-commit-id", "--name-only", "-r", "--no-renames", commit)
        if any(path not in files for path in changed.splitlines()):
            return False
        for path in changed.splitlines():
            before = other_documents(self._blob(parents[0], path), self.request.target)
            after = other_documents(self._blob(commit, path), self.request.target)
            if before is None or before != after:
                return False
        return True

    def _images(self, revision: str, files: tuple[str, ...]) -> tuple[str, ...] | None:
        for path in files:
            document = workload_document(self._blob(revision, path), self.request.target)
            if document is not None:
                return container_images(document.body)
        return None

    # -- idempotency ------------------------------------------------------------------------------

    def _reverts_on(self, ref: str) -> list[tuple[str, tuple[str, ...]]]:
        """This Canary's revert commits reachable from `ref`, newest first, with what each reverts."""
        out = self.clone.git("log", "-F", f"--grep={CANARY_TRAILER}: {self.request.canary}",
                             "--format=%H%x1f%(trailers:only,unfold,separator=%x1f)%x1e", ref)
        found = []
        for record in out.split("\x1e"):
            sha, *trailers = record.strip("\n").split("\x1f")
            if not sha:
                continue
            pairs = [t.split(":", 1) for t in trailers if ":" in t]
            values = [(k.strip().lower(), v.strip()) for k, v in pairs]
            if (CANARY_TRAILER.lower(), self.request.canary) in values:
                found.append((sha, tuple(v for k, v in values if k == REVERTS_TRAILER.lower())))
        return found

    def _existing_revert(self, commits: tuple[str, ...]) -> RevertOutcome | set[str] | None:
        """An outcome when every one of `commits` is reverted already (on the branch, or on the
        revert branch); the set of those already reverted when only some are; None when none is."""
        refs: list[tuple[str, str | None]] = [(self.clone.remote_ref, None)]
        if self.revert_head:
            refs.append((self.revert_head, self.revert_branch))
        covered: set[str] = set()
        newest: tuple[str, tuple[str, ...], str | None] | None = None
        for ref, branch in refs:
            for sha, reverts in self._reverts_on(ref):
                hit = set(reverts) & set(commits)
                if hit:
                    covered |= hit
                    newest = newest or (sha, reverts, branch)
        if newest is not None and covered >= set(commits):
            return self._already(*newest)
        return covered or None

    def _already(self, sha: str, reverts: tuple[str, ...], branch: str | None) -> RevertOutcome:
        """Found on the branch itself (`branch` None) or on the revert branch."""
        return RevertOutcome(RevertState.PUSHED, commit=sha, reverts=reverts,
                             message=f"already reverted in {short(sha)}", branch=branch)

    def _fetch_revert_branch(self, name: str) -> str | None:
        with self._talking():
            listed = self.clone.git("ls-remote", "--heads", "origin", f"refs/heads/{name}").strip()
            if not listed:
                return None
            local = f"refs/remotes/origin/{name}"
            self.clone.git("fetch", "--no-tags", "origin", f"+refs/heads/{name}:{local}")
        return self.clone.git("rev-parse", local).strip()

    # -- writing ----------------------------------------------------------------------------------

    def _write(self, plan: _Plan) -> tuple[str, Method] | RevertOutcome:
        request = self.request
        shorts = ", ".join(short(c) for c in plan.commits)
        if plan.kustomization is not None:
            kept = self._write_kustomized(plan)
            if isinstance(kept, RevertOutcome):
                return kept
            method = kept
        elif request.mode is RevertMode.FILES:
            method = Method.RESTORE
        elif request.mode is RevertMode.COMMIT:
            method = Method.REVERT
            # Forced, but never at the price of another workload's change.
            mixed = [c for c in plan.commits if not self._touches_only_workload(c, plan.files)]
            if mixed:
                return RevertOutcome(RevertState.FAILED, message=(
                    f"a git revert of {short(mixed[0])} would also undo changes to other workloads (or it is "
                    f"a merge); use `revert: auto` or `revert: files`"))
        else:
            clean = all(self._touches_only_workload(c, plan.files) for c in plan.commits)
            method = Method.REVERT if clean else Method.RESTORE
        if plan.kustomization is None and method is Method.REVERT and not self._git_revert(plan.commits):
            if request.mode is RevertMode.COMMIT:
                return RevertOutcome(RevertState.FAILED, message=(
                    f"git revert of {shorts} does not apply cleanly on {self.clone.branch} at {short(self.head)} "
                    f"(later commits changed the same lines); revert by hand or use `revert: files`"))
            method = Method.RESTORE
        if plan.kustomization is None and method is Method.RESTORE:
            failed = self._restore(plan)
            if failed is not None:
                return failed
        if not self.clone.git("diff", "--cached", "--name-only").strip():
            self.clone.checkout(self.head)
            return _skipped(f"{', '.join(plan.files)} on {self.clone.branch} already hold the last good "
                            f"{request.target} (as of {short(plan.good)})")
        message_file = self.clone.folder / ".git" / "ROLLOUT_REVERT_MSG"
        message = redact(revert_message(request, plan.commits), self.clone.credentials.secrets
                         if self.clone.credentials else ())
        message_file.write_text(message)
        self.clone.git("commit", "--no-verify", "--cleanup=whitespace", "-F", str(message_file), env=self.identity)
        return self.clone.git("rev-parse", "HEAD").strip(), method

    def _git_revert(self, commits: tuple[str, ...]) -> bool:
        try:
            self.clone.git("revert", "--no-commit", "--no-edit", *commits, env=self.identity)
            return True
        except GitError:
            self.clone.git("revert", "--abort", check=False)
            self.clone.checkout(self.head)
            return False

    def _restore(self, plan: _Plan) -> RevertOutcome | None:
        """Put the workload's last good document back, and nothing else: a file that holds only
        the workload (or whose other documents are as they were) is restored whole; otherwise
        only the workload's document is replaced."""
        target = self.request.target
        wanted = {path: self._blob(plan.good, path) for path in plan.files}
        if not any(workload_document(text, target) for text in wanted.values()):
            return RevertOutcome(RevertState.FAILED, message=(
                f"cannot restore {target}: {', '.join(plan.files)} at {short(plan.good)} do not declare it; "
                f"revert by hand"))
        root = self.clone.folder.resolve()
        for path, good in wanted.items():
            current = self._blob(self.head, path)
            others_good = other_documents(good, target)
            if others_good is not None and others_good == other_documents(current, target):
                content = good
            else:
                content = replace_document(current, target, workload_document(good, target))
            file = (root / path).resolve()
            if root not in file.parents:
                return RevertOutcome(RevertState.FAILED, message=f"{path} leads outside the repository")
            if content is None:
                file.unlink(missing_ok=True)
            else:
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_bytes(content.encode())
            self.clone.git("add", "--all", "--", path)
        return None

    def _push(self, sha: str, branch: str) -> bool:
        """True when pushed; False when rejected because the branch moved; GitError otherwise."""
        try:
            self.clone.git("push", "origin", f"{sha}:refs/heads/{branch}")
            return True
        except GitError as e:
            if "[rejected]" in str(e):
                return False
            self.remote_failed = True
            raise GitError(f"push to {branch} failed: {e}") from None

    @contextmanager
    def _talking(self) -> Iterator[None]:
        """Marks a failure inside as the remote's (down, refusing) rather than the local clone's."""
        try:
            yield
        except GitError:
            self.remote_failed = True
            raise

    def _rebase(self, sha: str, old_base: str, new_base: str) -> str | None:
        """The revert commit moved onto the new head; None when that conflicts (or became empty)."""
        self.clone.git("checkout", "--force", "--detach", sha)
        try:
            self.clone.git("rebase", "--onto", new_base, old_base, env=self.identity)
        except GitError:
            self.clone.git("rebase", "--abort", check=False)
            self.clone.checkout(new_base)
            return None
        moved = self.clone.git("rev-parse", "HEAD").strip()
        return None if moved == new_base else moved

    # -- reading git ------------------------------------------------------------------------------

    def _ok(self, *args: str) -> bool:
        try:
            self.clone.git(*args)
            return True
        except GitError:
            return False

    def _resolve(self, revision: str) -> str | None:
        match = _REVISION.search(revision.strip().lower())
        if match is None:
            return None
        try:
            return self.clone.git("rev-parse", "--verify", "--quiet", f"{match.group(1)}^{{commit}}").strip() or None
        except GitError:
            return None

    def _parent(self, commit: str) -> str | None:
        try:
            return self.clone.git("rev-parse", "--verify", "--quiet", f"{commit}^1").strip() or None
        except GitError:
            return None

    def _rev_list(self, revisions: str, files: tuple[str, ...]) -> list[str]:
        return self.clone.git("rev-list", revisions, "--", *files).split()

    def _blob(self, revision: str | None, path: str) -> str | None:
        """The file's exact content at `revision`, or None when absent (or not text)."""
        if revision is None:
            return None
        key = (revision, path)
        if key not in self._blobs:
            try:
                data = (self.clone.repo.commit(revision).tree / path).data_stream.read()
                self._blobs[key] = data.decode("utf-8")
            except (KeyError, UnicodeDecodeError):
                self._blobs[key] = None
        return self._blobs[key]


def _safe_path(path: str, *, allow_root: bool = False) -> str | None:
    """`path` relative to the repository root, or None when it would leave it."""
    parts = [p for p in PurePosixPath(path.strip().lstrip("/")).parts if p not in (".", "")]
    if ".." in parts or (not parts and not allow_root):
        return None
    return "/".join(parts) or "."
