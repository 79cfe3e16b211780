"""Actions are data: what the engine must do to carry a decision out.

Each is idempotent when carried out again, so a controller that dies halfway through a tick
and repeats it does no harm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from rollout.api.spec import WebhookType
from rollout.api.status import Phase, ReleaseStatus


@dataclass(frozen=True)
class InitializePrimary:
    """Create `<target>-primary` from the target, the services and the router objects."""


@dataclass(frozen=True)
class ScaleTarget:
    """Scale the target (the canary) up for a run, or to zero when idle."""

    up: bool


@dataclass(frozen=True)
class SetWeight:
    """Route `canary` percent of traffic to the canary; `match` routes A/B-matched requests to it."""

    primary: int
    canary: int
    match: bool = False


@dataclass(frozen=True)
class PromotePrimary:
    """Copy the target's pod template (and config) into the primary."""


@dataclass(frozen=True)
class RunChecks:
    """Gather metric verdicts (and `rollout` webhooks) for this tick."""


@dataclass(frozen=True)
class CallWebhooks:
    """Call every webhook of this type; gates report back whether they are open."""

    type: WebhookType


@dataclass(frozen=True)
class RevertInGit:
    """Commit a revert of the candidate revision to Git (idempotent: the writer looks first)."""

    candidate_revision: str | None
    promoted_revision: str | None
    reason: str


@dataclass(frozen=True)
class Emit:
    """A Kubernetes Event (and `event` webhooks)."""

    reason: str
    message: str
    warning: bool = False


Action = InitializePrimary | ScaleTarget | SetWeight | PromotePrimary | RunChecks | CallWebhooks | RevertInGit | Emit


@dataclass(frozen=True)
class Decision:
    """The planner's answer: actions to carry out, the status to write, and when to look again.

    When `gather` is not empty the planner needs those observations (metric checks, webhook gates)
    before it can decide: it returns no actions and the status unchanged, and the engine gathers
    them and plans again in the same tick. A `RevertInGit` outcome comes back the same way, as
    `Observations.revert` on the next planning pass.
    """

    actions: tuple[Action, ...]
    status: ReleaseStatus
    requeue_after: timedelta
    gather: tuple[RunChecks | CallWebhooks, ...] = field(default=())

    @property
    def complete(self) -> bool:
        return not self.gather

    @property
    def phase(self) -> Phase | None:
        return self.status.phase
