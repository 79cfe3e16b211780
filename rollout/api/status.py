"""The status of a Canary or BlueGreen: the only memory a release has.

A controller restarted at any instant rebuilds everything from this record, so it round-trips
through the JSON the API server stores (`to_dict` / `from_dict`) without loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Phase(StrEnum):
    INITIALIZING = "Initializing"
    INITIALIZED = "Initialized"
    WAITING = "Waiting"
    PROGRESSING = "Progressing"
    WAITING_PROMOTION = "WaitingPromotion"
    PROMOTING = "Promoting"
    FINALISING = "Finalising"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    TERMINATING = "Terminating"
    TERMINATED = "Terminated"
    REVERTING = "Reverting"
    REVERTED = "Reverted"


# Phases in which a tick only looks (no run is under way): no metric query, no webhook, no Git.
# A release without a phase is not: its first tick creates its primary and routes.
IDLE_PHASES = frozenset({Phase.INITIALIZED, Phase.SUCCEEDED, Phase.REVERTED, Phase.TERMINATED})
# Phases in which a release is under way: traffic may be on the canary.
RUNNING_PHASES = frozenset(
    {Phase.WAITING, Phase.PROGRESSING, Phase.WAITING_PROMOTION, Phase.PROMOTING, Phase.FINALISING}
)
# Phases in which a run holds one of the operator's `--max-concurrent-releases` slots: from the
# moment it starts (its canary scaled up) until it ends. Waiting, at a confirm-rollout gate or in
# the queue for a slot, holds none.
SLOT_PHASES = RUNNING_PHASES - {Phase.WAITING}


class RevertState(StrEnum):
    PENDING = "Pending"
    COMMITTED = "Committed"
    PUSHED = "Pushed"
    APPLIED = "Applied"
    SKIPPED = "Skipped"
    FAILED = "Failed"


class Command(StrEnum):
    """What a person asks of a release (`rollout promote|abort|retry`), recorded in `status.command`
    until the planner acts on it."""

    PROMOTE = "promote"
    ABORT = "abort"
    RETRY = "retry"


def format_time(t: datetime) -> str:
    """RFC 3339 in UTC; sub-second digits only when present, so a round trip loses nothing."""
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if t.microsecond else "%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Candidate:
    """The target spec under release: its pod-template hash and the Git revision that produced it.

    The times are the run's own record, kept until it ends in `ReleaseStatus.history`: when the
    revision was committed (as the GitSource that applied it read it from Git), when the run
    started, when its failure was detected and when traffic was back on the primary."""

    spec: str
    revision: str | None = None
    started_at: datetime | None = None
    committed_at: datetime | None = None
    failed_at: datetime | None = None
    restored_at: datetime | None = None


class RunOutcome(StrEnum):
    """How a run ended, as its history record says."""

    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    REVERTED = "Reverted"


# The history keeps the newest runs only: a status is one object of at most 1.5 MiB in etcd.
HISTORY_LIMIT = 50


@dataclass(frozen=True)
class RunRecord:
    """One finished run, as `status.history` keeps it: what the DORA figures are computed from.

    `failed_at` is when the failure was detected, `restored_at` when traffic was back on the
    primary, `reverted_at` when the revert in Git was applied (outcome Reverted)."""

    outcome: RunOutcome
    spec: str
    started_at: datetime | None
    ended_at: datetime
    revision: str | None = None
    committed_at: datetime | None = None
    failed_at: datetime | None = None
    restored_at: datetime | None = None
    reverted_at: datetime | None = None
    revert_commit: str | None = None

    @property
    def key(self) -> tuple[str, datetime | None]:
        """The run this records: its candidate spec and start. A run is recorded once."""
        return (self.spec, self.started_at)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "outcome": self.outcome.value,
            "spec": self.spec,
            "revision": self.revision,
            "committedAt": _t(self.committed_at),
            "startedAt": _t(self.started_at),
            "endedAt": _t(self.ended_at),
            "failedAt": _t(self.failed_at),
            "restoredAt": _t(self.restored_at),
            "revertedAt": _t(self.reverted_at),
            "revertCommit": self.revert_commit,
        }
        return {k: v for k, v in out.items() if v is not None}

    @classmethod
    def from_dict(cls, raw: Any) -> RunRecord | None:
        """A stored record; None for one this version cannot read (it is dropped at the next write)."""
        if not isinstance(raw, dict):
            return None
        try:
            ended = parse_time(raw.get("endedAt"))
            if ended is None:
                return None
            return cls(
                outcome=RunOutcome(str(raw.get("outcome"))),
                spec=str(raw.get("spec") or ""),
                started_at=parse_time(raw.get("startedAt")),
                ended_at=ended,
                revision=raw.get("revision") or None,
                committed_at=parse_time(raw.get("committedAt")),
                failed_at=parse_time(raw.get("failedAt")),
                restored_at=parse_time(raw.get("restoredAt")),
                reverted_at=parse_time(raw.get("revertedAt")),
                revert_commit=raw.get("revertCommit") or None,
            )
        except (TypeError, ValueError):
            return None


class PullRequestState(StrEnum):
    OPEN = "Open"
    MERGED = "Merged"
    CLOSED = "Closed"  # closed (declined, abandoned) without merging


@dataclass(frozen=True)
class PullRequest:
    """The revert's pull/merge request (`git.push: pullRequest`), as its host last reported it."""

    url: str
    number: int
    state: PullRequestState = PullRequestState.OPEN

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "number": self.number, "state": self.state.value}

    @classmethod
    def from_dict(cls, raw: Any) -> PullRequest | None:
        if not isinstance(raw, dict) or not raw.get("url"):
            return None
        try:
            return cls(str(raw["url"]), int(raw.get("number") or 0), PullRequestState(raw.get("state") or "Open"))
        except ValueError:
            return None


