"""A simulated Deployment controller: no pods run, but the status reads as on a real cluster.

Release tooling waits for a Deployment to roll out by reading its status: observedGeneration,
replicas, updatedReplicas, readyReplicas, availableReplicas and the Available and
Progressing conditions. This controller writes that status the way kube-controller-manager
does for a rollout whose new pods become ready after `ready_delay` seconds: while new pods
are not ready, the previous template's ready pods still count and `replicas` exceeds
`updatedReplicas`. A Deployment can be kept unready (its new pods never become ready, and
after `progressDeadlineSeconds` it reports ProgressDeadlineExceeded) with the annotation
`sandbox.rollout.gitops.dev/unready: "true"` or `DeploymentController.set_unready`.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import logging
import math
from dataclasses import dataclass
from typing import Any

from .resources import ResourceSpec
from .store import ObjectStore, WatchEvent

__all__ = ["UNREADY_ANNOTATION", "DeploymentController", "deployment_status"]

logger = logging.getLogger(__name__)

UNREADY_ANNOTATION = "sandbox.rollout.gitops.dev/unready"


@dataclass
class _Rollout:
    """What the controller remembers of one Deployment (a real one keeps it in ReplicaSets)."""

    template_hash: str
    replicas: int
    changed_at: float  # loop time of the last template or replica-count change
    ready_hash: str | None = None  # the template whose pods are ready
    ready_count: int = 0


def _template_hash(spec: dict[str, Any]) -> str:
    text = json.dumps(spec.get("template") or {}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _max_unavailable(spec: dict[str, Any], desired: int) -> int:
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return desired
    value = (strategy.get("rollingUpdate") or {}).get("maxUnavailable", "25%")
    if isinstance(value, str) and value.endswith("%"):
        return math.floor(desired * float(value[:-1]) / 100)
    return int(value)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(
    old: list[dict[str, Any]], kind: str, status: str, reason: str, message: str
) -> dict[str, Any]:
    """A condition that keeps its timestamps while its status and reason stay the same."""
    previous = next((c for c in old if c.get("type") == kind), None)
    now = _now()
    same = previous is not None and previous.get("status") == status and previous.get("reason") == reason
    transition = (
        previous.get("lastTransitionTime", now) if previous and previous.get("status") == status else now
    )
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": previous.get("lastUpdateTime", now) if same and previous else now,
        "lastTransitionTime": transition,
    }


def deployment_status(
    obj: dict[str, Any], rollout: _Rollout, *, now: float, unready: bool, ready_delay: float
) -> tuple[dict[str, Any], float | None]:
    """The status a Deployment shows now, and when it will change next (loop time) if nothing else does."""
    spec = obj.get("spec") or {}
    meta = obj.get("metadata") or {}
    desired = int(spec.get("replicas", 1))
    elapsed = now - rollout.changed_at
    deadline = float(spec.get("progressDeadlineSeconds", 600))
    if not unready and elapsed >= ready_delay:
        rollout.ready_hash, rollout.ready_count = rollout.template_hash, desired
    current_ready = min(rollout.ready_count, desired) if rollout.ready_hash == rollout.template_hash else 0
    old_ready = rollout.ready_count if rollout.ready_hash not in (None, rollout.template_hash) else 0
    available = current_ready + old_ready
    complete = current_ready == desired and old_ready == 0
    counts = {
        "replicas": desired + old_ready,
        "updatedReplicas": desired,
        "readyReplicas": available,
        "availableReplicas": available,
        "unavailableReplicas": max(desired - available, 0),
    }
    old_conditions = (obj.get("status") or {}).get("conditions") or []
    rs_name = f"{meta.get('name')}-{rollout.template_hash}"
    if available >= desired - _max_unavailable(spec, desired):
        available_cond = _condition(
            old_conditions,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    else:
        available_cond = _condition(
            old_conditions,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    if complete:
        progressing = _condition(
            old_conditions,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            f'ReplicaSet "{rs_name}" has successfully progressed.',
        )
    elif elapsed > deadline:
        progressing = _condition(
            old_conditions,
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            f'ReplicaSet "{rs_name}" has timed out progressing.',
        )
    else:
        progressing = _condition(
            old_conditions,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            f'ReplicaSet "{rs_name}" is progressing.',
        )
    status: dict[str, Any] = {"observedGeneration": meta.get("generation", 1)}
    status.update({k: v for k, v in counts.items() if v})  # the API omits zero counts (omitempty)
    status["conditions"] = [available_cond, progressing]
    if complete:
        wake = None
    elif unready:
        wake = rollout.changed_at + deadline + 0.001 if elapsed <= deadline else None
    else:
        wake = rollout.changed_at + ready_delay
    return status, wake


class DeploymentController:
    """Keeps the status of every apps/v1 Deployment in the store as a real controller would.

    While it runs it looks only at the Deployments a write touched and those whose status is due to
    change (their pods become ready, their deadline passes), not at every Deployment after every
    write: the cost of a write stays the same however many Deployments there are."""

    def __init__(self, store: ObjectStore, *, ready_delay: float = 0.5) -> None:
        self._store = store
        self.ready_delay = ready_delay
        self._rollouts: dict[str, _Rollout] = {}
        self._unready: set[tuple[str, str]] = set()
        self._dirty: set[tuple[str | None, str]] = set()
        self._wakes: dict[tuple[str | None, str], float] = {}
        self._listening = False
        self._writing = False  # its own status writes need no second look

    def set_unready(self, namespace: str, name: str, unready: bool = True) -> None:
        """Keep a Deployment's new pods from becoming ready (or let them)."""
        if unready:
            self._unready.add((namespace, name))
        else:
            self._unready.discard((namespace, name))
        self._dirty.add((namespace, name))
        self._store.nudge()

    def _on_write(self, spec: ResourceSpec, event: WatchEvent) -> None:
        if (spec.group, spec.plural) != ("apps", "deployments") or self._writing:
            return
        meta = event.obj.get("metadata") or {}
        key = (meta.get("namespace"), str(meta.get("name")))
        if event.type == "DELETED":
            self._rollouts.pop(meta.get("uid", ""), None)
            self._wakes.pop(key, None)
        else:
            self._dirty.add(key)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.reconcile(loop.time())  # every Deployment once, then only what changes
        self._store.listeners.append(self._on_write)
        self._listening = True
        try:
            while not self._store.stopping.is_set():
                try:
                    wake = self.reconcile(loop.time())
                except Exception:  # keep reporting: one odd Deployment must not stop the controller
                    logger.exception("sandbox deployment controller failed")
                    wake = None
                timeout = 1.0 if wake is None else min(max(wake - loop.time(), 0.0), 1.0)
                await self._store.wait_changed(timeout)
        finally:
            self._listening = False
            self._store.listeners.remove(self._on_write)

    def reconcile(self, now: float) -> float | None:
        """Bring the Deployments' status up to date (all of them when not running, else those written
        to or due); returns the earliest next change (loop time)."""
        spec = self._store.lookup("apps", "v1", "deployments")
        if spec is None:
            return None
        if not self._listening:
            return self._reconcile_all(spec, now)
        due = {key for key, at in self._wakes.items() if at <= now}
        keys, self._dirty = self._dirty | due, set()
        for key in keys:
            self._wakes.pop(key, None)
            obj = self._store.peek(spec, *key)
            if obj is None:
                continue
            try:
                wake = self._reconcile_one(spec, obj, now)
            except Exception:  # one odd Deployment must not stop the others' status
                logger.exception("sandbox deployment controller failed on %s/%s", *key)
                continue
            if wake is not None:
                self._wakes[key] = wake
        return min(self._wakes.values()) if self._wakes else None

    def _reconcile_all(self, spec: ResourceSpec, now: float) -> float | None:
        wakes: list[float] = []
        seen: set[str] = set()
        self._wakes.clear()
        for _, obj in self._store.live_objects(spec):
            meta = obj.get("metadata") or {}
            seen.add(meta.get("uid", ""))
            try:
                wake = self._reconcile_one(spec, obj, now)
            except Exception:  # one odd Deployment must not stop the others' status
                logger.exception("sandbox deployment controller failed on %s/%s", meta.get("namespace"),
                                 meta.get("name"))
                continue
            if wake is not None:
                wakes.append(wake)
                self._wakes[(meta.get("namespace"), str(meta.get("name")))] = wake
        for uid in set(self._rollouts) - seen:
            del self._rollouts[uid]
        self._dirty.clear()
        return min(wakes) if wakes else None

    def _reconcile_one(self, spec: ResourceSpec, obj: dict[str, Any], now: float) -> float | None:
        meta = obj.get("metadata") or {}
        uid = meta.get("uid", "")
        body = obj.get("spec") or {}
        template_hash, desired = _template_hash(body), int(body.get("replicas", 1))
        rollout = self._rollouts.get(uid)
        if rollout is None:
            rollout = self._rollouts[uid] = _Rollout(template_hash, desired, now)
        elif (rollout.template_hash, rollout.replicas) != (template_hash, desired):
            if rollout.template_hash == template_hash and desired < rollout.replicas:
                rollout.ready_count = min(rollout.ready_count, desired)  # scaling down is immediate
            rollout.template_hash, rollout.replicas, rollout.changed_at = template_hash, desired, now
        annotations = meta.get("annotations") or {}
        unready = (
            annotations.get(UNREADY_ANNOTATION, "").lower() == "true"
            or (meta.get("namespace"), meta.get("name")) in self._unready
        )
        status, wake = deployment_status(
            obj, rollout, now=now, unready=unready, ready_delay=self.ready_delay
        )
        if status != obj.get("status"):
            self._writing = True
            try:
                self._store.update_status(spec, meta.get("namespace"), meta["name"], status)
            finally:
                self._writing = False
        return wake
