"""The revert commit's message and trailers, written and read back.

The trailers (`Rollout-Canary`, `Rollout-Reverts`) are how the writer recognises its own earlier
commits after a crash or a lost status patch, so the words that write them and the parser that
reads them live together.
"""

from __future__ import annotations

from collections.abc import Iterable

from .request import RevertRequest

CANARY_TRAILER = "Rollout-Canary"
REVERTS_TRAILER = "Rollout-Reverts"
REVERT_BRANCH_PREFIX = "rollout/revert-"
# `git log --format` for `reverts_in_log`: each commit's sha, then its trailers, unit-separated.
TRAILERS_FORMAT = "--format=%H%x1f%(trailers:only,unfold,separator=%x1f)%x1e"
_SHORT = 7


def short(sha: str) -> str:
    return sha[:_SHORT]


def revert_message(request: RevertRequest, reverts: Iterable[str]) -> str:
    """The commit message: subject, reason, report, then trailers `git interpret-trailers` reads."""
    what = request.image or request.workload
    if request.configs and request.images == request.promoted_images:
        what = f"the configuration of {request.workload}"  # the images did not change: a ConfigMap or Secret did
    subject = f"revert({request.name}): roll back {what} after failed canary"
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


def canary_grep(canary: str) -> str:
    """The `git log --grep` that narrows the log to commits that may be this Canary's reverts."""
    return f"--grep={CANARY_TRAILER}: {canary}"


def reverts_in_log(log: str, canary: str) -> list[tuple[str, tuple[str, ...]]]:
    """(sha, the shas it reverts) for each commit in a `TRAILERS_FORMAT` log whose trailers name `canary`."""
    found = []
    for record in log.split("\x1e"):
        sha, *trailers = record.strip("\n").split("\x1f")
        if not sha:
            continue
        pairs = [t.split(":", 1) for t in trailers if ":" in t]
        values = [(k.strip().lower(), v.strip()) for k, v in pairs]
        if (CANARY_TRAILER.lower(), canary) in values:
            found.append((sha, tuple(v for k, v in values if k == REVERTS_TRAILER.lower())))
    return found
