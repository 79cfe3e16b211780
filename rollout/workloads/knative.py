"""A Knative Service as a release's target: the primary is a Revision, not a clone.

Flagger's KnativeController (pkg/canary/knative_controller.go), which this follows:

- Knative keeps every template it is given as a Revision and reports the newest one in
  `status.latestCreatedRevisionName`; that Revision is the canary. Nothing is cloned and nothing is
  scaled: Knative's autoscaler scales each Revision by the traffic it gets (Flagger's ScaleToZero
  and ScaleFromZero do nothing either);
- the primary is the Revision named by the Service's annotation `flagger.app/primary-revision`,
  set to the latest created Revision at initialization and on promotion. The router
  (`rollout.routers.knative`) splits the Service's `spec.traffic` between the two.

What the planner compares: Flagger uses the latest Revision's name as the spec, so a revert in Git
(which makes Knative create yet another Revision of the old template) would start a new release.
Here the hash is that of the template a Revision runs (`pod_template_hash` of its labels,
annotations and spec, without the `serving.knative.dev/` bookkeeping Knative adds), so the
Service's template and a Revision made from it hash equal, and a template back at the primary's is
recognised as the promoted spec. The target is ready once Knative created the Revision of its
current template and reports it Ready. The Git revision of the promoted template is recorded in
the annotation `rollout.gitops.dev/promoted-revision`, which the revert writer needs.

Deleting the release with nothing in flight hands the Service back to Knative's default (all
traffic to the latest Revision); with a release in flight (or failed) the traffic stays pinned on
the primary Revision. Either way the annotations are removed.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rollout.api.annotations import ANNOTATION_DOMAIN
from rollout.api.kinds import (
    KNATIVE_GROUP,
    KNATIVE_PRIMARY_REVISION_ANNOTATION,
    KNATIVE_REVISIONS,
    KNATIVE_SERVICES,
    KNATIVE_VERSION,
    is_knative_service,
)
from rollout.api.spec import Release
from rollout.core import Workload
from rollout.settings import Settings

from .errors import NotReady, TargetMissing, WorkloadError
from .hashing import committed_at_of, pod_template_hash, revision_of

Json = dict[str, Any]

log = logging.getLogger(__name__)

PROMOTED_REVISION_ANNOTATION = f"{ANNOTATION_DOMAIN}/promoted-revision"
_KNATIVE_PREFIX = "serving.knative.dev/"
# Knative's default split when a Service states none: everything to the latest Revision.
DEFAULT_TRAFFIC = [{"latestRevision": True, "percent": 100}]


def is_knative(release: Release) -> bool:
    ref = release.spec.target_ref
    return is_knative_service(ref.api_version, ref.kind)


def _user(values: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (values or {}).items() if not str(k).startswith(_KNATIVE_PREFIX)}


def _template_hash(metadata: Mapping[str, Any], spec: Mapping[str, Any]) -> str:
    return pod_template_hash({"metadata": {"labels": _user(metadata.get("labels")),
                                           "annotations": _user(metadata.get("annotations"))},
                              "spec": dict(spec)})


def service_hash(service: Mapping[str, Any]) -> str:
    """The hash of the template the Service asks for now."""
    template = (service.get("spec") or {}).get("template") or {}
    return _template_hash(template.get("metadata") or {}, template.get("spec") or {})


def revision_hash(revision: Mapping[str, Any]) -> str:
    """The hash of the template a Revision runs (equal to the Service's it was made from)."""
    return _template_hash(revision.get("metadata") or {}, revision.get("spec") or {})


def revision_ready(revision: Mapping[str, Any] | None) -> bool:
    """Knative's Revision IsReady: its Ready condition is True (for its current generation)."""
    if revision is None:
        return False
    status = revision.get("status") or {}
    meta = revision.get("metadata") or {}
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def latest_revision_name(service: Mapping[str, Any]) -> str | None:
    value = (service.get("status") or {}).get("latestCreatedRevisionName")
    return value if isinstance(value, str) and value else None


def primary_revision_name(service: Mapping[str, Any]) -> str | None:
    value = ((service.get("metadata") or {}).get("annotations") or {}).get(KNATIVE_PRIMARY_REVISION_ANNOTATION)
    return value if isinstance(value, str) and value else None


def target_of(service: Mapping[str, Any] | None, latest: Mapping[str, Any] | None) -> Workload:
    """What the planner sees of the target: the Service's template, ready once its Revision is."""
    if service is None:
        return Workload(exists=False, spec_hash=None, ready=False, revision=None)
    wanted = service_hash(service)
    ready = latest is not None and revision_hash(latest) == wanted and revision_ready(latest)
    return Workload(exists=True, spec_hash=wanted, ready=ready, revision=revision_of(service),
                    committed_at=committed_at_of(service))


def primary_of(service: Mapping[str, Any] | None, primary: Mapping[str, Any] | None) -> Workload:
    """What the planner sees of the primary: the promoted Revision, with the Git revision recorded for it."""
    if service is None or primary is None:
        return Workload(exists=False, spec_hash=None, ready=False, revision=None)
    recorded = ((service.get("metadata") or {}).get("annotations") or {}).get(PROMOTED_REVISION_ANNOTATION)
    return Workload(exists=True, spec_hash=revision_hash(primary), ready=revision_ready(primary),
                    revision=recorded if isinstance(recorded, str) and recorded else None)


def promoted_service(service: Mapping[str, Any], revision: str) -> Json | None:
    """The Service with `revision` recorded as its primary (and the Git revision it came from);
    None when it is already."""
    new: Json = copy.deepcopy(dict(service))
    new.pop("status", None)
    annotations = new.setdefault("metadata", {}).setdefault("annotations", {})
    annotations[KNATIVE_PRIMARY_REVISION_ANNOTATION] = revision
    git = revision_of(service)
    if git:
        annotations[PROMOTED_REVISION_ANNOTATION] = git
    else:
        annotations.pop(PROMOTED_REVISION_ANNOTATION, None)
    before = (service.get("metadata") or {}).get("annotations") or {}
    return None if annotations == before else new


def released_service(service: Mapping[str, Any], *, in_flight: bool) -> Json | None:
    """The Service given back when its release is deleted: without our annotations, and (nothing in
    flight) on Knative's default split; None when there is nothing to change."""
    new: Json = copy.deepcopy(dict(service))
    new.pop("status", None)
    annotations = new.setdefault("metadata", {}).get("annotations") or {}
    for key in (KNATIVE_PRIMARY_REVISION_ANNOTATION, PROMOTED_REVISION_ANNOTATION):
        annotations.pop(key, None)
    new["metadata"]["annotations"] = annotations
    if not in_flight:
        new.setdefault("spec", {})["traffic"] = copy.deepcopy(DEFAULT_TRAFFIC)
    old = {k: v for k, v in service.items() if k != "status"}
    same = new.get("spec") == old.get("spec") and annotations == ((old.get("metadata") or {}).get("annotations") or {})
    return None if same else new


class KnativeServices:
    """The target Knative Service and its Revisions, in one cluster (the `Workloads` ports for it)."""

    def __init__(self, api: client.ApiClient, settings: Settings) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.timeout = settings.api_timeout
        self.conflict_retries = settings.conflict_retries

    def _get(self, plural: str, namespace: str, name: str) -> Json | None:
        try:
            obj = cast(Json, self.custom.get_namespaced_custom_object(
                KNATIVE_GROUP, KNATIVE_VERSION, namespace, plural, name, _request_timeout=self.timeout))
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return obj

    def service(self, namespace: str, name: str) -> Json | None:
        return self._get(KNATIVE_SERVICES, namespace, name)

    def revision(self, namespace: str, name: str | None) -> Json | None:
        return self._get(KNATIVE_REVISIONS, namespace, name) if name else None

    def _target(self, release: Release) -> Json:
        namespace, name = release.metadata.namespace, release.spec.target_ref.name
        service = self.service(namespace, name)
        if service is None:
            raise TargetMissing(namespace, name, "Knative Service")
        return service

    def routes(self, release: Release) -> dict[str, str]:
        """The Revision each arm's metrics are labelled with: the canary is the latest created one
        (Flagger's `{{ route }}`), the primary the one the annotation names."""
        service = self.service(release.metadata.namespace, release.spec.target_ref.name)
        if service is None:
            return {}
        found = {"canary": latest_revision_name(service), "primary": primary_revision_name(service)}
        return {arm: name for arm, name in found.items() if name}

    # -- the ports the engine calls --------------------------------------------------------------

    def observe(self, release: Release) -> tuple[Workload, Workload]:
        namespace = release.metadata.namespace
        service = self.service(namespace, release.spec.target_ref.name)
        if service is None:
            return target_of(None, None), primary_of(None, None)
        latest = self.revision(namespace, latest_revision_name(service))
        primary = self.revision(namespace, primary_revision_name(service))
        return target_of(service, latest), primary_of(service, primary)

    def initialize(self, release: Release) -> None:
        """Record the latest Revision as the primary, once Knative made it from the current template
        (an existing record is left as it is: promotion changes it, not initialization)."""
        self._record_latest(release, initializing=True)

    def scale_target(self, release: Release, up: bool) -> None:
        """Nothing to do: Knative scales each Revision by the traffic it gets."""

    def promote(self, release: Release) -> None:
        """Make the latest Revision the primary (once it is the Revision of the current template)."""
        self._record_latest(release, initializing=False)

    def _record_latest(self, release: Release, *, initializing: bool) -> None:
        namespace, name = release.metadata.namespace, release.spec.target_ref.name
        for _ in range(self.conflict_retries):
            service = self._target(release)
            recorded = primary_revision_name(service)
            if initializing and recorded is not None and self.revision(namespace, recorded) is not None:
                return  # a primary Revision that is gone (deleted by hand) is recorded anew
            latest_name = latest_revision_name(service)
            latest = self.revision(namespace, latest_name)
            if latest is None or latest_name is None or revision_hash(latest) != service_hash(service):
                raise NotReady(f"waiting for Knative to create the Revision of {namespace}/{name}'s template")
            new = promoted_service(service, latest_name)
            if new is None:
                return
            if self._replace(namespace, name, new):
                log.info("Knative Service %s/%s: primary Revision %s", namespace, name, latest_name)
                return
        raise WorkloadError(f"Knative Service {namespace}/{name} kept changing; will retry")

    def finalize(self, release: Release) -> None:
        """Give the Service back (see the module docstring)."""
        namespace, name = release.metadata.namespace, release.spec.target_ref.name
        for _ in range(self.conflict_retries):
            service = self.service(namespace, name)
            if service is None:
                return
            target, primary = self.observe(release)
            in_flight = primary.exists and target.spec_hash != primary.spec_hash
            new = released_service(service, in_flight=in_flight)
            if new is None or self._replace(namespace, name, new):
                return
        raise WorkloadError(f"Knative Service {namespace}/{name} kept changing; will retry")

    def _replace(self, namespace: str, name: str, body: Json) -> bool:
        """Replace (the body carries the resourceVersion it was read at); False on a conflict."""
        try:
            self.custom.replace_namespaced_custom_object(KNATIVE_GROUP, KNATIVE_VERSION, namespace, KNATIVE_SERVICES,
                                                         name, body, _request_timeout=self.timeout)
        except ApiException as e:
            if e.status == 409:
                return False
            raise
        return True