@dataclass(frozen=True)
class RevertStatus:
    state: RevertState = RevertState.PENDING
    commit: str | None = None
    reverts: tuple[str, ...] = ()
    message: str = ""
    branch: str | None = None
    pull_request: PullRequest | None = None


@dataclass(frozen=True)
class Hold:
    """A version that failed and was rolled back: a later commit that brings back exactly this spec
    (same pod template and tracked configs, so the same images) starts no run until `rollout retry`."""

    spec: str
    revision: str | None = None
    images: tuple[str, ...] = ()
    since: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec, "revision": self.revision, "images": list(self.images), "since": _t(self.since)}

    @classmethod
    def from_dict(cls, raw: Any) -> Hold | None:
        if not isinstance(raw, dict) or not raw.get("spec"):
            return None
        return cls(str(raw["spec"]), raw.get("revision") or None, tuple(str(i) for i in raw.get("images") or ()),
                   parse_time(raw.get("since")))


@dataclass(frozen=True)
class MetricStatus:
    name: str
    verdict: str
    value: float | None = None
    primary: float | None = None
    limit: str = ""
    reason: str = ""
    # A dry-run metric: reported, never deciding the release.
    dry_run: bool = False
    # Kayenta's label (Pass, High, Low, Nodata, NodataFailMetric), the compare judge's effect size, and
    # whether a critical metric failed critically.
    classification: str = ""
    effect_size: float | None = None
    critical: bool = False


@dataclass(frozen=True)
class AnalysisStatus:
    verdict: str = ""
    checked_at: datetime | None = None
    metrics: tuple[MetricStatus, ...] = ()
    # `analysis.scoring`: Kayenta's 0-100 score of the check and its class (pass, marginal, fail).
    score: float | None = None
    score_classification: str = ""
    # The sequential judge's last look between checks (`analysis.lookInterval`); None until one.
    looked_at: datetime | None = None


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str = ""
    message: str = ""
    last_transition_time: datetime | None = None


