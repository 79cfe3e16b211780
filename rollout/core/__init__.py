"""Pure release decisions: `plan(spec, status, observations, now) -> Decision`.

Nothing in this package performs I/O, reads the clock or sleeps; the engine observes the world,
asks the planner what to do, and carries the answer out.
"""

from analysis.verdicts import Verdict
from rollout.core.actions import (
    Action,
    Alert,
    CallWebhooks,
    Emit,
    InitializePrimary,
    PromotePrimary,
    RevertInGit,
    ScaleTarget,
    SetWeight,
)
from rollout.core.decision import Decision
from rollout.core.observations import CheckResult, Observations, RevertOutcome, RouteProblem, Slot, Workload
from rollout.core.plan import plan
from rollout.core.requests import AskGate, AskSlot, Request, RunChecks

__all__ = [
    "Action",
    "Alert",
    "AskGate",
    "AskSlot",
    "CallWebhooks",
    "CheckResult",
    "Decision",
    "Emit",
    "InitializePrimary",
    "Observations",
    "PromotePrimary",
    "Request",
    "RevertInGit",
    "RevertOutcome",
    "RouteProblem",
    "RunChecks",
    "ScaleTarget",
    "SetWeight",
    "Slot",
    "Verdict",
    "Workload",
    "plan",
]
