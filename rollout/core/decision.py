"""The planner's answer for one tick: what to do, what to look at first, and the status to write."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from rollout.api.status import Phase, ReleaseStatus
from rollout.core.actions import Action
from rollout.core.requests import Request


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
    gather: tuple[Request, ...] = field(default=())

    @property
    def complete(self) -> bool:
        return not self.gather

    @property
    def phase(self) -> Phase | None:
        return self.status.phase
