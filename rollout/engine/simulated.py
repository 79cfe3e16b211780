"""A cluster reduced to the few facts a release depends on, for replays and tests.

`rollout analyze` replays history through the real planner on this model: actions move the
weights, scale the target and copy the spec into the primary, exactly as the operator's effects
would, but instantly and in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rollout.core import (
    Action,
    InitializePrimary,
    Observations,
    PromotePrimary,
    RevertOutcome,
    ScaleTarget,
    SetWeight,
    Workload,
)


@dataclass
class SimulatedCluster:
    target_hash: str = "v1"
    target_revision: str | None = None
    target_committed_at: datetime | None = None
    target_ready: bool = True
    primary_exists: bool = False
    primary_hash: str | None = None
    primary_revision: str | None = None
    primary_ready: bool = True
    weights: tuple[int, int] = (100, 0)
    match: bool = False
    mirror: bool = False
    target_up: bool = True
    generation: int = 1

    def observe(self) -> Observations:
        return Observations(
            # a target scaled to zero serves nothing, so it is not ready (as `is_ready` says of a Deployment)
            target=Workload(True, self.target_hash, self.target_ready and self.target_up, self.target_revision,
                            self.target_committed_at),
            primary=Workload(self.primary_exists, self.primary_hash, self.primary_ready, self.primary_revision),
            weights=self.weights,
            generation=self.generation,
        )

    def apply(self, action: Action) -> RevertOutcome | None:
        """The cluster side of an action; Git, webhooks and events are not modelled here."""
        if isinstance(action, InitializePrimary | PromotePrimary):
            self.primary_exists = True
            self.primary_hash = self.target_hash
            self.primary_revision = self.target_revision
        elif isinstance(action, SetWeight):
            self.weights = (action.primary, action.canary)
            self.match = action.match
            self.mirror = action.mirror
        elif isinstance(action, ScaleTarget):
            self.target_up = action.up
        return None

    def release(self, spec_hash: str, revision: str | None = None, committed_at: datetime | None = None) -> None:
        """A new target spec arrives (a commit synced from Git, made at `committed_at`)."""
        self.target_hash = spec_hash
        self.target_revision = revision
        self.target_committed_at = committed_at
