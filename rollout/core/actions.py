"""Actions are data: what the engine must do to carry a decision out.

Each is idempotent when carried out again, so a controller that dies halfway through a tick
and repeats it does no harm. What the planner asks to observe before it decides is not an
action: see `rollout.core.requests`.
"""

from __future__ import annotations

from dataclasses import dataclass

from rollout.api.spec import WebhookType


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
class CallWebhooks:
    """Call every webhook of this type to tell it what happened (post-rollout); their answers change
    nothing. A webhook whose answer the planner waits on is asked for with `AskGate` instead."""

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


Action = InitializePrimary | ScaleTarget | SetWeight | PromotePrimary | CallWebhooks | RevertInGit | Emit
