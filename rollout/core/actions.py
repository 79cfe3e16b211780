"""Actions are data: what the engine must do to carry a decision out.

Workload and route actions are idempotent: carried out again, they change nothing. Events,
notification webhooks and the revert in Git are not, so a tick that has any of them records its
actions in the status first (`to_record`, `ReleaseStatus.intent`) and a restarted operator
finishes that record instead of deciding again (`UNREPEATABLE`). What the planner asks to
observe before it decides is not an action: see `rollout.core.requests`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from rollout.api.spec import AlertSeverity, WebhookType


@dataclass(frozen=True)
class InitializePrimary:
    """Create `<target>-primary` from the target, the services and the router objects."""


@dataclass(frozen=True)
class ScaleTarget:
    """Scale the target (the canary) up for a run, or to zero when idle."""

    up: bool


@dataclass(frozen=True)
class SetWeight:
    """Route `canary` percent of traffic to the canary; `match` routes A/B-matched requests to it;
    `mirror` copies the primary's requests to the canary too (responses dropped); `cookie` is the
    run's session-affinity cookie (`name=value`, "" without `analysis.sessionAffinity`).

    `best_effort`: a release failing because it cannot route sends traffic back where a route
    exists, and a router error does not stop the failure from being recorded."""

    primary: int
    canary: int
    match: bool = False
    mirror: bool = False
    cookie: str = ""
    best_effort: bool = False


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


@dataclass(frozen=True)
class Alert:
    """A message for the release's `analysis.alerts` (Flagger's AlertProviders), planned next to the
    Event of the same transition and recorded with it. Each alert whose severity receives
    `severity` gets it; `fields` are (title, value) pairs shown under the message (the failing
    metrics with their numbers, Flagger's target and routing facts); `commit` is a revert commit
    the engine links to when the repository's URL allows."""

    severity: AlertSeverity
    message: str
    fields: tuple[tuple[str, str], ...] = ()
    commit: str | None = None
    reason: str = ""  # the Event's reason (the generic type sends it)


Action = InitializePrimary | ScaleTarget | SetWeight | PromotePrimary | CallWebhooks | RevertInGit | Emit | Alert

# Actions that must not happen twice for one decision: recorded before they are carried out.
UNREPEATABLE = (CallWebhooks, RevertInGit, Emit, Alert)

_KINDS: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (InitializePrimary, ScaleTarget, SetWeight, PromotePrimary, CallWebhooks, RevertInGit, Emit, Alert)
}


def to_record(action: Action) -> dict[str, Any]:
    """An action as plain JSON, for the status's intent record."""
    return {"kind": type(action).__name__, **{f.name: _plain(getattr(action, f.name)) for f in fields(action)}}


def from_record(record: Mapping[str, Any]) -> Action | None:
    """The action `to_record` wrote; None for a record this version cannot read (it is skipped)."""
    cls = _KINDS.get(str(record.get("kind")))
    if cls is None:
        return None
    values = {f.name: record[f.name] for f in fields(cls) if f.name in record}
    try:
        if cls is CallWebhooks:
            values["type"] = WebhookType(values["type"])
        if cls is Alert:
            values["severity"] = AlertSeverity(values["severity"])
            values["fields"] = tuple((str(k), str(v)) for k, v in values.get("fields") or ())
        action: Action = cls(**values)
    except (KeyError, TypeError, ValueError):
        return None
    return action


def _plain(value: Any) -> Any:
    if isinstance(value, WebhookType | AlertSeverity):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value
