"""The workload kinds a release can target, behind one small protocol, and their registry.

`Workloads` (the I/O) reads, creates, replaces and patches the target and its primary through the
official client's `AppsV1Api` methods named for the kind, and asks the kind's pure builders what
each object should look like. A kind the registry does not know is refused by name (the parser
refuses it first; this is the operator's guard for a spec that bypassed it).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from rollout.api.kinds import DAEMONSET, DEPLOYMENT, WORKLOAD_KINDS
from rollout.api.spec import Release

from . import builders as b
from . import configs
from . import daemonsets as ds
from .errors import WorkloadError
from .hashing import pod_template_hash

Json = dict[str, Any]


@dataclass(frozen=True)
class WorkloadKind:
    """One workload kind: the `AppsV1Api` method suffix and the pure decisions about its objects."""

    kind: str
    api_suffix: str  # AppsV1Api.<verb>_namespaced_<suffix> (Workloads._call names them)
    # (obj, tracked config checksums) -> hash
    spec_hash: Callable[[Mapping[str, Any], Mapping[str, str] | None], str]
    is_ready: Callable[[Mapping[str, Any]], bool]
    check_target: Callable[[Mapping[str, Any]], None]
    # (target, release, tracked configs)
    build_primary: Callable[[Mapping[str, Any], Release, Collection[configs.Key]], Json]
    # (primary, target, tracked configs, *, replicas=)
    promoted_primary: Callable[..., Json | None]
    # (target, primary, up, the count its autoscaler starts it at)
    scale_patch: Callable[[Mapping[str, Any], Mapping[str, Any] | None, bool, int | None], Json | None]
    cannot_become_ready: Callable[[Mapping[str, Any]], bool]


def _deployment_stuck(deployment: Mapping[str, Any]) -> bool:
    """Its rollout exceeded `progressDeadlineSeconds` (the Progressing condition says so)."""
    for condition in (deployment.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return True
    return False


def _check_deployment(target: Mapping[str, Any]) -> None:
    b.selector_label(target)


KINDS: dict[str, WorkloadKind] = {
    DEPLOYMENT: WorkloadKind(
        kind=DEPLOYMENT, api_suffix="deployment", spec_hash=pod_template_hash, is_ready=b.is_ready,
        check_target=_check_deployment, build_primary=b.build_primary, promoted_primary=b.promoted_primary,
        scale_patch=b.scale_patch, cannot_become_ready=_deployment_stuck,
    ),
    DAEMONSET: WorkloadKind(
        kind=DAEMONSET, api_suffix="daemon_set", spec_hash=ds.spec_hash, is_ready=ds.is_ready,
        check_target=ds.check_target, build_primary=ds.build_primary, promoted_primary=ds.promoted_primary,
        scale_patch=ds.scale_patch, cannot_become_ready=ds.cannot_become_ready,
    ),
}
assert set(KINDS) == set(WORKLOAD_KINDS)


def kind_of(release: Release) -> WorkloadKind:
    """The kind of the release's target; a kind not served here is a permanent error naming the field."""
    name = release.spec.target_ref.kind or DEPLOYMENT
    kind = KINDS.get(name)
    if kind is None:
        raise WorkloadError(
            f"spec.targetRef.kind: must be {' or '.join(sorted(KINDS))}, got {name!r}", temporary=False)
    return kind
