"""The autoscaler of a release's target (`spec.autoscalerRef`), cloned for the primary, as Flagger does.

Flagger's model (`pkg/canary/hpa_reconciler.go`, `scaled_object_reconciler.go`): the referenced
HorizontalPodAutoscaler or KEDA ScaledObject scales the target (the canary); the primary gets its
own, `<ref>-primary`, a clone whose `scaleTargetRef` names `<target>-primary`, with the bounds of
`primaryScalerReplicas` when given and, for KEDA, each trigger's query rewritten for the primary
(`primaryScalerQueries` by trigger name, or else the target's name replaced by `<target>-primary`).
The clone is created when the primary is, and its spec follows the canary's autoscaler on every
promotion (only then: a change to the autoscaler between runs reaches the primary with the next
promotion, as in Flagger).

While the target is scaled to zero its autoscaler must not bring it back: a ScaledObject gets
KEDA's `autoscaling.keda.sh/paused-replicas: "0"` annotation, removed when a run scales the target
up and when the release is deleted; an HPA needs nothing (Kubernetes does not autoscale a target
whose replicas are 0). Scaling up for a run starts at the autoscaler's minimum (at least 1), and a
promotion leaves the primary's replica count to its autoscaler.

The builders here are pure (plain API JSON in, JSON out); `Autoscalers` reads, asks them, writes.
Both kinds are reached through the custom-objects client, which addresses any group's resources.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rollout.api.kinds import (
    HPA,
    HPA_GROUP,
    HPA_PLURAL,
    HPA_VERSION,
    KEDA_GROUP,
    KEDA_PLURAL,
    KEDA_VERSION,
    SCALED_OBJECT,
)
from rollout.api.spec import AutoscalerRef, CanarySpec, Release
from rollout.settings import Settings

from .builders import owner_reference, primary_name, refers_to
from .errors import WorkloadError
from .hashing import PRIMARY_SUFFIX, is_own_annotation

Json = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
# KEDA holds a ScaledObject's target at this many replicas while the annotation is there.
PAUSED_REPLICAS_ANNOTATION = "autoscaling.keda.sh/paused-replicas"
PAUSED_ANNOTATION = "autoscaling.keda.sh/paused"
# Metadata that belongs to the object it is on, never copied to the primary's autoscaler: Flux's
# ownership labels (Flagger's `toolkit.fluxcd.io` filter), kubectl's record, KEDA's pause.
_NOT_COPIED = ("kubectl.kubernetes.io/last-applied-configuration", PAUSED_REPLICAS_ANNOTATION, PAUSED_ANNOTATION)
_TOOLKIT_MARKER = "toolkit.fluxcd.io"
# The HPA spec fields Flagger's clone carries (hpa_reconciler.go), and the ScaledObject's.
_HPA_FIELDS = ("minReplicas", "maxReplicas", "metrics", "behavior")
_SO_FIELDS = ("pollingInterval", "cooldownPeriod", "minReplicaCount", "maxReplicaCount", "advanced", "triggers",
              "fallback", "idleReplicaCount")
# Where each kind is served: (group, version, plural).
_WHERE = {HPA: (HPA_GROUP, HPA_VERSION, HPA_PLURAL), SCALED_OBJECT: (KEDA_GROUP, KEDA_VERSION, KEDA_PLURAL)}
# Flagger's defaults: an HPA without minReplicas has 1; KEDA's minReplicaCount defaults to 0.
_DEFAULT_MIN = {HPA: 1, SCALED_OBJECT: 0}

log = logging.getLogger(__name__)


def autoscaler_of(release: Release) -> AutoscalerRef | None:
    return release.spec.autoscaler_ref if isinstance(release.spec, CanarySpec) else None


# -- pure builders ----------------------------------------------------------------------------


def primary_scaler_name(ref: AutoscalerRef) -> str:
    return f"{ref.name}{PRIMARY_SUFFIX}"


def primary_query(query: str, target: str) -> str:
    """A trigger's query for the primary: every `<target>` and `<target>-canary` becomes
    `<target>-primary` (Flagger's guess), and a `<target>-primary` already there stays as it is,
    as Flagger's documentation shows."""
    primary = f"{target}{PRIMARY_SUFFIX}"
    return re.sub(re.escape(target) + r"(?:-canary|-primary)?", lambda _: primary, query)


def _copied(meta: Mapping[str, Any] | None) -> dict[str, str]:
    return {k: v for k, v in (meta or {}).items()
            if _TOOLKIT_MARKER not in k and k not in _NOT_COPIED and not is_own_annotation(k)}


def _scale_target(ref: Mapping[str, Any] | None, release: Release, extra: tuple[str, ...] = ()) -> Json:
    ref = ref or {}
    out: Json = {"apiVersion": ref.get("apiVersion") or "apps/v1", "kind": ref.get("kind") or "Deployment",
                 "name": primary_name(release)}
    out.update({k: ref[k] for k in extra if ref.get(k) is not None})
    return out


def primary_hpa_spec(hpa: Mapping[str, Any], release: Release, ref: AutoscalerRef) -> Json:
    """The primary HPA's spec: the canary's metrics, behavior and bounds (or primaryScalerReplicas')."""
    spec = hpa.get("spec") or {}
    out: Json = {"scaleTargetRef": _scale_target(spec.get("scaleTargetRef"), release)}
    out.update({k: copy.deepcopy(spec[k]) for k in _HPA_FIELDS if spec.get(k) is not None})
    if ref.primary_min_replicas is not None:
        out["minReplicas"] = ref.primary_min_replicas
    if ref.primary_max_replicas is not None:
        out["maxReplicas"] = ref.primary_max_replicas
    return out


def primary_scaled_object_spec(so: Mapping[str, Any], release: Release, ref: AutoscalerRef) -> Json:
    """The primary ScaledObject's spec: the canary's, with its triggers' queries for the primary, its
    own HPA name (`<name>-primary` when the canary's names one) and primaryScalerReplicas' bounds."""
    spec = so.get("spec") or {}
    out: Json = {"scaleTargetRef": _scale_target(spec.get("scaleTargetRef"), release, ("envSourceContainerName",))}
    out.update({k: copy.deepcopy(spec[k]) for k in _SO_FIELDS if spec.get(k) is not None})
    queries = dict(ref.primary_queries)
    target = release.spec.target_ref.name
    for trigger in out.get("triggers") or []:
        metadata = trigger.get("metadata")
        if not isinstance(metadata, dict):
            continue
        if queries:
            # Flagger: with primaryScalerQueries, only the named triggers' queries change.
            if trigger.get("name") in queries:
                metadata["query"] = queries[trigger["name"]]
        elif isinstance(metadata.get("query"), str):
            metadata["query"] = primary_query(metadata["query"], target)
    hpa_config = (out.get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {}
    if hpa_config.get("name"):
        hpa_config["name"] = f"{hpa_config['name']}{PRIMARY_SUFFIX}"
    if ref.primary_min_replicas is not None:
        out["minReplicaCount"] = ref.primary_min_replicas
    if ref.primary_max_replicas is not None:
        out["maxReplicaCount"] = ref.primary_max_replicas
    return out


def build_primary_scaler(scaler: Mapping[str, Any], release: Release, ref: AutoscalerRef) -> Json:
    """`<ref>-primary`: the clone of the canary's autoscaler that scales `<target>-primary`."""
    smeta = scaler.get("metadata") or {}
    meta: Json = {"name": primary_scaler_name(ref), "namespace": release.metadata.namespace,
                  "labels": _copied(smeta.get("labels"))}
    if ref.kind == SCALED_OBJECT:  # Flagger carries a ScaledObject's annotations over (KEDA reads some)
        meta["annotations"] = _copied(smeta.get("annotations"))
    owner = owner_reference(release)
    if owner is not None:
        meta["ownerReferences"] = [owner]
    build = primary_hpa_spec if ref.kind == HPA else primary_scaled_object_spec
    group, version, _ = _WHERE[ref.kind]
    return {"apiVersion": f"{group}/{version}", "kind": ref.kind, "metadata": meta,
            "spec": build(scaler, release, ref)}


def updated_primary_scaler(existing: Mapping[str, Any], desired: Mapping[str, Any]) -> Json | None:
    """The primary's autoscaler with the desired spec (owner kept); None when it has it already."""
    if existing.get("spec") == desired.get("spec"):
        return None
    new: Json = copy.deepcopy(dict(existing))
    new.pop("status", None)
    new["spec"] = copy.deepcopy(dict(desired["spec"]))
    return new


def paused_patch(scaler: Mapping[str, Any], paused: bool) -> Json | None:
    """The merge patch that pauses a ScaledObject at zero replicas (or resumes it); None when it is so."""
    annotations = (scaler.get("metadata") or {}).get("annotations") or {}
    current = annotations.get(PAUSED_REPLICAS_ANNOTATION)
    if paused:
        return None if current == "0" else {"metadata": {"annotations": {PAUSED_REPLICAS_ANNOTATION: "0"}}}
    return None if current is None else {"metadata": {"annotations": {PAUSED_REPLICAS_ANNOTATION: None}}}


def min_replicas(scaler: Mapping[str, Any], kind: str) -> int:
    """The replicas a run scales the target up to (Flagger's ScaleFromZero): the autoscaler's
    minimum when it is above 1, else 1."""
    spec = scaler.get("spec") or {}
    value = spec.get("minReplicas" if kind == HPA else "minReplicaCount")
    low = _DEFAULT_MIN[kind] if value is None else int(value)
    return max(low, 1)


# -- I/O ----------------------------------------------------------------------------------------


class Autoscalers:
    """The canary's and the primary's autoscalers of releases, in one cluster."""

    def __init__(self, api: client.ApiClient, settings: Settings) -> None:
        self.objects = client.CustomObjectsApi(api)
        self.timeout = settings.api_timeout
        self.conflict_retries = settings.conflict_retries

    def _read(self, kind: str, namespace: str, name: str) -> Json | None:
        group, version, plural = _WHERE[kind]
        response: Any
        try:
            response = self.objects.get_namespaced_custom_object(
                group, version, namespace, plural, name, _request_timeout=self.timeout, _preload_content=False)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        data: Json = json.loads(response.data)
        return data

    def _referenced(self, release: Release, ref: AutoscalerRef) -> Json:
        namespace = release.metadata.namespace
        scaler = self._read(ref.kind, namespace, ref.name)
        if scaler is None:
            raise WorkloadError(
                f"{ref.kind} {namespace}/{ref.name} named by spec.autoscalerRef not found; create it or "
                "remove spec.autoscalerRef", temporary=False)
        return scaler

    def reconcile_primary(self, release: Release, *, init: bool) -> None:
        """Create `<ref>-primary` when missing; unless `init`, bring its spec in line with the canary's
        autoscaler (promotion)."""
        ref = autoscaler_of(release)
        if ref is None:
            return
        namespace, name = release.metadata.namespace, primary_scaler_name(ref)
        group, version, plural = _WHERE[ref.kind]
        for _ in range(self.conflict_retries):
            desired = build_primary_scaler(self._referenced(release, ref), release, ref)
            existing = self._read(ref.kind, namespace, name)
            try:
                if existing is None:
                    self.objects.create_namespaced_custom_object(
                        group, version, namespace, plural, desired, _request_timeout=self.timeout)
                    log.info("created %s %s/%s", ref.kind, namespace, name)
                    return
                new = None if init else updated_primary_scaler(existing, desired)
                if new is None:
                    return
                self.objects.replace_namespaced_custom_object(
                    group, version, namespace, plural, name, new, _request_timeout=self.timeout)
                log.info("updated %s %s/%s from %s", ref.kind, namespace, name, ref.name)
                return
            except ApiException as e:
                if e.status != 409:
                    raise
        raise WorkloadError(f"{ref.kind} {namespace}/{name} kept changing; will retry")

    def pause_target(self, release: Release, paused: bool) -> None:
        """Pause (or resume) the canary's ScaledObject; an HPA needs nothing (see the module docstring).

        A missing ScaledObject stops a resume (the run cannot be autoscaled as asked) but not a
        pause: nothing is left to scale the target back up, and a rollback must scale it down."""
        ref = autoscaler_of(release)
        if ref is None or ref.kind != SCALED_OBJECT:
            return
        if paused:
            scaler = self._read(ref.kind, release.metadata.namespace, ref.name)
            if scaler is None:
                log.warning("%s %s/%s named by spec.autoscalerRef not found; nothing to pause", ref.kind,
                            release.metadata.namespace, ref.name)
                return
        else:
            scaler = self._referenced(release, ref)
        patch = paused_patch(scaler, paused)
        if patch is not None:
            self.objects.patch_namespaced_custom_object(
                KEDA_GROUP, KEDA_VERSION, release.metadata.namespace, KEDA_PLURAL, ref.name, patch,
                _request_timeout=self.timeout, _content_type=MERGE_PATCH)

    def scale_up_replicas(self, release: Release) -> int | None:
        """How many replicas a run starts the target at, when an autoscaler decides (else None)."""
        ref = autoscaler_of(release)
        if ref is None:
            return None
        return min_replicas(self._referenced(release, ref), ref.kind)

    def resume_target(self, release: Release) -> None:
        """The release is being deleted: the canary's autoscaler resumes (Flagger's finalizer), so the
        target is not held at zero; a missing one is only logged (the deletion goes on)."""
        try:
            self.pause_target(release, False)
        except WorkloadError as e:
            log.warning("finalize %s/%s: %s", release.metadata.namespace, release.metadata.name, e)

    def orphan_primary(self, release: Release) -> None:
        """The primary outlives the release: its autoscaler stays with it, no longer owned."""
        ref = autoscaler_of(release)
        if ref is not None:
            self._orphan(release, ref)

    def _orphan(self, release: Release, ref: AutoscalerRef) -> None:
        namespace, name = release.metadata.namespace, primary_scaler_name(ref)
        group, version, plural = _WHERE[ref.kind]
        for _ in range(self.conflict_retries):
            obj = self._read(ref.kind, namespace, name)
            if obj is None:
                return
            refs = (obj.get("metadata") or {}).get("ownerReferences") or []
            kept = [r for r in refs if not refers_to(r, release)]
            if kept == refs:
                return
            obj["metadata"]["ownerReferences"] = kept
            obj.pop("status", None)
            try:
                self.objects.replace_namespaced_custom_object(
                    group, version, namespace, plural, name, obj, _request_timeout=self.timeout)
                return
            except ApiException as e:
                if e.status != 409:
                    raise
        raise WorkloadError(f"{ref.kind} {namespace}/{name} kept changing; will retry")
