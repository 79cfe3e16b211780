"""Write the revert as one commit on the fetched head: a true `git revert` when that is clean,
otherwise the workload's last good document restored, and nothing else changed.

Whether a `git revert` is clean is judged on the workload: every reverted commit must touch only
its document (`revert: auto`), or the folder kustomize builds must then render the workload as at
the good revision and everything else as on the head. The commit is not pushed here.
"""

from __future__ import annotations

from enum import StrEnum

from rollout.api.spec import RevertMode
from rollout.api.status import RevertState
from rollout.core import RevertOutcome
from rollout.gitops import kustomized
from rollout.gitops.manifests import other_documents, replace_document, workload_document
from rollout.gitops.repo import Clone, GitError, redact

from .history import History, RevertPlan
from .message import revert_message, short
from .request import RevertRequest, skipped


class Method(StrEnum):
    REVERT = "git revert"
    RESTORE = "file restore"


class Writer:
    """Writes the revert `RevertPlan` describes on the history's head, as one commit."""

    def __init__(self, clone: Clone, request: RevertRequest, history: History) -> None:
        self.clone = clone
        self.request = request
        self.history = history

    @property
    def head(self) -> str:
        return self.history.head

    def write(self, plan: RevertPlan) -> tuple[str, Method] | RevertOutcome:
        """The revert commit's sha and how it was made, or why none was."""
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
            mixed = [c for c in plan.commits if not self.history.touches_only_workload(c, plan.files)]
            if mixed:
                return RevertOutcome(RevertState.FAILED, message=(
                    f"a git revert of {short(mixed[0])} would also undo changes to other workloads (or it is "
                    f"a merge); use `revert: auto` or `revert: files`"))
        else:
            clean = all(self.history.touches_only_workload(c, plan.files) for c in plan.commits)
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
        if not self.clone.has_staged_changes():
            self.clone.checkout(self.head)
            return skipped(f"{', '.join(plan.files)} on {self.clone.branch} already hold the last good "
                           f"{request.target} (as of {short(plan.good)})")
        message_file = self.clone.folder / ".git" / "ROLLOUT_REVERT_MSG"
        message = redact(revert_message(request, plan.commits), self.clone.credentials.secrets
                         if self.clone.credentials else ())
        message_file.write_text(message)
        self.clone.git("commit", "--no-verify", "--cleanup=whitespace", "-F", str(message_file),
                       env=request.identity)
        return self.clone.rev_parse("HEAD"), method

    def _write_kustomized(self, plan: RevertPlan) -> Method | RevertOutcome:
        """Revert, else restore the files the commits changed; keep the result only if the folder then
        renders the workload as at the good revision and everything else as on the branch head."""
        assert plan.kustomization is not None
        folder, target, mode = plan.kustomization, self.request.target, self.request.mode
        good, head = self.history.render(plan.good, folder), self.history.render(self.head, folder)

        configs = tuple(d for d in plan.documents if d != target)

        def right() -> bool:
            result = self.history.render_checkout(folder)
            return kustomized.acceptable(result, good, head, target, configs)

        if mode is not RevertMode.FILES:
            if self._git_revert(plan.commits) and right():
                return Method.REVERT
            self.clone.checkout(self.head)
            if mode is RevertMode.COMMIT:
                return RevertOutcome(RevertState.FAILED, message=(
                    f"a git revert of {', '.join(short(c) for c in plan.commits)} does not apply cleanly or would "
                    f"change more than {target} as {folder} renders it; revert by hand or use `revert: files`"))
        paths = sorted({p for c in plan.commits for p in self.clone.changed_paths(c)})
        self.clone.git("checkout", plan.good, "--", *paths)
        if not right():
            self.clone.checkout(self.head)
            return RevertOutcome(RevertState.FAILED, message=(
                f"restoring {', '.join(paths)} to {short(plan.good)} would change more than {target} as {folder} "
                "renders it (a later commit changed the same files); revert by hand"))
        self.clone.git("add", "--all", "--", *paths)
        return Method.RESTORE

    def _git_revert(self, commits: tuple[str, ...]) -> bool:
        try:
            self.clone.git("revert", "--no-commit", "--no-edit", *commits, env=self.request.identity)
            return True
        except GitError:
            self.clone.git("revert", "--abort", check=False)
            self.clone.checkout(self.head)
            return False

    def _restore(self, plan: RevertPlan) -> RevertOutcome | None:
        """Put the workload's last good document back, and nothing else: a file that holds only
        the workload (or whose other documents are as they were) is restored whole; otherwise
        only the workload's document is replaced."""
        target = self.request.target
        documents = plan.documents or (target,)
        wanted = {path: self.history.blob(plan.good, path) for path in plan.files}
        if target in documents and not any(workload_document(text, target) for text in wanted.values()):
            return RevertOutcome(RevertState.FAILED, message=(
                f"cannot restore {target}: {', '.join(plan.files)} at {short(plan.good)} do not declare it; "
                f"revert by hand"))
        root = self.clone.folder.resolve()
        for path, good in wanted.items():
            current = self.history.blob(self.head, path)
            others_good = other_documents(good, *documents)
            if others_good is not None and others_good == other_documents(current, *documents):
                content = good
            else:
                # Each document the failed commits changed goes back to its good content (or away,
                # when it was not there); a document is declared in one file, so elsewhere this is a no-op.
                content = current
                for document in documents:
                    content = replace_document(content, document, workload_document(good, document))
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
