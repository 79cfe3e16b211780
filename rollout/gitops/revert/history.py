"""Find what to revert: the commits that brought the failed spec, and the last good revision.

With revisions (from the target's annotations) the commits are those in promoted..candidate that
changed the workload; without them (url mode, when Flux or Argo CD syncs) the last good revision
is the newest at which the workload ran the primary's images. A workload that kustomize builds is
judged by what its folder renders. This module also recognises the writer's own earlier reverts
(on the branch or on a revert branch), so no commit is ever reverted twice. It only reads Git.
"""

from __future__ import annotations

import itertools
import re
import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import PurePosixPath

from rollout.api.spec import PushMode
from rollout.api.status import RevertState
from rollout.core import RevertOutcome
from rollout.gitops import kustomized
from rollout.gitops.manifests import (
    MANIFEST_SUFFIXES,
    WorkloadId,
    container_images,
    other_documents,
    workload_document,
)
from rollout.gitops.repo import Clone

from .message import TRAILERS_FORMAT, canary_grep, revert_branch, reverts_in_log, short
from .request import RevertRequest, skipped

# A kustomized workload is judged by rendering each commit: look at this many at most.
_MAX_RENDERED_COMMITS = 50
# A revision annotation: a bare sha, or Flux's `<branch>@sha1:<sha>` / `<branch>/<sha>`.
_REVISION = re.compile(r"(?:^|[@:/])([0-9a-f]{7,64})$")

Found = tuple[tuple[str, ...], tuple[str, ...], str]  # (commits, files, good revision)


@dataclass(frozen=True)
class RevertPlan:
    commits: tuple[str, ...]  # to revert, newest first
    files: tuple[str, ...]  # the workload's files (and its tracked configs')
    good: str  # the revision that holds the workload's last good content
    target: str  # the branch the revert is pushed to
    kustomization: str | None = None  # the folder kustomize builds the workload from, if it does
    # The documents the commits changed (the workload's, its tracked configs'): what a restore puts back.
    documents: tuple[WorkloadId, ...] = ()


