"""Simulated autoscalers: the HorizontalPodAutoscaler controller and KEDA's ScaledObject controller.

No pods run and no metrics are read, so these scale nothing by load; what they keep is what a
release controller has to live with: the replicas of the target Deployment stay within the
autoscaler's bounds, and the status reads as on a real cluster.

- `autoscaling/v2` HorizontalPodAutoscaler: a target within [minReplicas (default 1),
  maxReplicas] is left as it is, one outside is scaled to the nearest bound; a target at 0
  replicas is not autoscaled at all (Kubernetes: "scaling is disabled since the replica count of
  the target is zero", which is what keeps a canary scaled to zero there). Status:
  currentReplicas, desiredReplicas, lastScaleTime and the AbleToScale, ScalingActive and
  ScalingLimited conditions.
- `keda.sh/v1alpha1` ScaledObject: the same within [minReplicaCount (default 0),
  maxReplicaCount (default 100)], a target at 0 included (KEDA brings it to its minimum), except
  while the `autoscaling.keda.sh/paused-replicas` annotation holds it at that count
  (`autoscaling.keda.sh/paused: "true"` freezes it where it is). Status: the Ready, Active and
  Paused conditions, scaleTargetKind, originalReplicaCount, pausedReplicaCount. KEDA's own
  `keda-hpa-<name>` HPA is not simulated: the ScaledObject scales its target directly.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import Any

from .resources import ResourceSpec
from .store import ObjectStore

__all__ = ["AutoscalerController", "hpa_desired", "scaled_object_desired"]

logger = logging.getLogger(__name__)

PAUSED_REPLICAS_ANNOTATION = "autoscaling.keda.sh/paused-replicas"
PAUSED_ANNOTATION = "autoscaling.keda.sh/paused"
KEDA_DEFAULT_MAX = 100


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _replicas(deployment: dict[str, Any]) -> int:
    value = (deployment.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def _clamp(current: int, low: int, high: int) -> int:
    return min(max(current, low), max(high, low))


def hpa_desired(hpa: dict[str, Any], current: int) -> tuple[int, str]:
    """(desired replicas, reason) of an HPA whose target runs `current`."""
    spec = hpa.get("spec") or {}
    if current == 0:
        return 0, "ScalingDisabled"
    low, high = int(spec.get("minReplicas") or 1), int(spec.get("maxReplicas") or 1)
    desired = _clamp(current, low, high)
    if desired > current:
        return desired, "TooFewReplicas"
    if desired < current:
        return desired, "TooManyReplicas"
    return desired, "DesiredWithinRange"


def scaled_object_desired(so: dict[str, Any], current: int) -> tuple[int, str]:
    """(desired replicas, reason) of a ScaledObject whose target runs `current`."""
    annotations = (so.get("metadata") or {}).get("annotations") or {}
    paused = annotations.get(PAUSED_REPLICAS_ANNOTATION)
    if paused is not None:
        try:
            return max(int(paused), 0), "ScaledObjectPaused"
        except ValueError:
            pass
    if str(annotations.get(PAUSED_ANNOTATION, "")).lower() == "true":
        return current, "ScaledObjectPaused"
    spec = so.get("spec") or {}
    low = int(spec.get("minReplicaCount") or 0)
    high = int(spec.get("maxReplicaCount") or KEDA_DEFAULT_MAX)
    return _clamp(current, low, high), "ScaledObjectReady"


def _condition(old: list[dict[str, Any]], kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
    previous = next((c for c in old if c.get("type") == kind), None)
    keep = previous is not None and previous.get("status") == status
    return {"type": kind, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": previous.get("lastTransitionTime", _now()) if keep and previous else _now()}


def hpa_status(hpa: dict[str, Any], current: int, desired: int, reason: str, scaled: bool) -> dict[str, Any]:
    old = hpa.get("status") or {}
    conditions = old.get("conditions") or []
    if reason == "ScalingDisabled":
        active = _condition(conditions, "ScalingActive", "False", "ScalingDisabled",
                            "scaling is disabled since the replica count of the target is zero")
    else:
        active = _condition(conditions, "ScalingActive", "True", "ValidMetricFound",
                            "the HPA was able to successfully calculate a replica count")
    limited = _condition(conditions, "ScalingLimited", "True" if reason.startswith("Too") else "False", reason,
                         "the desired replica count is outside the allowed range" if reason.startswith("Too")
                         else "the desired count is within the acceptable range")
    able = _condition(conditions, "AbleToScale", "True", "SucceededRescale" if scaled else "ReadyForNewScale",
                      "the HPA controller was able to update the target scale" if scaled
                      else "recommended size matches current size")
    status: dict[str, Any] = {"currentReplicas": current, "desiredReplicas": desired,
                              "conditions": [able, active, limited]}
    if scaled:
        status["lastScaleTime"] = _now()
    elif old.get("lastScaleTime"):
        status["lastScaleTime"] = old["lastScaleTime"]
    status["observedGeneration"] = (hpa.get("metadata") or {}).get("generation", 1)
    return status


def scaled_object_status(so: dict[str, Any], current: int, desired: int, reason: str,
                         target_kind: str) -> dict[str, Any]:
    old = so.get("status") or {}
    conditions = old.get("conditions") or []
    paused = reason == "ScaledObjectPaused"
    # No `hpaName`: KEDA's own HPA is not simulated, the ScaledObject scales its target directly.
    status: dict[str, Any] = {
        "scaleTargetKind": target_kind,
        "originalReplicaCount": old.get("originalReplicaCount", current),
        "conditions": [
            _condition(conditions, "Ready", "True", "ScaledObjectReady", "ScaledObject is defined correctly and "
                       "is ready for scaling"),
            _condition(conditions, "Active", "True" if desired > 0 else "False",
                       "ScalerActive" if desired > 0 else "ScalerNotActive",
                       "Scaling is performed because triggers are active" if desired > 0
                       else "Scaling is not performed because triggers are not active"),
            _condition(conditions, "Paused", "True" if paused else "False", reason,
                       "ScaledObject is paused" if paused else "pause annotation removed for ScaledObject"),
        ],
    }
    paused_count = ((so.get("metadata") or {}).get("annotations") or {}).get(PAUSED_REPLICAS_ANNOTATION)
    if paused_count is not None:
        status["pausedReplicaCount"] = int(paused_count) if str(paused_count).isdigit() else 0
    return status


class AutoscalerController:
    """Keeps every HPA's and ScaledObject's Deployment within its bounds, and their status."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    async def run(self) -> None:
        while not self._store.stopping.is_set():
            try:
                self.reconcile()
            except Exception:  # keep scaling: one odd autoscaler must not stop the controller
                logger.exception("sandbox autoscaler controller failed")
            await self._store.wait_changed(1.0)

    def reconcile(self) -> None:
        deployments = self._store.lookup("apps", "v1", "deployments")
        if deployments is None:
            return
        kinds: tuple[tuple[ResourceSpec | None, Callable[..., tuple[int, str]], bool], ...] = (
            (self._store.lookup("autoscaling", "v2", "horizontalpodautoscalers"), hpa_desired, True),
            (self._store.lookup("keda.sh", "v1alpha1", "scaledobjects"), scaled_object_desired, False),
        )
        for spec, decide, is_hpa in kinds:
            if spec is None:
                continue
            for _, obj in self._store.live_objects(spec):
                self._reconcile_one(spec, deployments, obj, decide, is_hpa)

    def _reconcile_one(self, spec: ResourceSpec, deployments: ResourceSpec, obj: dict[str, Any],
                       decide: Callable[..., tuple[int, str]], is_hpa: bool) -> None:
        meta = obj.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            return
        ref = (obj.get("spec") or {}).get("scaleTargetRef") or {}
        if (ref.get("kind") or "Deployment") != "Deployment" or not ref.get("name"):
            return  # the sandbox simulates Deployments only
        namespace = meta.get("namespace")
        target = self._store.get(deployments, namespace, ref["name"])
        if target is None:
            return
        current = _replicas(target)
        desired, reason = decide(obj, current)
        scaled = desired != current
        if scaled:
            def scale(o: dict[str, Any]) -> None:
                o.setdefault("spec", {})["replicas"] = desired
            self._store.update(deployments, namespace, ref["name"], scale)
            logger.info("sandbox %s %s/%s scaled %s from %d to %d", spec.kind, namespace, meta.get("name"),
                        ref["name"], current, desired)
        if is_hpa:
            status = hpa_status(obj, current, desired, reason, scaled)
        else:
            status = scaled_object_status(obj, current, desired, reason, "apps/v1.Deployment")
        if status != obj.get("status"):
            self._store.update_status(spec, namespace, meta["name"], status)
