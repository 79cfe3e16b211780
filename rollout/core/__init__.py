"""Pure release decisions: `plan(spec, status, observations, now) -> Decision`.

Nothing in this package performs I/O, reads the clock or sleeps; the engine observes the world,
asks the planner what to do, and carries the answer out.
"""

from analysis.verdicts import Verdict
from rollout.core.actions import (
    Action,
    CallWebhooks,
    Decision,
    Emit,
    InitializePrimary,
    PromotePrimary,
    RevertInGit,
    RunChecks,
    ScaleTarget,
    SetWeight,
)
from rollout.core.observations import CheckResult, Observations, RevertOutcome, Workload
from rollout.core.plan import plan

__all__ = [
    "Action",
    "CallWebhooks",
    "CheckResult",
    "Decision",
    "Emit",
    "InitializePrimary",
    "Observations",
    "PromotePrimary",
    "RevertInGit",
    "RevertOutcome",
    "RunChecks",
    "ScaleTarget",
    "SetWeight",
    "Verdict",
    "Workload",
    "plan",
]
