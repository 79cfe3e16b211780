"""What the engine saw this tick, as plain values the planner can decide on.

Some observations are expensive or have effects of their own (metric queries, webhooks, the Git
revert); they are `None` until gathered. When the planner needs one it asks for it with a request
(`RunChecks`, `AskGate`, `AskSlot`) or, for the revert, the `RevertInGit` action; the engine gathers it and
plans again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from analysis.verdicts import Verdict
from rollout.api.spec import WebhookType
from rollout.api.status import PullRequest, RevertState


@dataclass(frozen=True)
class Workload:
    """A Deployment as seen now: `spec_hash` is its pod-template hash, `revision` its Git revision,
    `committed_at` that revision's commit time (both as the GitSource that applied it annotated it)."""

    exists: bool = True
    spec_hash: str | None = None
    ready: bool = True
    revision: str | None = None
    committed_at: datetime | None = None
    images: tuple[str, ...] = ()  # its containers' images, for a hold's record of a failed version


@dataclass(frozen=True)
class CheckResult:
    """One metric check (or `rollout` webhook) for this tick.

    `final` marks a failure that no later check can undo (an anytime-valid test that crossed its
    boundary): the release rolls back at once instead of counting up to `analysis.threshold`.
    `dry_run` marks a shadow metric's check: recorded and reported, never deciding the release.
    `classification` is Kayenta's label (Pass, High, Low, Nodata, NodataFailMetric), `effect_size` the
    compare judge's effect size, and `critical` a critical metric's failure (which is also `final`).
    """

    name: str
    verdict: Verdict
    value: float | None = None
    primary: float | None = None
    limit: str = ""
    reason: str = ""
    final: bool = False
    dry_run: bool = False
    classification: str = ""
    effect_size: float | None = None
    critical: bool = False


@dataclass(frozen=True)
class RevertOutcome:
    """What the revert writer reports: the commit it wrote or found, or why it could not."""

    state: RevertState
    commit: str | None = None
    reverts: tuple[str, ...] = ()
    message: str = ""
    branch: str | None = None
    pull_request: PullRequest | None = None  # push: pullRequest: the request, as its host reports it


@dataclass(frozen=True)
class RouteProblem:
    """Why traffic cannot be routed: a router error, a route kind nobody serves (its CRDs are not
    installed), or an object the route needs (a Gateway, an Ingress, a Service) missing. `since` is
    when it was first seen, when the engine knows (an earlier tick failed on it)."""

    message: str
    since: datetime | None = None


@dataclass(frozen=True)
class Slot:
    """The answer to `AskSlot`: whether this release may start a run now under the operator's cap
    on concurrent releases (`limit`, 0 for none), and when not, where it waits: `place` in a queue
    of `queued` (1 is next), with `running` runs holding the slots; or, when the operator does not
    know yet which releases run (it could not list them), why not (`unknown`)."""

    granted: bool = True
    place: int = 0
    queued: int = 0
    running: int = 0
    limit: int = 0
    unknown: str = ""


@dataclass(frozen=True)
class Observations:
    target: Workload
    primary: Workload = Workload(exists=False)
    # (primary, canary) weights as the router reports them; None when it cannot tell.
    weights: tuple[int, int] | None = None
    generation: int | None = None
    checks: tuple[CheckResult, ...] | None = None
    # Per webhook type: True when every hook of that type answered 2xx.
    hooks: Mapping[WebhookType, bool] = field(default_factory=dict)
    revert: RevertOutcome | None = None
    routing: RouteProblem | None = None
    slot: Slot | None = None
