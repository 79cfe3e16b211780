"""Reconcile one GitSource: fetch, render, dry-run, apply, heal drift, prune, and say so in status.

A new revision is applied whole or not at all: it is rendered and dry-run applied first, and any
file that does not parse or any object the API rejects stalls that revision (Stalled=True with
the file and the error) while the cluster keeps the last applied one. Between revisions, objects
changed by hand are re-applied (selfHeal) and counted; objects that left Git are deleted, but only
those this GitSource applied (prune). The target replicas of a release are left to the release.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from rollout.api.errors import ValidationError
from rollout.api.kinds import GIT_SOURCE, GROUP, PLURALS, RELEASE_KINDS, VERSION
from rollout.api.parse import parse_gitsource
from rollout.api.spec import GitSource
from rollout.api.status import format_time, parse_time
from rollout.settings import Settings, listen_address

from . import telemetry
from .apply import Applier, ApplyError
from .credentials import SecretError, read_credentials
from .decryption import decryptor
from .desired import (
    desired_object,
    drifted,
    inventory_entry,
    key_of,
    owned_by,
    release_targets,
    to_prune,
)
from .health import Unready, summary, unready
from .render import Manifest, RenderError, render
from .repo import Clone, GitError, clone_folder

PLURAL = PLURALS[GIT_SOURCE]
# How often a GitSource that waits (spec.wait) looks at its objects again, at most.
WAIT_POLL = 2.0
# How often a GitSource waiting on a dependency looks again (a dependency that turns Ready wakes it sooner).
DEPENDENCY_POLL = 10.0
# Applied first, so the rest of a revision can use them: namespaces and the kinds CRDs define.
FIRST_KINDS = ("Namespace", "CustomResourceDefinition")

log = logging.getLogger(__name__)

Emit = Callable[[Mapping[str, Any], str, str, bool], None]
# (GitSource, reason, message): tells the GitSource's `spec.alerts` that its sync failed.
Alert = Callable[[Mapping[str, Any], str, str], None]


@dataclass
class SyncResult:
    """What one look at a GitSource found and did; becomes its status and Events."""

    revision: str | None = None
    applied: str | None = None
    inventory: list[dict[str, str]] | None = None
    corrected: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    ready: tuple[str, str, str] = ("Unknown", "Progressing", "")
    stalled: tuple[str, str, str] | None = None
    # spec.wait: the Healthy condition, when the new revision was applied, and when to look again.
    healthy: tuple[str, str, str] | None = None
    # spec.webhook: whether this operator serves it (the Webhook condition).
    webhook: tuple[str, str, str] | None = None
    applied_at: str | None = None
    recheck: timedelta | None = None


class SourceReconciler:
    def __init__(
        self,
        api: client.ApiClient,
        cache: Path,
        emit: Emit,
        *,
        settings: Settings,
        kubectl: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        alert: Alert | None = None,
        on_error: Callable[[], None] = lambda: None,
    ) -> None:
        """`on_error()` is told of each sync that ended on an error it will retry (for the metrics)."""
        self.api = api
        self.on_error = on_error
        self.objects = client.CustomObjectsApi(api)
        self.settings = settings
        self.applier = Applier(api, settings.apply_timeout)
        self.timeout = settings.api_timeout
        # A fetch that failed is tried again sooner than the interval (the remote may be back).
        self.retry = timedelta(seconds=settings.git_retry)
        self.cache = cache
        self.emit = emit
        self.alert = alert
        self.kubectl = kubectl
        self.clock = clock
        self._wake: dict[tuple[str, str], threading.Event] = {}
        # Who names each GitSource in spec.dependsOn (a cache, rebuilt as each source is read): a
        # source that turns Ready wakes them.
        self._dependents: dict[tuple[str, str], set[tuple[str, str]]] = {}

    # -- being asked to look now ------------------------------------------------------------------

    def wake_event(self, namespace: str, name: str) -> threading.Event:
        return self._wake.setdefault((namespace, name), threading.Event())

    def request(self, namespace: str, name: str) -> None:
        """Sync this source at once (the revert writer asks after pushing)."""
        self.wake_event(namespace, name).set()

    # -- one look -----------------------------------------------------------------------------------

    def reconcile(self, namespace: str, name: str) -> timedelta | None:
        """Sync one GitSource; returns when to look again, or None when it is gone."""
        asked = self.wake_event(namespace, name).is_set()  # a push webhook, a revert or a dependency
        self.wake_event(namespace, name).clear()
        try:
            obj = cast(dict[str, Any], self.objects.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, _request_timeout=self.timeout))
        except ApiException as e:
            if e.status == 404:
                telemetry.gone(namespace, name)
                return None
            log.warning("reading GitSource %s/%s failed: %s", namespace, name, e.reason)
            self.on_error()
            return self.retry
        except (HTTPError, OSError) as e:
            log.warning("reading GitSource %s/%s failed: %s", namespace, name, e)
            self.on_error()
            return self.retry
        if obj.get("metadata", {}).get("deletionTimestamp"):
            telemetry.gone(namespace, name)
            return None
        try:
            source = parse_gitsource(obj)
        except ValidationError as e:
            message = "; ".join(str(x) for x in e.errors)
            self._write(obj, SyncResult(ready=("False", "InvalidSpec", message),
                                        stalled=("True", "InvalidSpec", message)))
            telemetry.synced(namespace, name, ready=False, reason="InvalidSpec", applied=None)
            return timedelta(seconds=30)
        interval = timedelta(seconds=source.spec.interval)
        self._remember_dependencies(namespace, name, source)
        if source.spec.suspend:
            self._write(obj, SyncResult(ready=("Unknown", "Suspended", "spec.suspend is true")))
            telemetry.synced(namespace, name, ready=False, reason="Suspended", applied=None)
            return interval
        try:
            result = self.health_only(obj, source) if not asked else None
            if result is None:
                result = self.sync(obj, source)
        except (ApiException, HTTPError, OSError) as e:
            log.warning("sync of GitSource %s/%s failed, retrying: %s", namespace, name, e)
            self.on_error()
            return self.retry
        result.webhook = self._webhook_condition(source)
        self._write(obj, result)
        state, reason, _ = result.ready
        telemetry.synced(namespace, name, ready=state == "True", reason=reason, applied=result.applied,
                         corrected=len(result.corrected), pruned=len(result.pruned))
        before = obj.get("status") or {}
        was_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in before.get("conditions") or [])
        if state == "True" and (not was_ready or result.applied != before.get("lastAppliedRevision")):
            self._wake_dependents(namespace, name)
        if reason in ("FetchFailed", "ApplyFailed"):
            self.on_error()
            return self.retry
        if result.recheck is not None:
            return min(result.recheck, interval)
        return interval

    def sync(self, obj: Mapping[str, Any], source: GitSource) -> SyncResult:
        status = obj.get("status") or {}
        meta = source.metadata
        spec = source.spec
        ident = f"{meta.namespace}/{meta.name}"
        if spec.depends_on and (waiting := self._dependencies_waiting(source)):
            message = "waiting for " + "; ".join(waiting)
            # Unknown, not False: waiting is not failing (no Warning, no alert).
            return SyncResult(revision=status.get("revision"), ready=("Unknown", "DependencyNotReady", message),
                              recheck=timedelta(seconds=DEPENDENCY_POLL))
        try:
            creds = (read_credentials(self.api, meta.namespace, spec.secret_ref, timeout=self.timeout)
                     if spec.secret_ref else None)
            decrypt = decryptor(self.api, meta.namespace, spec.decryption, timeout=self.timeout)
        except SecretError as e:
            return SyncResult(ready=("False", "SecretError", str(e)), stalled=("True", "SecretError", str(e)))
        clone = Clone(spec.url, spec.branch, clone_folder(self.cache, "sync", spec.url, spec.branch), creds,
                      shallow=True, connect_timeout=self.settings.git_connect_timeout)
        try:
            with clone.opened():
                revision = clone.fetch()
                committed_at = self._commit_time(clone, revision)
                root = clone.checkout(revision)
                manifests = render(root, spec.path, timeout=self.settings.kustomize_timeout, kubectl=self.kubectl,
                                   decrypt=decrypt)
        except GitError as e:
            return SyncResult(revision=status.get("revision"), ready=("False", "FetchFailed", str(e)))
        except RenderError as e:
            return self._stalled(revision, e.reason, f"revision {revision[:12]}: {e}")
        new_revision = revision != status.get("lastAppliedRevision")
        try:
            wanted = self._desired(manifests, revision, ident, meta.namespace, committed_at)
        except ApplyError as e:
            return self._stalled(revision, "ValidationFailed", f"revision {revision[:12]}: {e}")
        result = SyncResult(revision=revision, applied=revision)
        if new_revision:
            problem = self._dry_run(wanted)
            if problem:
                return self._stalled(revision, "ValidationFailed", f"revision {revision[:12]}: {problem}")
        try:
            for _, desired, live in wanted:
                if new_revision or (spec.self_heal and drifted(desired, live)):
                    self.applier.apply(desired)
                    if not new_revision:
                        result.corrected.append(f"{desired['kind']}/{desired['metadata']['name']}")
        except ApplyError as e:
            result.applied = status.get("lastAppliedRevision")
            result.ready = ("False", "ApplyFailed", f"revision {revision[:12]}: {e}")
            return result
        result.inventory = [inventory_entry(d) for _, d, _ in wanted]
        if new_revision and spec.prune:
            result.pruned = self._prune(status.get("inventory") or [], result.inventory, ident)
        result.ready = ("True", "Applied", f"applied revision {spec.branch}@{revision[:12]}")
        result.stalled = ("False", "Applied", "")
        if new_revision:
            result.applied_at = format_time(self.clock())
        if spec.wait:
            self._wait(source, status, wanted, result)
        return result

    @staticmethod
    def _commit_time(clone: Clone, revision: str) -> str | None:
        """When `revision` was committed, for the releases' lead time; a revision is applied without it
        rather than not at all when git cannot say."""
        try:
            return format_time(clone.commit_time(revision))
        except (GitError, ValueError) as e:
            log.warning("commit time of %s not read: %s", revision[:12], e)
            return None

    def _stalled(self, revision: str, reason: str, message: str) -> SyncResult:
        return SyncResult(revision=revision, ready=("False", reason, message), stalled=("True", reason, message))

    def _desired(self, manifests: list[Manifest], revision: str, ident: str, namespace: str,
                 committed_at: str | None = None) -> list[tuple[Manifest, dict[str, Any], dict[str, Any] | None]]:
        """Each manifest as it will be applied, with the live object; FIRST_KINDS first."""
        ordered = sorted(manifests, key=lambda m: m.kind not in FIRST_KINDS)
        declared = {(m.obj["spec"].get("group"), m.obj["spec"].get("names", {}).get("kind"))
                    for m in manifests if m.kind == "CustomResourceDefinition" and isinstance(m.obj.get("spec"), dict)}
        releases = self._releases(manifests)
        targets = release_targets(releases)
        out: list[tuple[Manifest, dict[str, Any], dict[str, Any] | None]] = []
        for m in ordered:
            group = m.api_version.split("/")[0] if "/" in m.api_version else ""
            try:
                namespaced = self.applier.namespaced(m.api_version, m.kind)
            except ApplyError as e:
                if (group, m.kind) in declared:
                    raise ApplyError(f"{m.path}: {m.kind} is defined by a CRD of this revision; apply the "
                                     "CRD in an earlier commit (or another GitSource) first") from None
                raise ApplyError(f"{m.path}: {e}") from None
            ns = (m.namespace or namespace) if namespaced else None
            live = self.applier.get(m.api_version, m.kind, ns, m.name)
            keep = m.kind == "Deployment" and (ns or "", m.name) in targets
            desired = desired_object(m.obj, path=m.path, revision=revision, source=ident, namespace=ns,
                                     live=live, keep_replicas=keep, committed_at=committed_at)
            out.append((m, desired, live))
        return out

    def _releases(self, manifests: list[Manifest]) -> list[Mapping[str, Any]]:
        """Canaries and BlueGreens in the cluster and in this revision (their targets' replicas are theirs)."""
        found: list[Mapping[str, Any]] = [m.obj for m in manifests
                                          if m.kind in ("Canary", "BlueGreen") and m.api_version.startswith(GROUP)]
        for plural in (PLURALS[kind] for kind in RELEASE_KINDS):
            listed = cast(dict[str, Any], self.objects.list_cluster_custom_object(
                GROUP, VERSION, plural, _request_timeout=self.timeout))
            found.extend(listed.get("items") or [])
        return found

    def _dry_run(self, wanted: list[tuple[Manifest, dict[str, Any], dict[str, Any] | None]]) -> str | None:
        """The first problem the API finds with this revision, or None; nothing is stored."""
        namespaces = {d["metadata"]["name"] for _, d, _ in wanted if d["kind"] == "Namespace"}
        for manifest, desired, _ in wanted:
            try:
                self.applier.apply(desired, dry_run=True)
            except ApplyError as e:
                ns = desired["metadata"].get("namespace")
                if ns in namespaces and "not found" in str(e) and ns in str(e):
                    continue  # its namespace is created by this same revision
                return f"{manifest.path}: {desired['kind']} {desired['metadata']['name']!r}: {e}"
        return None

    def _prune(self, before: list[Mapping[str, Any]], now: list[dict[str, str]], ident: str) -> list[str]:
        pruned: list[str] = []
        for entry in to_prune(before, now):
            api_version, kind, name = entry["apiVersion"], entry["kind"], entry["name"]
            try:
                live = self.applier.get(api_version, kind, entry.get("namespace"), name)
                if live is None or not owned_by(live, ident):
                    continue
                self.applier.delete(api_version, kind, entry.get("namespace"), name)
            except (ApplyError, ApiException) as e:
                log.warning("pruning %s/%s failed: %s", kind, name, e)
                continue
            pruned.append(f"{kind}/{name}")
        return pruned

    # -- status and Events --------------------------------------------------------------------------

    def _write(self, obj: Mapping[str, Any], result: SyncResult) -> None:
        before = obj.get("status") or {}
        now = format_time(self.clock())
        status: dict[str, Any] = {"observedGeneration": obj["metadata"].get("generation")}
        if result.revision:
            status["revision"] = result.revision
        if result.applied:
            status["lastAppliedRevision"] = result.applied
        if result.inventory is not None:
            status["inventory"] = result.inventory
        if result.applied_at:
            status["lastAppliedAt"] = result.applied_at
        if result.corrected:
            status["driftCorrections"] = int(before.get("driftCorrections") or 0) + len(result.corrected)
        conditions = {c.get("type"): c for c in before.get("conditions") or []}
        for kind, value in (("Ready", result.ready), ("Stalled", result.stalled), ("Healthy", result.healthy),
                            ("Webhook", result.webhook)):
            if value is None:
                continue
            old = conditions.get(kind) or {}
            state, reason, message = value
            since = old.get("lastTransitionTime") if old.get("status") == state else now
            conditions[kind] = {"type": kind, "status": state, "reason": reason, "message": message,
                                "lastTransitionTime": since or now}
        status["conditions"] = list(conditions.values())
        diff = {k: v for k, v in status.items() if before.get(k) != v}
        if diff:
            meta = obj["metadata"]
            self.objects.patch_namespaced_custom_object_status(
                GROUP, VERSION, meta["namespace"], PLURAL, meta["name"], {"status": diff},
                _request_timeout=self.timeout, _content_type="application/merge-patch+json")
        self._events(obj, before, result)

    def _events(self, obj: Mapping[str, Any], before: Mapping[str, Any], result: SyncResult) -> None:
        old_ready: Mapping[str, Any] = next((c for c in before.get("conditions") or [] if c.get("type") == "Ready"), {})
        state, reason, message = result.ready
        if result.applied and result.applied != before.get("lastAppliedRevision"):
            self.emit(obj, "Applied", message, False)
        elif state == "False" and (old_ready.get("reason"), old_ready.get("message")) != (reason, message):
            # The Warning Event of a failed sync, once per reason and message: the alert goes with it.
            self.emit(obj, reason, message, True)
            if self.alert is not None:
                self.alert(obj, reason, message)
        for what in result.corrected:
            self.emit(obj, "DriftCorrected", f"{what} was changed in the cluster; re-applied from Git", False)
        for what in result.pruned:
            self.emit(obj, "Pruned", f"{what} left Git; deleted", False)

    # -- spec.dependsOn and spec.wait (health-gated, ordered sync), spec.webhook ------------------

    def _webhook_condition(self, source: GitSource) -> tuple[str, str, str] | None:
        """A webhook this operator does not serve is said so, not silently ignored."""
        if source.spec.webhook is None:
            return None
        meta = source.metadata
        if listen_address(self.settings.webhook_addr) is None:
            return ("False", "NotServed", "rollout run has no --webhook-addr: pushes are seen at the interval")
        return ("True", "Served", f"POST /hook/{meta.namespace}/{meta.name} on {self.settings.webhook_addr}")

    def _remember_dependencies(self, namespace: str, name: str, source: GitSource) -> None:
        me = (namespace, name)
        for dependents in self._dependents.values():
            dependents.discard(me)
        for ref in source.spec.depends_on:
            self._dependents.setdefault((ref.namespace or namespace, ref.name), set()).add(me)

    def _wake_dependents(self, namespace: str, name: str) -> None:
        """A source Ready at a revision its dependents may not have seen: they look at once."""
        for dependent in sorted(self._dependents.get((namespace, name), ())):
            self.request(*dependent)

    def _dependencies_waiting(self, source: GitSource) -> list[str]:
        """The dependencies not Ready at their latest revision, each with why (Flux's dependsOn)."""
        out: list[str] = []
        for ref in source.spec.depends_on:
            namespace = ref.namespace or source.metadata.namespace
            what = f"GitSource {namespace}/{ref.name}"
            try:
                dep = cast(dict[str, Any], self.objects.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, ref.name, _request_timeout=self.timeout))
            except ApiException as e:
                if e.status != 404:
                    raise
                out.append(f"{what} (not found)")
                continue
            status = dep.get("status") or {}
            ready: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
            if ready.get("status") != "True":
                why = f"Ready is {ready.get('status', 'Unknown')}: {ready.get('reason', 'not synced yet')}"
                out.append(f"{what} ({why})")
            elif status.get("observedGeneration") != dep["metadata"].get("generation"):
                out.append(f"{what} (its latest spec is not synced yet)")
            elif status.get("revision") != status.get("lastAppliedRevision"):
                out.append(f"{what} (revision {str(status.get('revision'))[:12]} not applied yet)")
        return out

    def health_only(self, obj: Mapping[str, Any], source: GitSource) -> SyncResult | None:
        """While spec.wait waits on the revision it applied less than an interval ago, look at the
        objects of its inventory again without fetching (a webhook or a revert still fetches at once);
        None when a full sync is due."""
        status = obj.get("status") or {}
        ready: Mapping[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
        applied_at = parse_time(status.get("lastAppliedAt"))
        revision = status.get("lastAppliedRevision")
        if not (source.spec.wait and ready.get("reason") == "Progressing" and applied_at is not None
                and revision and status.get("revision") == revision
                and status.get("observedGeneration") == obj["metadata"].get("generation")
                and (self.clock() - applied_at).total_seconds() < source.spec.interval):
            return None
        wanted: list[tuple[Manifest, dict[str, Any], dict[str, Any] | None]] = []
        for entry in status.get("inventory") or []:
            meta = {"name": entry["name"], **({"namespace": entry["namespace"]} if entry.get("namespace") else {})}
            desired = {"apiVersion": entry["apiVersion"], "kind": entry["kind"], "metadata": meta}
            wanted.append((Manifest("", desired), desired, None))
        result = SyncResult(revision=revision, ready=("True", "Applied",
                                                      f"applied revision {source.spec.branch}@{revision[:12]}"))
        self._wait(source, status, wanted, result)
        return result

    def _wait(self, source: GitSource, status: Mapping[str, Any],
              wanted: list[tuple[Manifest, dict[str, Any], dict[str, Any] | None]], result: SyncResult) -> None:
        """spec.wait: Ready only once every applied object is ready; Progressing until then, and
        HealthCheckFailed past spec.timeout (default the interval) or when one failed for good."""
        spec = source.spec
        now = self.clock()
        if not (result.applied_at or status.get("lastAppliedAt")):
            result.applied_at = format_time(now)  # applied before wait was on: the timeout runs from now
        since = parse_time(result.applied_at or status.get("lastAppliedAt")) or now
        targets = release_targets(self._releases([m for m, _, _ in wanted]))
        waiting: list[Unready] = []
        for _, desired, _ in wanted:
            meta = desired["metadata"]
            if desired["kind"] == "Deployment" and (meta.get("namespace") or "", meta["name"]) in targets:
                continue  # its release judges it (and scales it), not the sync
            live = self.applier.get(desired["apiVersion"], desired["kind"], meta.get("namespace"), meta["name"])
            problem = unready(live, kind=desired["kind"], name=key_of(desired)[3])
            if problem is not None:
                waiting.append(problem)
        applied = result.ready[2]
        if not waiting:
            message = f"{applied}; all {len(wanted)} objects ready"
            result.ready = result.healthy = ("True", "Applied", message)
            return
        timeout = spec.timeout if spec.timeout is not None else spec.interval
        waited = (now - since).total_seconds()
        if waited >= timeout or any(u.failed for u in waiting):
            why = "failed" if any(u.failed for u in waiting) else f"timed out after {timeout:g}s"
            message = f"{applied}; {why} waiting for: {summary(waiting)}"
            result.ready = result.healthy = ("False", "HealthCheckFailed", message)
            result.recheck = self.retry
            return
        message = f"{applied}; waiting for: {summary(waiting)}"
        result.ready = result.healthy = ("Unknown", "Progressing", message)
        result.recheck = timedelta(seconds=min(WAIT_POLL, max(timeout - waited, 0.1)))