class History:
    """The branch's history as seen from its last fetched head (`refresh` moves it)."""

    def __init__(self, clone: Clone, request: RevertRequest,
                 talking: Callable[[], AbstractContextManager[None]], *, kustomize_timeout: float) -> None:
        self.clone = clone
        self.request = request
        self.kustomize_timeout = kustomize_timeout
        self.talking = talking  # marks a failure inside as the remote's
        self.head = ""  # the remote branch's head, as last fetched
        self.revert_branch = ""  # push=branch: where the revert goes
        self.revert_head: str | None = None  # push=branch: that branch's remote head, if it exists
        self._blobs: dict[tuple[str, str], str | None] = {}
        self._rendered: dict[str, kustomized.Rendered | None] = {}
        self.kustomization: str | None = None  # set by planning when kustomize builds the workload

    def refresh(self, head: str) -> None:
        self.head = head
        self._blobs.clear()

    # -- what to revert ---------------------------------------------------------------------------

    def plan(self) -> RevertPlan | RevertOutcome:
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
        if self.kustomization is not None:
            documents = tuple(d for d in request.documents if any(self._rendered_change(c, d) for c in commits))
        else:
            documents = tuple(d for d in request.documents if any(self._changed(c, files, (d,)) for c in commits))
        target = self.clone.branch
        self.revert_head = None
        if request.push in (PushMode.BRANCH, PushMode.PULL_REQUEST):
            target = self.revert_branch = revert_branch(request, commits[0])
            self.revert_head = self._fetch_revert_branch(target)
        existing = self.existing_revert(commits)
        if isinstance(existing, RevertOutcome):
            return existing
        if existing is not None:
            commits = tuple(c for c in commits if c not in existing)
        if self.revert_head and not self.clone.is_ancestor(self.revert_head, self.head):
            return RevertOutcome(RevertState.FAILED, message=(
                f"branch {target} exists, holds no revert by {request.canary} and has diverged from "
                f"{self.clone.branch}; delete or merge it"))
        return RevertPlan(commits, files, good, target, self.kustomization, documents or (request.target,))

    def _declared_files(self) -> tuple[str, ...] | RevertOutcome:
        source = self.request.source_path
        if source is None:
            return ()
        path = safe_path(source)
        if path is None:
            return RevertOutcome(RevertState.FAILED, message=f"source path {source!r} leaves the repository")
        return (path,)

    def _by_revisions(self, files: tuple[str, ...]) -> Found | RevertOutcome:
        request = self.request
        assert request.candidate_revision and request.promoted_revision
        candidate = self._resolve(request.candidate_revision)
        promoted = self._resolve(request.promoted_revision)
        for given, resolved in ((request.candidate_revision, candidate), (request.promoted_revision, promoted)):
            if resolved is None:
                return skipped(f"revision {given!r} is not a commit in the history of {self.clone.branch}")
        assert candidate and promoted
        if not self.clone.is_ancestor(candidate, self.head):
            return skipped(f"candidate revision {short(candidate)} is no longer on {self.clone.branch}")
        self.kustomization = self._kustomization(files, candidate)
        if self.kustomization is None:
            if not any(self._images(revision, files) is not None for revision in (candidate, promoted)):
                files = ()  # a stale or missing source-path annotation: look for the workload instead
            if not files:
                files = tuple(sorted(set(self._search(candidate)) | set(self._search(promoted))))
                if not files:
                    return skipped(f"no YAML document for {request.target} under {request.search_path!r} "
                                   f"at {short(candidate)}")
        images = self._image_reader(files, self.kustomization)
        now, failed = images(self.head), images(candidate)
        if now != failed and now != images(promoted):
            return self._moved_on(self.kustomization or ", ".join(files), now, failed)
        if self.kustomization is not None:
            return self._by_rendering(self.kustomization, promoted, candidate)
        # A ConfigMap or Secret the release tracks is part of it: a commit that changed only that
        # is the failed change as much as one that changed the workload.
        files = tuple(sorted(set(files) | set(self._config_files(candidate, promoted))))
        listed = self.clone.rev_list(f"{promoted}..{candidate}", files)
        commits = tuple(c for c in listed if self._changed(c, files))
        if not commits:
            return skipped(f"no commit in {short(promoted)}..{short(candidate)} changed {request.target} "
                           f"in {', '.join(files)}")
        return commits, files, promoted

    def _kustomization(self, files: tuple[str, ...], revision: str) -> str | None:
        """The folder, when the target's source path is one that kustomize builds (and kubectl is here)."""
        if len(files) != 1 or shutil.which("kubectl") is None:
            return None
        entries = self.clone.folder_names(revision, files[0])
        if entries is None:
            return None
        return files[0] if kustomized.is_kustomization(lambda: entries) else None

    def render(self, revision: str, folder: str) -> kustomized.Rendered | None:
        if revision not in self._rendered:
            self._rendered[revision] = kustomized.rendered(self.clone.archive(revision), folder, self.kustomize_timeout)
        return self._rendered[revision]

    def render_checkout(self, folder: str) -> kustomized.Rendered | None:
        """What the folder renders in the clone's working tree as it is now."""
        return kustomized.rendered_tree(self.clone.folder, folder, self.kustomize_timeout)

    def _by_rendering(self, folder: str, promoted: str, candidate: str) -> Found | RevertOutcome:
        """The commits in promoted..candidate after which the folder renders the workload differently
        (wherever the change was: the workload's file, an `images:` entry, a patch, a base)."""
        target = self.request.target
        if kustomized.workload(self.render(promoted, folder), target) is None:
            return skipped(f"{folder} at {short(promoted)} does not render {target} (or does not render)")
        commits = []
        for commit in self.clone.rev_list(f"{promoted}..{candidate}")[:_MAX_RENDERED_COMMITS]:
            # The workload, or a ConfigMap or Secret the release tracks, as the folder renders it.
            if any(self._rendered_change(commit, document, folder) for document in self.request.documents):
                commits.append(commit)
        if not commits:
            return skipped(f"no commit in {short(promoted)}..{short(candidate)} changed {target} as {folder} "
                           "renders it")
        return tuple(commits), (folder,), promoted

    def _rendered_change(self, commit: str, document: WorkloadId, folder: str | None = None) -> bool:
        folder = folder or self.kustomization
        parent = self.clone.parent(commit)
        if folder is None or not parent:
            return False
        return kustomized.changed_workload(self.render(parent, folder), self.render(commit, folder), document)

    def _by_images(self, files: tuple[str, ...]) -> Found | RevertOutcome:
        """Url mode: no revisions are known, so the last good state is the newest revision at which
        the workload (its file, or what the search path renders when kustomize builds it) runs the
        primary's container images."""
        request = self.request
        promoted = request.promoted_images
        if not promoted:
            return skipped("the primary's images are unknown, so there is no last good state to find")
        folder = None if files else self._kustomization((self._search_folder(),), self.head)
        if folder is not None:
            self.kustomization = folder
            # A base outside the folder can change the workload too: every commit is a candidate.
            history = self.clone.rev_list(self.head)[:_MAX_RENDERED_COMMITS]
        else:
            if self._images(self.head, files) is None:
                files = ()  # a stale or missing source-path annotation: look for the workload instead
            if not files:
                files = self._search(self.head)
                if not files:
                    return skipped(f"no YAML document for {request.target} under {request.search_path!r} "
                                   f"on {self.clone.branch}")
            history = self.clone.rev_list(self.head, files)
        images = self._image_reader(files, folder)
        where = folder or ", ".join(files)
        now = images(self.head)
        if now is None:
            return skipped(f"{where} on {self.clone.branch} does not render {request.target} (or does not render)")
        if now == promoted:
            # Maybe because we reverted already (and crashed before telling anyone).
            ours = dict(self._reverts_on(self.clone.remote_ref))
            for commit in history:
                if images(commit) != promoted:
                    break
                if commit in ours:
                    return self._already(commit, ours[commit], None)
            return skipped(f"{request.target} in {where} already runs the promoted images "
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
            return skipped(f"no commit on {self.clone.branch} where {request.target} ran "
                           f"{', '.join(promoted)}{looked}, so there is no good state to go back to")
        if folder is not None:
            return self._by_rendering(folder, good, candidate)
        commits = tuple(c for c in self.clone.rev_list(f"{good}..{candidate}", files) if self._changed(c, files))
        if not commits:
            return skipped(f"no commit after {short(good)} changed {request.target}")
        return commits, files, good

    def _image_reader(self, files: tuple[str, ...], folder: str | None) -> Callable[[str], tuple[str, ...] | None]:
        """The workload's container images at a revision: from what `folder` renders when kustomize
        builds it, else from its document in `files`; None where it is not declared."""
        if folder is None:
            return lambda revision: self._images(revision, files)

        def rendered(revision: str) -> tuple[str, ...] | None:
            body = kustomized.workload(self.render(revision, folder), self.request.target)
            return None if body is None else container_images(body)

        return rendered

    def _moved_on(self, where: str, now: tuple[str, ...] | None, failed: tuple[str, ...] | None) -> RevertOutcome:
        """The branch no longer holds the failed version (a fix or another version landed since):
        reverting now would undo that newer change, so Git is left as it is."""
        def said(images: tuple[str, ...] | None) -> str:
            return ", ".join(images) if images else "no such workload"

        return skipped(f"{self.request.target} in {where} on {self.clone.branch} is now {said(now)}, not the "
                       f"failed {said(failed)}: Git has moved on")

    def _search_folder(self) -> str:
        return safe_path(self.request.search_path.strip() or ".", allow_root=True) or "."

    def _search(self, revision: str, document: WorkloadId | None = None) -> tuple[str, ...]:
        """The manifest files under the search path at `revision` that hold the workload's document
        (or `document`)."""
        wanted = document or self.request.target
        out = self.clone.git("grep", "-l", "-F", "-e", wanted.name, revision, "--", self._search_folder(),
                             check=False)
        found = []
        for line in out.splitlines():
            path = line.split(":", 1)[1] if ":" in line else line
            if path.endswith(MANIFEST_SUFFIXES) and workload_document(self.blob(revision, path), wanted):
                found.append(path)
        return tuple(sorted(found))

    def _config_files(self, candidate: str, promoted: str) -> tuple[str, ...]:
        """The files that declare the tracked ConfigMaps and Secrets: their source-path annotation,
        else where the search path holds them (at the candidate or the promoted revision)."""
        found: set[str] = set()
        for config in self.request.configs:
            path = safe_path(config.source_path) if config.source_path else None
            if path is not None and any(workload_document(self.blob(revision, path), config.id)
                                        for revision in (candidate, promoted)):
                found.add(path)
                continue
            for revision in (candidate, promoted):
                found.update(self._search(revision, config.id))
        return tuple(sorted(found))

    def _changed(self, commit: str, files: tuple[str, ...], documents: tuple[WorkloadId, ...] = ()) -> bool:
        """Did `commit` change one of `documents` (default: the workload's and its tracked configs')
        in `files`, not just a neighbour in the same file?"""
        parent = self.clone.parent(commit)
        for document in documents or self.request.documents:
            for path in files:
                before = workload_document(self.blob(parent, path), document) if parent else None
                after = workload_document(self.blob(commit, path), document)
                if (before.content if before else None) != (after.content if after else None):
                    return True
        return False

    def touches_only_workload(self, commit: str, files: tuple[str, ...]) -> bool:
        """Whether `commit` (not a merge) changed the workload's document (or its tracked configs')
        in `files` and nothing else."""
        parents = self.clone.parents(commit)
        if len(parents) != 1:
            return False
        changed = self.clone.changed_paths(commit)
        if any(path not in files for path in changed):
            return False
        for path in changed:
            before = other_documents(self.blob(parents[0], path), *self.request.documents)
            after = other_documents(self.blob(commit, path), *self.request.documents)
            if before is None or before != after:
                return False
        return True

    def _images(self, revision: str, files: tuple[str, ...]) -> tuple[str, ...] | None:
        for path in files:
            document = workload_document(self.blob(revision, path), self.request.target)
            if document is not None:
                return container_images(document.body)
        return None

    # -- idempotency ------------------------------------------------------------------------------

    def _reverts_on(self, ref: str) -> list[tuple[str, tuple[str, ...]]]:
        """This Canary's revert commits reachable from `ref`, newest first, with what each reverts."""
        canary = self.request.canary
        return reverts_in_log(self.clone.git("log", "-F", canary_grep(canary), TRAILERS_FORMAT, ref), canary)

    def existing_revert(self, commits: tuple[str, ...]) -> RevertOutcome | set[str] | None:
        """An outcome when every one of `commits` is reverted already (on the branch, or on the
        revert branch); when only some are, the set to leave alone: those, and our reverts of them
        among `commits` (a commit and its revert cancel out; reverting the revert would bring the
        bad version back); None when none is."""
        refs: list[tuple[str, str | None]] = [(self.clone.remote_ref, None)]
        if self.revert_head:
            refs.append((self.revert_head, self.revert_branch))
        covered: set[str] = set()
        newest: tuple[str, tuple[str, ...], str | None] | None = None
        for ref, branch in refs:
            for sha, reverts in self._reverts_on(ref):
                hit = set(reverts) & set(commits)
                if hit:
                    covered |= hit | ({sha} & set(commits))
                    newest = newest or (sha, reverts, branch)
        if newest is not None and covered >= set(commits):
            return self._already(*newest)
        return covered or None

    def _already(self, sha: str, reverts: tuple[str, ...], branch: str | None) -> RevertOutcome:
        """Found on the branch itself (`branch` None) or on the revert branch."""
        return RevertOutcome(RevertState.PUSHED, commit=sha, reverts=reverts,
                             message=f"already reverted in {short(sha)}", branch=branch)

    def _fetch_revert_branch(self, name: str) -> str | None:
        with self.talking():
            local = self.clone.fetch_branch(name)
        return None if local is None else self.clone.rev_parse(local)

    # -- reading git ------------------------------------------------------------------------------

    def _resolve(self, revision: str) -> str | None:
        match = _REVISION.search(revision.strip().lower())
        return None if match is None else self.clone.verify(f"{match.group(1)}^{{commit}}")

    def blob(self, revision: str | None, path: str) -> str | None:
        """The file's exact content at `revision`, or None when absent (or not text); cached until
        the next refresh."""
        if revision is None:
            return None
        key = (revision, path)
        if key not in self._blobs:
            self._blobs[key] = self.clone.blob(revision, path)
        return self._blobs[key]


def safe_path(path: str, *, allow_root: bool = False) -> str | None:
    """`path` relative to the repository root, or None when it would leave it."""
    parts = [p for p in PurePosixPath(path.strip().lstrip("/")).parts if p not in (".", "")]
    if ".." in parts or (not parts and not allow_root):
        return None
    return "/".join(parts) or "."
