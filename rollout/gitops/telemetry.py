"""The GitOps side's metrics: each GitSource's sync state, and the reverts written to Git.

They live here, not with the releases' metrics in `rollout.engine.telemetry`, because the GitOps
layer sits below the engine and records them itself: after each sync of a GitSource, and when the
revert writer comes back from Git. On prometheus_client's default registry, served on `/metrics`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from rollout.api.status import RevertState

READY = Gauge("rollout_gitsource_ready", "1 when the GitSource's last sync applied its revision (Ready=True), else 0",
              ["namespace", "name"])
APPLIED = Gauge("rollout_gitsource_applied_revision_info", "The revision the GitSource last applied (always 1)",
                ["namespace", "name", "revision"])
APPLY_ERRORS = Counter("rollout_gitsource_apply_errors_total",
                       "Syncs whose revision the API refused (dry run or apply)", ["namespace", "name"])
DRIFT = Counter("rollout_gitsource_drift_corrections_total",
                "Objects changed in the cluster and re-applied from Git (selfHeal)", ["namespace", "name"])
PRUNES = Counter("rollout_gitsource_prunes_total", "Objects deleted because they left Git (prune)",
                 ["namespace", "name"])
REVERTS = Counter("rollout_reverts_total", "Reverts of failed releases asked of Git, by outcome",
                  ["namespace", "name", "outcome"])

# The Ready reasons of a sync the API refused.
APPLY_FAILURES = frozenset({"ApplyFailed", "ValidationFailed"})
OUTCOMES = {RevertState.PUSHED: "pushed", RevertState.SKIPPED: "skipped", RevertState.FAILED: "failed"}

_applied: dict[tuple[str, str], str] = {}


def synced(namespace: str, name: str, *, ready: bool, reason: str, applied: str | None,
           corrected: int = 0, pruned: int = 0) -> None:
    """One sync of GitSource namespace/name ended: Ready and its reason, the applied revision, the
    objects it re-applied and pruned."""
    READY.labels(namespace, name).set(1 if ready else 0)
    if reason in APPLY_FAILURES:
        APPLY_ERRORS.labels(namespace, name).inc()
    if corrected:
        DRIFT.labels(namespace, name).inc(corrected)
    if pruned:
        PRUNES.labels(namespace, name).inc(pruned)
    if applied:
        old = _applied.get((namespace, name))
        if old is not None and old != applied:
            APPLIED.remove(namespace, name, old)
        _applied[(namespace, name)] = applied
        APPLIED.labels(namespace, name, applied).set(1)


def gone(namespace: str, name: str) -> None:
    """A deleted GitSource's gauges go with it."""
    READY.remove(namespace, name)
    old = _applied.pop((namespace, name), None)
    if old is not None:
        APPLIED.remove(namespace, name, old)


def reverted(namespace: str, name: str, state: RevertState) -> None:
    if state in OUTCOMES:
        REVERTS.labels(namespace, name, OUTCOMES[state]).inc()
