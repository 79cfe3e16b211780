"""The revert writer's entry point and its loop: fetch, plan, write, push; on a rejected push,
fetch again and rebase the revert onto the new head, and retry.

It may be called again at any moment, also after a crash at any point: it always starts from the
remote's head (local leftovers are discarded) and never force-pushes. A failure of the remote
(down, refusing) is reported as such; a local clone broken by a crash is thrown away and cloned
again, since it is only a cache.
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import git

from rollout.api.spec import PushMode, RevertMode
from rollout.api.status import RevertState
from rollout.core import RevertOutcome
from rollout.gitops.repo import Clone, Credentials, GitError, clone_folder
from rollout.settings import Settings

from .history import History
from .message import short
from .request import RevertHooks, RevertRequest, failed, skipped
from .signing import SigningError, signing_environment
from .write import Writer


def write_revert(url: str, branch: str, credentials: Credentials | None, request: RevertRequest, cache: Path,
                 *, settings: Settings, attempts: int = 5, hooks: RevertHooks | None = None) -> RevertOutcome:
    """Revert in Git what `request` describes and push it; see the package docstring."""
    try:
        with signing_environment(request.signing_key) as env:
            request = replace(request, signing=tuple(env.items()))
            return _write_revert(url, branch, credentials, request, cache, settings=settings, attempts=attempts,
                                 hooks=hooks)
    except SigningError as e:
        return RevertOutcome(RevertState.FAILED, message=str(e))


def _write_revert(url: str, branch: str, credentials: Credentials | None, request: RevertRequest, cache: Path,
                  *, settings: Settings, attempts: int, hooks: RevertHooks | None) -> RevertOutcome:
    folder = clone_folder(cache, "revert", url, branch)
    secrets = credentials.secrets if credentials else ()
    clone = Clone(url, branch, folder, credentials, shallow=False, connect_timeout=settings.git_connect_timeout)
    for last_try in (False, True):
        loop: _Loop | None = None
        try:
            with clone.opened():
                loop = _Loop(clone, request, max(1, attempts), hooks or RevertHooks(), settings)
                return loop.run()
        except GitError as e:
            if last_try or (loop is not None and loop.remote_failed):
                return failed(str(e), secrets)
        except (git.exc.GitError, OSError, ValueError) as e:
            if last_try:
                shutil.rmtree(folder, ignore_errors=True)
                return failed(f"{type(e).__name__}: {e}", secrets)
        # The local clone itself is broken (a crash mid-write): it is only a cache, so start afresh.
        shutil.rmtree(folder, ignore_errors=True)
    raise AssertionError("unreachable")


class _Loop:
    def __init__(self, clone: Clone, request: RevertRequest, attempts: int, hooks: RevertHooks,
                 settings: Settings) -> None:
        self.clone = clone
        self.request = request
        self.attempts = attempts
        self.hooks = hooks
        self.backoff, self.backoff_max = settings.push_backoff, settings.push_backoff_max
        self.remote_failed = False
        self.history = History(clone, request, self._talking, kustomize_timeout=settings.kustomize_timeout)
        self.writer = Writer(clone, request, self.history)

    def run(self) -> RevertOutcome:
        request = self.request
        if request.mode is RevertMode.OFF:
            return skipped("revert is off for this Canary")
        pushes = 0
        self._refresh()
        while True:
            plan = self.history.plan()
            if isinstance(plan, RevertOutcome):
                return plan
            written = self.writer.write(plan)
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
                                         branch=plan.target if request.push is not PushMode.DIRECT else None)
                if pushes >= self.attempts:
                    return RevertOutcome(RevertState.FAILED, message=(
                        f"push to {plan.target} rejected {pushes} times: the branch keeps moving; will retry"))
                time.sleep(min(self.backoff_max, self.backoff * 2 ** (pushes - 1)) * random.uniform(0.5, 1))
                old_base = self.history.head
                self._refresh()
                if request.push in (PushMode.BRANCH, PushMode.PULL_REQUEST):
                    break  # the revert branch moved: plan again from both heads
                found = self.history.existing_revert(plan.commits)
                if found is not None:
                    if isinstance(found, RevertOutcome):
                        return found
                    break  # some of ours were reverted meanwhile: plan again
                rebased = self._rebase(sha, old_base, self.history.head)
                if rebased is None:
                    break  # conflicts with what landed: plan again from the new head
                sha = rebased

    def _refresh(self) -> None:
        """Fetch the branch and stand on its head, whatever an earlier (maybe killed) run left."""
        self.clone.abandon_operations()
        # Reads the index: a clone broken by a crash fails here, as a local failure, not at the fetch.
        self.clone.git("status", "--porcelain", "--untracked-files=no")
        with self._talking():
            head = self.clone.fetch()
        self.clone.checkout(head)
        self.history.refresh(head)
        if self.hooks.after_fetch:
            self.hooks.after_fetch()

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
            self.clone.git("rebase", "--onto", new_base, old_base, env=self.request.identity)
        except GitError:
            self.clone.git("rebase", "--abort", check=False)
            self.clone.checkout(new_base)
            return None
        moved = self.clone.rev_parse("HEAD")
        return None if moved == new_base else moved
