"""Requests are data: observations the planner needs before it can decide.

Some observations are expensive or reach outside the cluster (metric queries, gate webhooks), so
the engine gathers them only when the planner asks. Unlike actions, a request changes nothing:
the engine answers it into `Observations` and plans again in the same tick.
"""

from __future__ import annotations

from dataclasses import dataclass

from rollout.api.spec import WebhookType


@dataclass(frozen=True)
class RunChecks:
    """Gather metric verdicts (and `rollout` webhooks) for this tick; with `sequential_only`, only the
    sequential judge's metrics, for a look between checks (`analysis.lookInterval`)."""

    sequential_only: bool = False


@dataclass(frozen=True)
class AskGate:
    """Call the webhooks of this type and report whether every one answered 2xx (a gate is open)."""

    type: WebhookType


@dataclass(frozen=True)
class AskSlot:
    """Take one of the operator's slots for a new run, or learn the place in the queue for one
    (`Slot`). Asked only by a release about to start a run; a granted slot is held from then on."""


Request = RunChecks | AskGate | AskSlot
