"""Write a failed release's revert to Git, so that Git stays the single source of truth.

When a canary fails, the cluster is already back on the primary; this package makes Git agree.
It finds the commits that brought the failed spec (`history`), undoes them in ONE new commit (a
true `git revert` when that applies cleanly and touches only this workload, otherwise the
workload's document restored to its last good content: `write`) with the analysis summary and
trailers in its message (`message`), and pushes it, rebasing when the branch moved (`push`).

It may be called again at any moment, also after a crash at any point: it always starts from the
remote's head (local leftovers are discarded), recognises its own earlier commits by their
trailers (`Rollout-Canary`, `Rollout-Reverts`), never reverts a commit twice and never
force-pushes. Every failure is an outcome with a scrubbed message, never an exception.
"""

from .message import CANARY_TRAILER, REVERT_BRANCH_PREFIX, REVERTS_TRAILER, revert_branch, revert_message, short
from .push import write_revert
from .request import RevertHooks, RevertRequest, TrackedConfig
from .write import Method

__all__ = [
    "CANARY_TRAILER",
    "REVERTS_TRAILER",
    "REVERT_BRANCH_PREFIX",
    "Method",
    "RevertHooks",
    "RevertRequest",
    "TrackedConfig",
    "revert_branch",
    "revert_message",
    "short",
    "write_revert",
]
