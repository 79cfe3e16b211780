"""Pure builders for a DaemonSet target: its primary, how it is "scaled to zero", when it is ready.

Flagger's DaemonSetController (pkg/canary/daemonset_controller.go, daemonset_ready.go), copied:

- a DaemonSet has no replica count, so the target is kept without pods by adding the node
  selector `flagger.app/scale-to-zero: "true"` to its pod template (no node carries that label)
  and scaled up by removing it. The same key is left out of the pod-template hash (a scaled-down
  target is the same version) and never reaches the primary;
- `<t>-primary` is a DaemonSet cloned from the target with the selector label renamed, taking the
  target's `minReadySeconds`, `revisionHistoryLimit` and `updateStrategy` at creation and on
  promotion; a target whose `updateStrategy.type` is not RollingUpdate is refused, as Flagger does;
- ready: the controller saw this generation, every node that should run a pod runs the current
  template (`updatedNumberScheduled` >= `desiredNumberScheduled`) and all those pods are available
  (`numberAvailable`), the status fields `kubectl rollout status` reads. A target carrying the
  scale-down selector serves nothing and is not ready.

The Services, the selector label and the copied annotations are the Deployment's (`builders`).
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from typing import Any

from rollout.api.kinds import DAEMONSET, WORKLOAD_KINDS
from rollout.api.spec import Release

from . import builders as b
from . import configs
from .errors import WorkloadError
from .hashing import pod_template_hash

Json = dict[str, Any]

# Flagger's `daemonSetScaleDownNodeSelector`: a label no node has, so no pod is scheduled.
SCALE_TO_ZERO_KEY = "flagger.app/scale-to-zero"
SCALE_TO_ZERO = {SCALE_TO_ZERO_KEY: "true"}
# DaemonSet spec fields the primary takes from the target (Flagger copies the same ones).
COPIED_SPEC_FIELDS = ("minReadySeconds", "revisionHistoryLimit", "updateStrategy")


def _pod_spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}


def is_scaled_down(obj: Mapping[str, Any]) -> bool:
    """Whether the DaemonSet carries the scale-to-zero node selector."""
    return SCALE_TO_ZERO_KEY in (_pod_spec(obj).get("nodeSelector") or {})


def template_without_scale_down(obj: Mapping[str, Any]) -> Json:
    """The pod template with the scale-to-zero key taken out of its node selector (an empty one dropped)."""
    template: Json = copy.deepcopy(dict((obj.get("spec") or {}).get("template") or {}))
    pod = template.get("spec")
    if isinstance(pod, dict):
        selector = {k: v for k, v in (pod.get("nodeSelector") or {}).items() if k != SCALE_TO_ZERO_KEY}
        if selector:
            pod["nodeSelector"] = selector
        else:
            pod.pop("nodeSelector", None)
    return template


def spec_hash(obj: Mapping[str, Any], tracked: Mapping[str, str] | None = None) -> str:
    """The pod-template hash (with its tracked configs' checksums), blind to the scale-to-zero
    selector (Flagger's HasTargetChanged)."""
    return pod_template_hash(template_without_scale_down(obj), tracked)


def check_target(target: Mapping[str, Any]) -> None:
    """Refuse what Flagger refuses: a DaemonSet that does not roll its pods by itself."""
    strategy = ((target.get("spec") or {}).get("updateStrategy") or {}).get("type")
    if strategy not in (None, "", "RollingUpdate"):
        name = (target.get("metadata") or {}).get("name")
        raise WorkloadError(
            f"DaemonSet {name} must have updateStrategy RollingUpdate but has {strategy}; "
            "set spec.updateStrategy.type: RollingUpdate", temporary=False)
    b.selector_label(target)


def _without_scale_down(target: Mapping[str, Any]) -> Json:
    """The target as the primary should copy it: its pod template without the scale-down selector."""
    out: Json = dict(target)
    out["spec"] = {**(target.get("spec") or {}), "template": template_without_scale_down(target)}
    return out


def _as_daemonset(primary: Json, target: Mapping[str, Any]) -> Json:
    """A primary the Deployment builders made, turned into a DaemonSet: no replicas, and the
    DaemonSet's own spec fields taken from the target."""
    spec = primary.setdefault("spec", {})
    spec.pop("replicas", None)
    tspec = target.get("spec") or {}
    for k in COPIED_SPEC_FIELDS:
        if tspec.get(k) is not None:
            spec[k] = copy.deepcopy(tspec[k])
    primary["apiVersion"], primary["kind"] = WORKLOAD_KINDS[DAEMONSET], DAEMONSET
    return primary


def build_primary(target: Mapping[str, Any], release: Release, tracked: Collection[configs.Key] = ()) -> Json:
    """`<t>-primary`: a clone of the target DaemonSet that selects on the renamed label and serves
    (metadata, labels and template as the Deployment's primary gets them)."""
    return _as_daemonset(b.build_primary(_without_scale_down(target), release, tracked), target)


def promoted_primary(primary: Mapping[str, Any], target: Mapping[str, Any], tracked: Collection[configs.Key] = (),
                     *, replicas: bool = True) -> Json | None:
    """The primary with the target's template (without the scale-down selector), spec fields and
    revision; None when it has them already."""
    new = b.promoted_primary(primary, _without_scale_down(target), tracked) or copy.deepcopy(dict(primary))
    new.pop("status", None)
    new = _as_daemonset(new, target)
    before = {k: v for k, v in primary.items() if k != "status"}
    return None if new == before else new


def scale_patch(target: Mapping[str, Any], primary: Mapping[str, Any] | None, up: bool,
                autoscaled: int | None = None) -> Json | None:
    """The merge patch that adds (down) or removes (up) the scale-to-zero node selector; None when
    the target is that already. `primary` and `autoscaled` are unused: a DaemonSet runs one pod per
    node either way (the parser refuses an autoscalerRef on it)."""
    if up == (not is_scaled_down(target)):
        return None
    return {"spec": {"template": {"spec": {"nodeSelector": {SCALE_TO_ZERO_KEY: None if up else "true"}}}}}


def is_ready(obj: Mapping[str, Any]) -> bool:
    """Rolled out on every node it should run on (Flagger's isDaemonSetReady at readyThreshold 100%)."""
    if is_scaled_down(obj):
        return False
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return False
    desired = int(status.get("desiredNumberScheduled") or 0)
    updated = int(status.get("updatedNumberScheduled") or 0)
    available = int(status.get("numberAvailable") or 0)
    return updated >= desired and available >= desired


def cannot_become_ready(obj: Mapping[str, Any]) -> bool:
    """A DaemonSet reports no progress deadline: it is never known to be stuck."""
    return False
