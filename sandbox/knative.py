"""A simulated Knative Serving controller: Services make Revisions, Revisions run as Deployments.

Knative Serving (serving.knative.dev/v1) keeps every template a Service is given as an immutable
Revision, runs each Revision as a Deployment named `<revision>-deployment`, and routes the
Service's requests to Revisions by its `spec.traffic`. Releases of a Knative Service (provider
knative, as in Flagger) read exactly that, so the sandbox does it too, with no pods:

- a Service whose template differs from its newest Revision's gets a new Revision
  `<service>-<configuration generation, 5 digits>` (or the template's `metadata.name`, Knative's
  "bring your own revision name"), labelled as Knative labels it and owned by the Service;
- each Revision gets its Deployment (one replica, the template's labels and annotations on its pod
  template, owned by the Revision), which the sandbox's Deployment controller rolls out; the
  Revision is Ready when its Deployment has a ready replica;
- the Service's status says what Knative would: `observedGeneration`, `latestCreatedRevisionName`,
  `latestReadyRevisionName`, the Ready condition, and `traffic`, the spec's split (Knative's
  default of everything to the latest Revision when it states none) with `latestRevision: true`
  resolved to the latest ready Revision, as Knative resolves it. The data plane routes by that.

What is not simulated: Configurations and Routes as objects of their own, tags, scale to zero.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from .resources import ResourceSpec
from .store import ObjectStore

__all__ = ["KnativeController", "resolved_traffic", "revision_deployment_name"]

logger = logging.getLogger(__name__)

GROUP, VERSION = "serving.knative.dev", "v1"
API_VERSION = f"{GROUP}/{VERSION}"
LABEL = f"{GROUP}/"
SERVICE_LABEL = f"{LABEL}service"
CONFIGURATION_LABEL = f"{LABEL}configuration"
GENERATION_LABEL = f"{LABEL}configurationGeneration"
REVISION_LABEL = f"{LABEL}revision"
DEFAULT_TRAFFIC = ({"latestRevision": True, "percent": 100},)


def revision_deployment_name(revision: str) -> str:
    """The Deployment Knative runs a Revision as."""
    return f"{revision}-deployment"


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _user(values: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (values or {}).items() if not str(k).startswith(LABEL)}


def _made_from(revision: Mapping[str, Any], template: Mapping[str, Any]) -> bool:
    """Whether `revision` is what Knative would make of `template` (a Revision is immutable)."""
    meta, tmeta = _meta(revision), template.get("metadata") or {}
    return (revision.get("spec") or {}) == (template.get("spec") or {}) \
        and _user(meta.get("labels")) == _user(tmeta.get("labels")) \
        and _user(meta.get("annotations")) == _user(tmeta.get("annotations")) \
        and (not tmeta.get("name") or tmeta.get("name") == meta.get("name"))


def _generation(revision: Mapping[str, Any]) -> int:
    try:
        return int((_meta(revision).get("labels") or {}).get(GENERATION_LABEL) or 0)
    except ValueError:
        return 0


def _owner(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = _meta(obj)
    return {"apiVersion": obj.get("apiVersion") or API_VERSION, "kind": obj.get("kind"), "name": meta.get("name"),
            "uid": meta.get("uid"), "controller": True, "blockOwnerDeletion": True}


def _ready_condition(ready: bool, reason: str = "", message: str = "") -> dict[str, Any]:
    condition: dict[str, Any] = {"type": "Ready", "status": "True" if ready else "Unknown"}
    if not ready:
        condition.update(reason=reason or "Deploying", message=message)
    return condition


def resolved_traffic(service: Mapping[str, Any], latest_ready: str | None) -> list[dict[str, Any]]:
    """The Service's split as Knative applies it: `latestRevision: true` names the latest ready
    Revision; an empty spec means all to it."""
    out: list[dict[str, Any]] = []
    for target in (service.get("spec") or {}).get("traffic") or DEFAULT_TRAFFIC:
        if not isinstance(target, Mapping):
            continue
        entry = {k: copy.deepcopy(v) for k, v in target.items() if k in ("tag", "percent", "latestRevision")}
        name = latest_ready if target.get("latestRevision") is True else target.get("revisionName")
        if name:
            entry["revisionName"] = name
        entry.setdefault("latestRevision", False)
        out.append(entry)
    return out


class KnativeController:
    """Keeps Knative Services' Revisions, their Deployments and the status of both, as Knative does."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store

    def _spec(self, group: str, plural: str) -> ResourceSpec | None:
        return self._store.lookup(group, "v1", plural)

    async def run(self) -> None:
        while not self._store.stopping.is_set():
            try:
                self.reconcile()
            except Exception:  # keep serving: one odd Service must not stop the controller
                logger.exception("sandbox knative controller failed")
            await self._store.wait_changed(1.0)

    def reconcile(self) -> None:
        services = self._spec(GROUP, "services")
        revisions = self._spec(GROUP, "revisions")
        deployments = self._spec("apps", "deployments")
        if services is None or revisions is None or deployments is None:
            return
        all_revisions = [obj for _, obj in self._store.live_objects(revisions)]
        for _, service in self._store.live_objects(services):
            if _meta(service).get("deletionTimestamp"):
                continue
            meta = _meta(service)
            namespace, name = str(meta.get("namespace")), str(meta.get("name"))
            own = sorted((r for r in all_revisions if _meta(r).get("namespace") == namespace
                          and (_meta(r).get("labels") or {}).get(SERVICE_LABEL) == name), key=_generation)
            try:
                self._reconcile_service(services, revisions, deployments, service, own)
            except Exception:  # one odd Service must not stop the others
                logger.exception("sandbox knative controller failed on %s/%s", namespace, name)

    def _reconcile_service(self, services: ResourceSpec, revisions: ResourceSpec, deployments: ResourceSpec,
                           service: dict[str, Any], own: Sequence[dict[str, Any]]) -> None:
        meta = _meta(service)
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        template = (service.get("spec") or {}).get("template") or {}
        latest = own[-1] if own else None
        if latest is None or not _made_from(latest, template):
            latest = self._create_revision(revisions, service, template, _generation(latest or {}) + 1)
            own = [*own, latest]
        ready: list[str] = []
        for revision in own:
            if self._reconcile_revision(revisions, deployments, revision):
                ready.append(str(_meta(revision).get("name")))
        latest_name = str(_meta(latest).get("name"))
        latest_ready = next((str(_meta(r).get("name")) for r in reversed(own) if _meta(r).get("name") in ready), None)
        status: dict[str, Any] = {
            "observedGeneration": meta.get("generation", 1),
            "latestCreatedRevisionName": latest_name,
            "url": f"http://{name}.{namespace}.svc.cluster.local",
            "address": {"url": f"http://{name}.{namespace}.svc.cluster.local"},
        }
        if latest_ready:
            status["latestReadyRevisionName"] = latest_ready
            status["traffic"] = resolved_traffic(service, latest_ready)
        ok = latest_ready == latest_name
        status["conditions"] = [
            {**_ready_condition(ok, "RevisionMissing", f"Revision {latest_name} is not ready"), "type": t}
            for t in ("ConfigurationsReady", "Ready", "RoutesReady")
        ]
        if status != service.get("status"):
            self._store.update_status(services, namespace, name, status)

    def _create_revision(self, revisions: ResourceSpec, service: Mapping[str, Any], template: Mapping[str, Any],
                         generation: int) -> dict[str, Any]:
        meta, tmeta = _meta(service), template.get("metadata") or {}
        name = str(tmeta.get("name") or f"{meta.get('name')}-{generation:05d}")
        labels = {**(tmeta.get("labels") or {}), SERVICE_LABEL: meta.get("name"),
                  CONFIGURATION_LABEL: meta.get("name"), GENERATION_LABEL: str(generation),
                  f"{LABEL}serviceUID": meta.get("uid")}
        body = {
            "apiVersion": API_VERSION, "kind": "Revision",
            "metadata": {"name": name, "namespace": meta.get("namespace"), "labels": labels,
                         "annotations": dict(tmeta.get("annotations") or {}),
                         "ownerReferences": [_owner(service)]},
            "spec": copy.deepcopy(template.get("spec") or {}),
        }
        logger.info("knative: Revision %s/%s for Service %s", meta.get("namespace"), name, meta.get("name"))
        return self._store.create(revisions, VERSION, str(meta.get("namespace")), body)

    def _reconcile_revision(self, revisions: ResourceSpec, deployments: ResourceSpec,
                            revision: dict[str, Any]) -> bool:
        """Its Deployment made, its status written; whether it is ready."""
        meta = _meta(revision)
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        deployment_name = revision_deployment_name(name)
        deployment = self._store.peek(deployments, namespace, deployment_name)
        if deployment is None:
            labels = {**(meta.get("labels") or {}), REVISION_LABEL: name}
            deployment = self._store.create(deployments, "v1", namespace, {
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": deployment_name, "namespace": namespace, "labels": labels,
                             "ownerReferences": [_owner(revision)]},
                "spec": {"replicas": 1, "selector": {"matchLabels": {REVISION_LABEL: name}},
                         "template": {"metadata": {"labels": labels,
                                                   "annotations": dict(meta.get("annotations") or {})},
                                      "spec": copy.deepcopy(revision.get("spec") or {})}},
            })
        ready = int((deployment.get("status") or {}).get("readyReplicas") or 0) > 0
        status = {"observedGeneration": meta.get("generation", 1),
                  "actualReplicas": int((deployment.get("status") or {}).get("readyReplicas") or 0),
                  "conditions": [{**_ready_condition(ready, "Deploying"), "type": t}
                                 for t in ("ContainerHealthy", "Ready", "ResourcesAvailable")]}
        if status != revision.get("status"):
            self._store.update_status(revisions, namespace, name, status)
        return ready
