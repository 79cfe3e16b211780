"""What the revert writer is asked to do, and the outcomes it gives back when it does nothing.

Every part of the writer (finding the commits, writing, pushing) reads the same `RevertRequest`;
the outcome helpers keep the wording of skipped and failed reverts in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rollout.api.spec import GitAuthor, PushMode, RevertMode
from rollout.api.status import RevertState
from rollout.core import RevertOutcome
from rollout.gitops.manifests import WorkloadId
from rollout.gitops.repo import redact


@dataclass(frozen=True)
class RevertHooks:
    """A test seam, not a feature: callables run right after each fetch of the branch and right
    after the revert commit is written (before it is pushed), so tests can land a concurrent
    commit or kill the process at exactly those points. Production code passes none."""

    after_fetch: Callable[[], None] | None = None
    after_commit: Callable[[], None] | None = None


@dataclass(frozen=True)
class TrackedConfig:
    """A ConfigMap or Secret the target's pods use, tracked with the release: a change to it alone
    is a release, so its document is reverted with the workload's."""

    id: WorkloadId
    source_path: str | None  # the file that declared it (its source-path annotation), None: search


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
    configs: tuple[TrackedConfig, ...] = ()
    mode: RevertMode = RevertMode.AUTO
    push: PushMode = PushMode.DIRECT
    author: GitAuthor = field(default_factory=GitAuthor)
    # The Git secret's `signingKey`, and (while a write runs) the environment that signs with it.
    signing_key: str | None = field(default=None, repr=False)
    signing: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def canary(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def documents(self) -> tuple[WorkloadId, ...]:
        """The documents that make up the release: the workload's and its tracked configs'."""
        return (self.target, *(c.id for c in self.configs))

    @property
    def image(self) -> str | None:
        """The failed image, for the message."""
        return self.images[0] if self.images else None

    @property
    def target(self) -> WorkloadId:
        return WorkloadId(self.kind, self.workload, self.workload_namespace)

    @property
    def identity(self) -> dict[str, str]:
        """The environment git commits (and rebases) with: the author as author and committer."""
        author = self.author
        return {
            "GIT_AUTHOR_NAME": author.name, "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": author.name, "GIT_COMMITTER_EMAIL": author.email,
            # Signed with the secret's key, or not at all: a user's global config must not make the
            # operator sign (and wait for a key).
            **(dict(self.signing) or {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "commit.gpgSign",
                                      "GIT_CONFIG_VALUE_0": "false"}),
        }


def failed(message: str, secrets: tuple[str, ...]) -> RevertOutcome:
    return RevertOutcome(RevertState.FAILED, message=one_line(redact(message, secrets)))


def skipped(message: str) -> RevertOutcome:
    return RevertOutcome(RevertState.SKIPPED, message=f"nothing to revert: {message}")


def one_line(text: str, limit: int = 400) -> str:
    lines = [line.strip() for line in text.splitlines()]
    line = "; ".join(x for x in lines if x and not x.startswith("hint:"))
    return line if len(line) <= limit else line[: limit - 3] + "..."
