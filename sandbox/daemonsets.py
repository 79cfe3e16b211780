"""A simulated DaemonSet controller: a fixed set of simulated nodes, no pods, a real-looking status.

Release tooling waits for a DaemonSet to roll out by reading observedGeneration,
desiredNumberScheduled, currentNumberScheduled, updatedNumberScheduled, numberReady and
numberAvailable (what `kubectl rollout status` and Flagger's isDaemonSetReady read). This
controller writes them as kube-controller-manager would on `NODES` simulated nodes: a pod is
scheduled on every node whose labels match the pod template's `nodeSelector` (so Flagger's
`flagger.app/scale-to-zero: "true"` selector leaves a DaemonSet with no pods), and after a
template change the new pods are ready `ready_delay` seconds later; meanwhile the old pods still
serve. The Deployment controller's unready annotation keeps new pods from ever becoming ready.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .deployments import UNREADY_ANNOTATION
from .store import ObjectStore

__all__ = ["NODES", "DaemonSetController", "daemonset_status", "scheduled_nodes"]

logger = logging.getLogger(__name__)

# The simulated cluster's nodes and their labels (what a nodeSelector is matched against).
NODES: tuple[Mapping[str, str], ...] = tuple(
    {"kubernetes.io/hostname": f"node-{i}", "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
    for i in range(3)
)


@dataclass
class _Rollout:
    """What the controller remembers of one DaemonSet (a real one keeps it in ControllerRevisions)."""

    template_hash: str
    desired: int
    changed_at: float
    ready_hash: str | None = None  # the template whose pods are ready
    ready_count: int = 0


def scheduled_nodes(obj: Mapping[str, Any]) -> int:
    """How many simulated nodes the DaemonSet's pods go to: those matching its nodeSelector."""
    pod = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    selector = pod.get("nodeSelector") or {}
    return sum(all(node.get(k) == str(v) for k, v in selector.items()) for node in NODES)


def _template_hash(spec: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec.get("template") or {}, sort_keys=True).encode()).hexdigest()[:10]


def daemonset_status(obj: Mapping[str, Any], rollout: _Rollout, *, now: float, unready: bool,
                     ready_delay: float) -> tuple[dict[str, Any], float | None]:
    """The status a DaemonSet shows now, and when it will change next (loop time) if nothing else does."""
    desired = rollout.desired
    if not unready and now - rollout.changed_at >= ready_delay:
        rollout.ready_hash, rollout.ready_count = rollout.template_hash, desired
    current = rollout.ready_hash == rollout.template_hash
    ready = min(rollout.ready_count, desired)  # old or new pods, one per node still scheduled
    if unready and not current:
        # The new pods replaced the old ones (maxUnavailable) and never become ready.
        updated, ready = desired, 0
    else:
        updated = desired if current else 0
    counts = {
        "currentNumberScheduled": desired,
        "desiredNumberScheduled": desired,
        "numberMisscheduled": 0,
        "numberReady": ready,
        "numberAvailable": ready,
        "numberUnavailable": desired - ready,
        "updatedNumberScheduled": updated,
    }
    status: dict[str, Any] = {"observedGeneration": (obj.get("metadata") or {}).get("generation", 1)}
    # The API omits zero optional counts (omitempty); the first four are required and always shown.
    required = ("currentNumberScheduled", "desiredNumberScheduled", "numberMisscheduled", "numberReady")
    status.update({k: v for k, v in counts.items() if v or k in required})
    done = current and rollout.ready_count >= desired
    wake = None if done or unready else rollout.changed_at + ready_delay
    return status, wake


class DaemonSetController:
    """Keeps the status of every apps/v1 DaemonSet in the store as a real controller would."""

    def __init__(self, store: ObjectStore, *, ready_delay: float = 0.5) -> None:
        self._store = store
        self.ready_delay = ready_delay
        self._rollouts: dict[str, _Rollout] = {}

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._store.stopping.is_set():
            try:
                wake = self.reconcile(loop.time())
            except Exception:  # keep reporting: one odd DaemonSet must not stop the controller
                logger.exception("sandbox daemonset controller failed")
                wake = None
            timeout = 1.0 if wake is None else min(max(wake - loop.time(), 0.0), 1.0)
            await self._store.wait_changed(timeout)

    def reconcile(self, now: float) -> float | None:
        """Bring every DaemonSet's status up to date; returns the earliest next change (loop time)."""
        spec = self._store.lookup("apps", "v1", "daemonsets")
        if spec is None:
            return None
        wakes: list[float] = []
        seen: set[str] = set()
        for _, obj in self._store.live_objects(spec):
            meta = obj.get("metadata") or {}
            uid = meta.get("uid", "")
            seen.add(uid)
            body = obj.get("spec") or {}
            template_hash, desired = _template_hash(body), scheduled_nodes(obj)
            rollout = self._rollouts.get(uid)
            if rollout is None:
                rollout = self._rollouts[uid] = _Rollout(template_hash, desired, now)
            elif (rollout.template_hash, rollout.desired) != (template_hash, desired):
                # Pods on nodes that no longer match leave at once, whatever the template.
                rollout.ready_count = min(rollout.ready_count, desired)
                rollout.template_hash, rollout.desired, rollout.changed_at = template_hash, desired, now
            unready = ((meta.get("annotations") or {}).get(UNREADY_ANNOTATION, "").lower() == "true")
            status, wake = daemonset_status(obj, rollout, now=now, unready=unready, ready_delay=self.ready_delay)
            if status != obj.get("status"):
                self._store.update_status(spec, meta.get("namespace"), meta["name"], status)
            if wake is not None:
                wakes.append(wake)
        for uid in set(self._rollouts) - seen:
            del self._rollouts[uid]
        return min(wakes) if wakes else None