@dataclass(frozen=True)
class Intent:
    """Side effects a tick decided on, recorded before any is carried out (a write-ahead log).

    A restarted operator that finds one finishes it, each effect under its key (`effect_key`),
    instead of deciding again: an Event is created under a name made from its key (a second
    create is refused), a webhook is sent with the key, the revert writer finds its own commit.
    `phase` and `checksum` are what the effects speak of: the decided phase and target spec.
    """

    seq: int
    phase: str = ""
    checksum: str | None = None
    actions: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class ReleaseStatus:
    phase: Phase | None = None
    canary_weight: int = 0
    failed_checks: int = 0
    iterations: int = 0
    last_applied_spec: str | None = None
    last_promoted_spec: str | None = None
    last_transition_time: datetime | None = None
    observed_generation: int | None = None
    # The traffic provider in effect: spec.provider, or the operator's default when it is not set.
    provider: str | None = None
    candidate: Candidate | None = None
    revert: RevertStatus | None = None
    analysis: AnalysisStatus | None = None
    conditions: tuple[Condition, ...] = ()
    # Blue/green: when traffic was switched, so the old version can be scaled down after the delay.
    switched_at: datetime | None = None
    # A manual command not yet acted on.
    command: Command | None = None
    # Side effects recorded and not yet known to be done, and how many intents were ever recorded.
    intent: Intent | None = None
    intents: int = 0
    # Finished runs, oldest first, at most HISTORY_LIMIT: the release records `rollout dora` reads.
    history: tuple[RunRecord, ...] = ()
    # Waiting for a slot under `--max-concurrent-releases`: since when (the queue's order, oldest first).
    queued_at: datetime | None = None
    # The failed version held back after a rollback (absent when none is).
    hold: Hold | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def condition(self, kind: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind), None)

    def with_condition(self, new: Condition) -> ReleaseStatus:
        """Set a condition; its transition time only moves when its status changes."""
        old = self.condition(new.type)
        if old is not None and old.status == new.status:
            new = replace(new, last_transition_time=old.last_transition_time)
        others = tuple(c for c in self.conditions if c.type != new.type)
        return replace(self, conditions=(*others, new))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        out.update(
            {
                "phase": self.phase.value if self.phase else None,
                "canaryWeight": self.canary_weight,
                "failedChecks": self.failed_checks,
                "iterations": self.iterations,
                "lastAppliedSpec": self.last_applied_spec,
                "lastPromotedSpec": self.last_promoted_spec,
                "lastTransitionTime": _t(self.last_transition_time),
                "observedGeneration": self.observed_generation,
                "provider": self.provider,
                "switchedAt": _t(self.switched_at),
                "command": str(self.command) if self.command else None,
                "intent": {
                    "seq": self.intent.seq,
                    "phase": self.intent.phase,
                    "checksum": self.intent.checksum,
                    "actions": [dict(a) for a in self.intent.actions],
                } if self.intent else None,
                "intents": self.intents,
            }
        )
        # None (not absent) once it leaves the queue, so the merge patch removes it.
        out["queuedAt"] = _t(self.queued_at)
        out["hold"] = self.hold.to_dict() if self.hold else None  # None: the merge patch removes it
        if self.history:  # absent until a run ends, so releases that never ran write nothing new
            out["history"] = [r.to_dict() for r in self.history]
        if self.candidate:
            c = self.candidate
            out["candidate"] = {"spec": c.spec, "revision": c.revision, "startedAt": _t(c.started_at)}
            # Written only when known, so a status without them reads and writes as before.
            out["candidate"].update({k: _t(v) for k, v in (("committedAt", c.committed_at),
                                                            ("failedAt", c.failed_at),
                                                            ("restoredAt", c.restored_at)) if v})
        else:
            out["candidate"] = None
        if self.revert:
            r = self.revert
            out["revert"] = {
                "state": r.state.value,
                "commit": r.commit,
                "reverts": list(r.reverts),
                "message": r.message,
                "branch": r.branch,
                **({"pullRequest": r.pull_request.to_dict()} if r.pull_request else {}),
            }
        else:
            out["revert"] = None
        if self.analysis:
            a = self.analysis
            out["analysis"] = {
                "verdict": a.verdict,
                "checkedAt": _t(a.checked_at),
                **({"lookedAt": _t(a.looked_at)} if a.looked_at else {}),
                **({"score": a.score, "scoreClassification": a.score_classification} if a.score is not None else {}),
                "metrics": [
                    {
                        "name": m.name,
                        "verdict": m.verdict,
                        "value": _number(m.value),
                        "primary": _number(m.primary),
                        "limit": m.limit,
                        "reason": m.reason,
                        **({"dryRun": True} if m.dry_run else {}),
                        **({"classification": m.classification} if m.classification else {}),
                        **({"effectSize": _number(m.effect_size)} if m.effect_size is not None else {}),
                        **({"critical": True} if m.critical else {}),
                    }
                    for m in a.metrics
                ],
            }
        else:
            out["analysis"] = None
        out["conditions"] = [
            {
                "type": c.type,
                "status": c.status,
                "reason": c.reason,
                "message": c.message,
                "lastTransitionTime": _t(c.last_transition_time),
            }
            for c in self.conditions
        ]
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> ReleaseStatus:
        raw = dict(raw or {})
        known = {
            "phase", "canaryWeight", "failedChecks", "iterations", "lastAppliedSpec", "lastPromotedSpec",
            "lastTransitionTime", "observedGeneration", "provider", "candidate", "revert", "analysis", "conditions",
            "switchedAt", "command", "intent", "intents", "history", "queuedAt", "hold",
        }  # fmt: skip
        cand = raw.get("candidate")
        rev = raw.get("revert")
        ana = raw.get("analysis")
        phase = raw.get("phase")
        return cls(
            phase=Phase(phase) if phase else None,
            canary_weight=int(raw.get("canaryWeight") or 0),
            failed_checks=int(raw.get("failedChecks") or 0),
            iterations=int(raw.get("iterations") or 0),
            last_applied_spec=raw.get("lastAppliedSpec"),
            last_promoted_spec=raw.get("lastPromotedSpec"),
            last_transition_time=parse_time(raw.get("lastTransitionTime")),
            observed_generation=raw.get("observedGeneration"),
            provider=raw.get("provider"),
            candidate=Candidate(
                spec=cand["spec"], revision=cand.get("revision"), started_at=parse_time(cand.get("startedAt")),
                committed_at=parse_time(cand.get("committedAt")), failed_at=parse_time(cand.get("failedAt")),
                restored_at=parse_time(cand.get("restoredAt")),
            )
            if cand
            else None,
            revert=RevertStatus(
                state=RevertState(rev.get("state") or RevertState.PENDING.value),
                commit=rev.get("commit"),
                reverts=tuple(rev.get("reverts") or ()),
                message=rev.get("message") or "",
                branch=rev.get("branch"),
                pull_request=PullRequest.from_dict(rev.get("pullRequest")),
            )
            if rev
            else None,
            analysis=AnalysisStatus(
                verdict=ana.get("verdict") or "",
                checked_at=parse_time(ana.get("checkedAt")),
                looked_at=parse_time(ana.get("lookedAt")),
                metrics=tuple(
                    MetricStatus(
                        name=m["name"],
                        verdict=m.get("verdict", ""),
                        value=m.get("value"),
                        primary=m.get("primary"),
                        limit=m.get("limit") or "",
                        reason=m.get("reason") or "",
                        dry_run=m.get("dryRun") is True,
                        classification=m.get("classification") or "",
                        effect_size=m.get("effectSize"),
                        critical=m.get("critical") is True,
                    )
                    for m in ana.get("metrics") or ()
                ),
                score=ana.get("score"),
                score_classification=ana.get("scoreClassification") or "",
            )
            if ana
            else None,
            conditions=tuple(
                Condition(
                    type=c["type"],
                    status=c["status"],
                    reason=c.get("reason") or "",
                    message=c.get("message") or "",
                    last_transition_time=parse_time(c.get("lastTransitionTime")),
                )
                for c in raw.get("conditions") or ()
            ),
            switched_at=parse_time(raw.get("switchedAt")),
            command=_command(raw.get("command")),
            intent=_intent(raw.get("intent")),
            intents=int(raw.get("intents") or 0),
            history=tuple(r for r in map(RunRecord.from_dict, raw.get("history") or ()) if r is not None),
            queued_at=parse_time(raw.get("queuedAt")),
            hold=Hold.from_dict(raw.get("hold")),
            extra={k: v for k, v in raw.items() if k not in known},
        )


def _intent(raw: Any) -> Intent | None:
    if not isinstance(raw, dict):
        return None
    actions = tuple(dict(a) for a in raw.get("actions") or () if isinstance(a, dict))
    return Intent(seq=int(raw.get("seq") or 0), phase=str(raw.get("phase") or ""), checksum=raw.get("checksum"),
                  actions=actions)


def effect_key(uid: str, seq: int, index: int) -> str:
    """The key of one recorded side effect: unique per release, intent and position."""
    return f"{uid or 'release'}.{seq}.{index}"


def _command(raw: Any) -> Command | None:
    """A stored command; one this version does not know is dropped (and cleared at the next write)."""
    try:
        return Command(raw) if raw else None
    except ValueError:
        return None


def _number(x: float | None) -> float | None:
    """A number JSON can carry: an infinite reading (a p99 above the top bucket) is written as null,
    its reason says inf."""
    return x if x is not None and math.isfinite(x) else None


def _t(t: datetime | None) -> str | None:
    return format_time(t) if t else None
