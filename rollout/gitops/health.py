"""Whether the objects a GitSource applied are ready, for `spec.wait`: pure functions over live objects.

A GitSource that waits is Ready only once what it applied works, not merely once the API stored it
(Flux's `wait`, after kstatus): a Deployment, StatefulSet or DaemonSet has observed its generation
and has every replica updated and available, a Job has completed, a CustomResourceDefinition is
Established, a PersistentVolumeClaim is Bound, a Namespace Active, and any other object with
status conditions has `Ready` True (when it has one). Each unready object comes with one short
phrase saying why, which the GitSource's condition lists. A failed Job or a Deployment past its
progress deadline will not become ready by waiting: they are `failed`, and the wait ends at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# The longest list of unready objects a condition message names; the rest are counted.
SHOWN = 5


@dataclass(frozen=True)
class Unready:
    """One object that is not ready: `what` is Kind/namespace/name, `why` one phrase; `failed` when
    waiting longer will not help."""

    what: str
    why: str
    failed: bool = False

    def __str__(self) -> str:
        return f"{self.what} ({self.why})"


def label(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind')}/{ns}/{meta.get('name')}" if ns else f"{obj.get('kind')}/{meta.get('name')}"


def _conditions(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(c.get("type")): c for c in status.get("conditions") or [] if isinstance(c, Mapping)}


def _observed(obj: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    generation = (obj.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    return generation is None or (observed is not None and int(observed) >= int(generation))


def _workload(obj: Mapping[str, Any], status: Mapping[str, Any]) -> Unready | None:
    kind = obj.get("kind")
    if not _observed(obj, status):
        return Unready(label(obj), "its controller has not seen the new spec yet")
    if kind == "DaemonSet":
        want = int(status.get("desiredNumberScheduled") or 0)
        updated = int(status.get("updatedNumberScheduled") or 0)
        available = int(status.get("numberAvailable") or 0)
    else:
        spec = obj.get("spec") or {}
        want = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
        updated = int(status.get("updatedReplicas") or 0)
        available = int(status.get("availableReplicas") or status.get("readyReplicas") or 0)
        progressing = _conditions(status).get("Progressing") or {}
        if kind == "Deployment" and progressing.get("reason") == "ProgressDeadlineExceeded":
            return Unready(label(obj), f"progress deadline exceeded, {available}/{want} available", failed=True)
    if updated < want:
        return Unready(label(obj), f"{updated}/{want} replicas updated")
    if available < want:
        return Unready(label(obj), f"{available}/{want} replicas available")
    return None


def unready(obj: Mapping[str, Any] | None, *, kind: str = "", name: str = "") -> Unready | None:
    """Why the live object is not ready yet, or None when it is; a missing object is not ready."""
    if obj is None:
        return Unready(f"{kind}/{name}", "not found")
    status = obj.get("status") or {}
    kind = str(obj.get("kind"))
    conditions = _conditions(status)
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
        return _workload(obj, status)
    if kind == "Job":
        for failed in ("Failed", "FailureTarget"):
            if (conditions.get(failed) or {}).get("status") == "True":
                message = conditions[failed].get("reason") or "failed"
                return Unready(label(obj), f"failed: {message}", failed=True)
        if (conditions.get("Complete") or {}).get("status") == "True":
            return None
        return Unready(label(obj), "not complete")
    if kind == "CustomResourceDefinition":
        if (conditions.get("Established") or {}).get("status") == "True":
            return None
        return Unready(label(obj), "not established")
    if kind == "PersistentVolumeClaim":
        return None if status.get("phase") == "Bound" else Unready(label(obj), f"phase {status.get('phase')}")
    if kind == "Namespace":
        phase = status.get("phase")
        return None if phase in (None, "Active") else Unready(label(obj), f"phase {phase}")
    ready = conditions.get("Ready")
    if ready is not None and ready.get("status") != "True":
        if not _observed(obj, status):
            return Unready(label(obj), "its controller has not seen the new spec yet")
        return Unready(label(obj), str(ready.get("reason") or ready.get("message") or "Ready is not True"))
    return None


def summary(waiting: Iterable[Unready]) -> str:
    """The unready objects as a condition names them: the first SHOWN, then how many more."""
    items = list(waiting)
    shown = "; ".join(str(u) for u in items[:SHOWN])
    return shown + (f"; and {len(items) - SHOWN} more" if len(items) > SHOWN else "")
