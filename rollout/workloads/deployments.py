"""`Workloads`: the thin I/O around the builders, through the official client's ApiClient.

The target is a Deployment or a DaemonSet (`kinds`): the same steps for both, each kind's own
objects and decisions (how it is scaled to zero, when it is ready) from its builders.

Each method reads what is there, asks a pure builder what it should be, and writes only the
difference, so every call is idempotent and a controller that dies halfway repeats it safely.
Reads are raw JSON (not the client's models) so fields this client version does not know survive
a copy from the target to the primary. Every call carries `_request_timeout`.

Deletion (`finalize`) with a release in flight (or failed), i.e. a target that differs from the
primary, keeps all traffic on the primary: it and the apex Service, still selecting it, are
released from ownership and keep serving the proven version. Otherwise it follows Flagger's
`revertOnDeletion`, always on: the target (the same version) is scaled back
up, and once it is ready the apex Service is pointed at it and released from the release's
ownership, so clients keep their Service name after the primary, `<svc>-primary` and
`<svc>-canary` are garbage-collected with the release. Until the target is ready the call raises
`NotReady` (the primary keeps serving meanwhile; retry). When the target cannot become ready
(its rollout exceeded `progressDeadlineSeconds`, e.g. a failed candidate) the primary is kept
instead: it and the apex, still selecting it, are released from ownership and keep serving.
A kept primary keeps the `-primary` copies of its ConfigMaps and Secrets too (released likewise).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rollout.api.annotations import SOURCE_PATH_ANNOTATION
from rollout.api.spec import Release
from rollout.core import Workload
from rollout.settings import Settings

from . import builders as b
from . import configs
from .autoscalers import Autoscalers, autoscaler_of
from .errors import NotReady, TargetMissing, WorkloadError
from .hashing import PRIMARY_SUFFIX, committed_at_of, newest_revision, pod_template, revision_of
from .kinds import KINDS, WorkloadKind, kind_of
from .knative import KnativeServices, is_knative

Json = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
log = logging.getLogger(__name__)


def workload_of(obj: Mapping[str, Any] | None, kind: WorkloadKind = KINDS["Deployment"],
                tracked: Mapping[str, str] | None = None) -> Workload:
    """What the planner sees of a Deployment or DaemonSet (or of a missing one); `tracked` holds the
    checksums of its tracked ConfigMaps and Secrets (`configs.label` -> checksum), part of its spec hash."""
    if obj is None:
        return Workload(exists=False, spec_hash=None, ready=False, revision=None)
    return Workload(
        exists=True,
        spec_hash=kind.spec_hash(obj, tracked),
        ready=kind.is_ready(obj),
        revision=revision_of(obj),
        committed_at=committed_at_of(obj),
        images=tuple(str(c.get("image")) for c in pod_template(obj).get("spec", {}).get("containers") or ()
                     if isinstance(c, dict) and c.get("image")),
    )


class Workloads:
    """The primary/canary workloads (Deployments, DaemonSets) and Services of releases, in one cluster."""

    def __init__(self, api: client.ApiClient, settings: Settings) -> None:
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.timeout = settings.api_timeout
        self.conflict_retries = settings.conflict_retries
        self.autoscalers = Autoscalers(api, settings)
        self.track_configs = settings.enable_config_tracking
        # A Knative Service target has Revisions, not a clone: its own ports (`knative`).
        self.knative = KnativeServices(api, settings)

    # -- reads ------------------------------------------------------------------------------------

    def _read(self, read: Callable[..., Any], name: str, namespace: str) -> Json | None:
        try:
            response = read(name, namespace, _preload_content=False, _request_timeout=self.timeout)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        data: Json = json.loads(response.data)
        return data

    def deployment(self, namespace: str, name: str) -> Json | None:
        return self._read(self.apps.read_namespaced_deployment, name, namespace)

    def daemonset(self, namespace: str, name: str) -> Json | None:
        return self._read(self.apps.read_namespaced_daemon_set, name, namespace)

    def _call(self, kind: WorkloadKind, verb: str) -> Callable[..., Any]:
        """AppsV1Api's `<verb>_namespaced_<kind>` (read, create, replace, patch), named in full so
        the RBAC table's test sees every call."""
        calls: dict[str, dict[str, Callable[..., Any]]] = {
            "deployment": {"read": self.apps.read_namespaced_deployment,
                           "create": self.apps.create_namespaced_deployment,
                           "replace": self.apps.replace_namespaced_deployment,
                           "patch": self.apps.patch_namespaced_deployment},
            "daemon_set": {"read": self.apps.read_namespaced_daemon_set,
                           "create": self.apps.create_namespaced_daemon_set,
                           "replace": self.apps.replace_namespaced_daemon_set,
                           "patch": self.apps.patch_namespaced_daemon_set},
        }
        return calls[kind.api_suffix][verb]

    def _workload(self, kind: WorkloadKind, namespace: str, name: str) -> Json | None:
        return self._read(self._call(kind, "read"), name, namespace)

    def service(self, namespace: str, name: str) -> Json | None:
        return self._read(self.core.read_namespaced_service, name, namespace)

    def _target(self, release: Release) -> Json:
        namespace, name = release.metadata.namespace, b.target_name(release)
        kind = kind_of(release)
        target = self._workload(kind, namespace, name)
        if target is None:
            raise TargetMissing(namespace, name, kind.kind)
        kind.check_target(target)
        return target

    # -- the ports the engine calls --------------------------------------------------------------

    def observe(self, release: Release) -> tuple[Workload, Workload]:
        """(target, primary) as the planner sees them; a missing one has `exists=False`. The tracked
        ConfigMaps and Secrets are read each time, so a change to one is seen at the next tick."""
        if is_knative(release):
            return self.knative.observe(release)
        namespace, kind = release.metadata.namespace, kind_of(release)
        target = self._workload(kind, namespace, b.target_name(release))
        primary = self._workload(kind, namespace, b.primary_name(release))
        return self._seen_target(release, target), self._seen_primary(release, primary)

    def routes(self, release: Release) -> dict[str, str]:
        """What each arm's traffic is labelled with where that is not the workload's name: a Knative
        Service's Revisions (`{"canary": ..., "primary": ...}`); empty for Deployments and DaemonSets."""
        return self.knative.routes(release) if is_knative(release) else {}

    def initialize(self, release: Release) -> None:
        """Create `<t>-primary` (if missing), with copies of the tracked configs, and the Services;
        an existing primary is left as it is (promotion changes it, not initialization)."""
        if is_knative(release):
            return self.knative.initialize(release)
        target = self._target(release)
        namespace, kind = release.metadata.namespace, kind_of(release)
        if self._workload(kind, namespace, b.primary_name(release)) is None:
            tracked = self.tracked_configs(release, target)
            self._copy_configs(release, tracked)
            self._create(self._call(kind, "create"), namespace, kind.build_primary(target, release, tracked))
            log.info("created %s %s/%s", kind.kind, namespace, b.primary_name(release))
        self.autoscalers.reconcile_primary(release, init=True)
        self._reconcile_services(release, target)

    def scale_target(self, release: Release, up: bool) -> None:
        """Scale the target to the replicas it should run (up), or to zero, remembering its count (a
        DaemonSet: remove or add the scale-to-zero node selector).

        Its autoscaler is resumed before scaling up and paused before scaling to zero; a run also
        creates the primary's autoscaler when it is missing (an autoscalerRef added to a release
        that was initialized without one)."""
        if is_knative(release):
            return self.knative.scale_target(release, up)
        target = self._target(release)
        kind = kind_of(release)
        if up:
            self.autoscalers.reconcile_primary(release, init=True)
        self.autoscalers.pause_target(release, not up)
        primary = self._workload(kind, release.metadata.namespace, b.primary_name(release)) if up else None
        autoscaled = self._autoscaled(release) if up else None
        patch = kind.scale_patch(target, primary, up, autoscaled)
        if patch is not None:
            self._patch(kind, release.metadata.namespace, b.target_name(release), patch)

    def promote(self, release: Release) -> None:
        """Copy the target's tracked configs to their `-primary` copies, then its pod template (using
        the copies), spec fields and revision annotation into the primary, and the canary's
        autoscaler into the primary's."""
        if is_knative(release):
            return self.knative.promote(release)
        self._promote_deployment(release)
        self.autoscalers.reconcile_primary(release, init=False)

    def _promote_deployment(self, release: Release) -> None:
        namespace, name = release.metadata.namespace, b.primary_name(release)
        kind = kind_of(release)
        for _ in range(self.conflict_retries):
            target = self._target(release)
            tracked = self.tracked_configs(release, target)
            self._copy_configs(release, tracked)
            primary = self._workload(kind, namespace, name)
            if primary is None:
                self._create(self._call(kind, "create"), namespace, kind.build_primary(target, release, tracked))
                return
            new = kind.promoted_primary(primary, target, tracked, replicas=autoscaler_of(release) is None)
            if new is None:
                return
            if self._replace(self._call(kind, "replace"), namespace, name, new):
                log.info("promoted %s/%s to %s", namespace, b.target_name(release), kind.spec_hash(target, None))
                return
        raise WorkloadError(f"{kind.kind} {namespace}/{name} kept changing while promoting; will retry")

    def finalize(self, release: Release) -> None:
        """The release is being deleted: give the workload back as it was before the release (see
        the module docstring). Raises `NotReady` while the target is scaling up; retry."""
        if is_knative(release):
            return self.knative.finalize(release)
        namespace, name = release.metadata.namespace, b.target_name(release)
        kind = kind_of(release)
        target = self._workload(kind, namespace, name)
        if target is None:
            log.warning("finalize %s/%s: target %s %s not found, nothing to give back",
                        namespace, release.metadata.name, kind.kind, name)
            return
        self.autoscalers.resume_target(release)
        primary = self._workload(kind, namespace, b.primary_name(release))
        apex_name = b.service_names(release)[0]
        if primary is not None and self._differ(release, target, primary):
            # A release is in flight (or failed): the target holds an unproven version, so the
            # primary keeps serving all traffic, no longer owned by the release.
            log.warning("finalize %s/%s: %s differs from the primary; keeping %s serving, no longer owned",
                        namespace, release.metadata.name, name, b.primary_name(release))
            self._keep_primary(release, primary)
            self.autoscalers.orphan_primary(release)
            self._release_apex(release, target, apex_name, keep_primary=True)
            return
        patch = kind.scale_patch(target, primary, True, self._autoscaled(release))
        if patch is not None:
            self._patch(kind, namespace, name, patch)
            target = self._target(release)
        if kind.is_ready(target):
            self._release_apex(release, target, apex_name, keep_primary=False)
            return
        if kind.cannot_become_ready(target) and primary is not None:
            log.warning("finalize %s/%s: %s cannot become ready; keeping %s serving, no longer owned",
                        namespace, release.metadata.name, name, b.primary_name(release))
            self._keep_primary(release, primary)
            self.autoscalers.orphan_primary(release)
            self._release_apex(release, target, apex_name, keep_primary=True)
            return
        raise NotReady(f"waiting for {namespace}/{name} to be ready before handing traffic back to it")

    # -- tracked configs ------------------------------------------------------------------------

    def _config_calls(self, kind: str) -> tuple[Callable[..., Any], ...]:
        """(read, create, replace, delete) of Secrets or ConfigMaps."""
        core = self.core
        if kind == configs.SECRET:
            return (core.read_namespaced_secret, core.create_namespaced_secret, core.replace_namespaced_secret,
                    core.delete_namespaced_secret)
        return (core.read_namespaced_config_map, core.create_namespaced_config_map,
                core.replace_namespaced_config_map, core.delete_namespaced_config_map)

    def _config(self, kind: str, namespace: str, name: str) -> Json | None:
        return self._read(self._config_calls(kind)[0], name, namespace)

    def tracked_configs(self, release: Release, target: Mapping[str, Any], *,
                        strict: bool = True) -> dict[configs.Key, Json]:
        """The ConfigMaps and Secrets the target's pod template references that are tracked, as
        they are now; empty when config tracking is off. A mandatory reference to a missing object
        is an error naming it (the target's pods cannot start either), unless not `strict`."""
        if not self.track_configs:
            return {}
        namespace = release.metadata.namespace
        found: dict[configs.Key, Json] = {}
        for key, ref in configs.referenced(pod_template(target)).items():
            obj = self._config(ref.kind, namespace, ref.name)
            if obj is None:
                if ref.optional or not strict:
                    continue
                raise WorkloadError(
                    f"{configs.label(key)} in {namespace}, named by {ref.where} of {b.target_name(release)}, "
                    "not found; create it, or mark the reference optional")
            if configs.is_tracked(ref.kind, obj):
                found[key] = obj
        return found

    def tracked_documents(self, release: Release) -> list[tuple[str, str, str | None]]:
        """(kind, name, source-path annotation) of each tracked ConfigMap and Secret the target uses
        now: what the Git revert writer reverts with the workload."""
        if is_knative(release):
            return []  # Knative Revisions hold their configuration references as they are (none are copied)
        target = self._workload(kind_of(release), release.metadata.namespace, b.target_name(release))
        if target is None:
            return []
        return [("Secret" if kind == configs.SECRET else "ConfigMap", name,
                 ((obj.get("metadata") or {}).get("annotations") or {}).get(SOURCE_PATH_ANNOTATION))
                for (kind, name), obj in self.tracked_configs(release, target, strict=False).items()]

    def _primary_copies(self, release: Release, primary: Mapping[str, Any]) -> dict[configs.Key, Json]:
        """The copies the primary's template uses (by their own names): `-primary` objects the release owns."""
        if not self.track_configs:
            return {}
        found: dict[configs.Key, Json] = {}
        for key, ref in configs.referenced(pod_template(primary)).items():
            if not ref.name.endswith(PRIMARY_SUFFIX):
                continue
            obj = self._config(ref.kind, release.metadata.namespace, ref.name)
            if obj is not None and b.owned_by(obj, release):
                found[key] = obj
        return found

    def _seen_target(self, release: Release, target: Json | None, *, strict: bool = True) -> Workload:
        if target is None:
            return workload_of(None)
        tracked = self.tracked_configs(release, target, strict=strict)
        seen = workload_of(target, kind_of(release),
                           {configs.label(k): configs.checksum(k[0], o) for k, o in tracked.items()})
        revision, committed_at = newest_revision([target, *tracked.values()])
        return replace(seen, revision=revision, committed_at=committed_at) if revision else seen

    def _seen_primary(self, release: Release, primary: Json | None) -> Workload:
        """The primary with its copies' names taken back to the originals and the copies' content
        hashed, so that it hashes equal to the target it was promoted from."""
        if primary is None:
            return workload_of(None)
        copies = self._primary_copies(release, primary)
        if not copies:
            return workload_of(primary, kind_of(release))
        spec = dict(primary.get("spec") or {})
        spec["template"] = configs.from_copies(pod_template(primary), copies)
        sums = {configs.label((kind, name[: -len(PRIMARY_SUFFIX)])): configs.checksum(kind, obj)
                for (kind, name), obj in copies.items()}
        return workload_of({**primary, "spec": spec}, kind_of(release), sums)

    def _differ(self, release: Release, target: Json, primary: Json) -> bool:
        # Deletion must complete: a missing ConfigMap makes the target differ, it does not block.
        seen = self._seen_target(release, target, strict=False)
        return seen.spec_hash != self._seen_primary(release, primary).spec_hash

    def _copy_configs(self, release: Release, tracked: Mapping[configs.Key, Json]) -> None:
        """Create or update `<n>-primary` for each tracked config, with its current content."""
        namespace = release.metadata.namespace
        owner = b.owner_reference(release)
        for (kind, name), obj in tracked.items():
            desired = configs.build_copy(kind, obj, owner)
            desired["metadata"]["namespace"] = namespace
            copy = configs.copy_name(name)
            _, create, replace, delete = self._config_calls(kind)
            for _ in range(self.conflict_retries):
                existing = self._config(kind, namespace, copy)
                if existing is None:
                    if self._create(create, namespace, desired):
                        log.info("created %s %s/%s", desired["kind"], namespace, copy)
                        break
                    continue
                if configs.needs_recreate(existing, desired):
                    delete(copy, namespace, _request_timeout=self.timeout, _preload_content=False)
                    continue
                new = configs.updated_copy(existing, desired)
                if new is None:
                    break
                if self._replace(replace, namespace, copy, new):
                    log.info("synced %s %s/%s", desired["kind"], namespace, copy)
                    break
            else:
                raise WorkloadError(f"{configs.label((kind, copy))} in {namespace} kept changing; will retry")

    def _keep_primary(self, release: Release, primary: Json) -> None:
        """Release the primary, and the copies it uses, from the release's ownership."""
        namespace = release.metadata.namespace
        workload = kind_of(release)
        self._orphan(self._call(workload, "read"), self._call(workload, "replace"),
                     namespace, b.primary_name(release), release)
        for kind, name in self._primary_copies(release, primary):
            read, _, replace, _ = self._config_calls(kind)
            self._orphan(read, replace, namespace, name, release)

    # -- helpers ----------------------------------------------------------------------------------

    def _autoscaled(self, release: Release) -> int | None:
        try:
            return self.autoscalers.scale_up_replicas(release)
        except WorkloadError:  # its autoscaler is gone: scale up as without one
            return None

    def _reconcile_services(self, release: Release, target: Json) -> None:
        namespace = release.metadata.namespace
        for role, desired in b.desired_services(release, target):
            name = desired["metadata"]["name"]
            for _ in range(self.conflict_retries):
                existing = self.service(namespace, name)
                if existing is None:
                    if self._create(self.core.create_namespaced_service, namespace, desired):
                        log.info("created Service %s/%s", namespace, name)
                        break
                    continue
                new = b.reconciled_service(existing, desired, role, release, target)
                if new is None or self._replace(self.core.replace_namespaced_service, namespace, name, new):
                    break
            else:
                raise WorkloadError(f"Service {namespace}/{name} kept changing; will retry")

    def _release_apex(self, release: Release, target: Json, name: str, *, keep_primary: bool) -> None:
        namespace = release.metadata.namespace
        for _ in range(self.conflict_retries):
            apex = self.service(namespace, name)
            if apex is None:
                return
            new = b.released_apex(apex, release, target, keep_primary=keep_primary)
            if new is None or self._replace(self.core.replace_namespaced_service, namespace, name, new):
                return
        raise WorkloadError(f"Service {namespace}/{name} kept changing; will retry")

    def _orphan(self, read: Callable[..., Any], replace: Callable[..., Any], namespace: str, name: str,
                release: Release) -> None:
        for _ in range(self.conflict_retries):
            obj = self._read(read, name, namespace)
            if obj is None:
                return
            refs = (obj.get("metadata") or {}).get("ownerReferences") or []
            kept = [r for r in refs if not b.refers_to(r, release)]
            if kept == refs:
                return
            obj["metadata"]["ownerReferences"] = kept
            obj.pop("status", None)
            if self._replace(replace, namespace, name, obj):
                return
        raise WorkloadError(f"{namespace}/{name} kept changing; will retry")

    def _create(self, create: Callable[..., Any], namespace: str, body: Json) -> bool:
        """Create; False when it already exists (someone was quicker: read again)."""
        try:
            create(namespace, body, _request_timeout=self.timeout, _preload_content=False)
        except ApiException as e:
            if e.status == 409:
                return False
            raise
        return True

    def _replace(self, replace: Callable[..., Any], namespace: str, name: str, body: Json) -> bool:
        """Replace (the body carries the resourceVersion it was read at); False on a conflict."""
        try:
            replace(name, namespace, body, _request_timeout=self.timeout, _preload_content=False)
        except ApiException as e:
            if e.status == 409:
                return False
            raise
        return True

    def _patch(self, kind: WorkloadKind, namespace: str, name: str, patch: Json) -> None:
        self._call(kind, "patch")(
            name, namespace, patch, _content_type=MERGE_PATCH, _request_timeout=self.timeout,
            _preload_content=False,
        )
