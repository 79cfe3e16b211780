"""Knative router: the Knative Service's own `spec.traffic` splits requests between two Revisions.

Flagger's model (pkg/router/knative.go, pkg/canary/knative_controller.go): the release's target is
a Knative Service (serving.knative.dev/v1). Knative makes a Revision of every template it is given,
so nothing is cloned: the primary is the Revision last promoted, recorded in the Service's
annotation `flagger.app/primary-revision` (the workloads module writes it at initialization and on
promotion), and the canary is whatever Revision Knative created last. The split is

    spec:
      traffic:
      - latestRevision: true
        percent: <canary>
      - revisionName: <primary revision>
        percent: <primary>

Knative routes by header only through tags, which Flagger does not use, and neither mirrors nor
pins sessions: A/B testing (`analysis.match`), mirroring and session affinity are refused
(validation refuses them first). The Service is the user's (applied from Git): the router changes
only its `spec.traffic`, owns nothing, and creates nothing. Weights are read back from
`spec.traffic`, as every router reads its own object (Flagger's GetRoutes reads `status.traffic`,
which lags a write until Knative has reconciled it).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from kubernetes import client

from rollout.api.kinds import (
    KNATIVE_API_VERSION,
    KNATIVE_PRIMARY_REVISION_ANNOTATION,
    KNATIVE_SERVICE,
    KNATIVE_SERVICES,
)
from rollout.api.spec import Release
from rollout.routers.base import PLAIN, Extras, RouterError, refuse_extras
from rollout.routers.objects import Kind, Obj, Objects, check_weights, weight_pair
from rollout.settings import Settings

KNATIVE_SERVICE_KIND = Kind(KNATIVE_API_VERSION, KNATIVE_SERVICE, KNATIVE_SERVICES)
PRIMARY_REVISION_ANNOTATION = KNATIVE_PRIMARY_REVISION_ANNOTATION


def primary_revision(service: Mapping[str, Any]) -> str | None:
    """The Revision the primary is, as the Service's annotation records it; None before initialization."""
    value = ((service.get("metadata") or {}).get("annotations") or {}).get(PRIMARY_REVISION_ANNOTATION)
    return value if isinstance(value, str) and value else None


def desired_traffic(primary_name: str, primary: int, canary: int, match: bool = False,
                    extras: Extras = PLAIN) -> list[Obj]:
    """The Service's `spec.traffic` for these weights: the latest Revision (the canary) first, then
    the primary Revision by name, as Flagger writes them."""
    refuse_extras("knative", extras)
    if match:
        raise RouterError("the knative provider cannot route by header or cookie; A/B testing (analysis.match) "
                          "needs the istio, gatewayapi, nginx or linkerd provider", temporary=False)
    check_weights(primary, canary)
    return [{"latestRevision": True, "percent": canary}, {"revisionName": primary_name, "percent": primary}]


def desired_service(service: Mapping[str, Any], primary: int, canary: int, match: bool = False,
                    extras: Extras = PLAIN) -> Obj | None:
    """`service` (the live Knative Service) carrying the split; None when it already does."""
    name = primary_revision(service)
    if name is None:
        meta = service.get("metadata") or {}
        raise RouterError(f"Knative Service {meta.get('namespace')}/{meta.get('name')} has no "
                          f"{PRIMARY_REVISION_ANNOTATION} annotation yet (initialization records it)")
    traffic = desired_traffic(name, primary, canary, match, extras)
    if (service.get("spec") or {}).get("traffic") == traffic:
        return None
    new = copy.deepcopy(dict(service))
    new.pop("status", None)
    new.setdefault("spec", {})["traffic"] = traffic
    return new


def weights_of(service: Mapping[str, Any]) -> tuple[int, int] | None:
    """(primary, canary) percents of the Service's `spec.traffic`: the canary is the entry following
    the latest Revision, the primary the entry naming the primary Revision (Flagger's GetRoutes)."""
    name = primary_revision(service)
    traffic = [t for t in (service.get("spec") or {}).get("traffic") or [] if isinstance(t, Mapping)]
    latest = next((t for t in traffic if t.get("latestRevision") is True), None)
    primary = next((t for t in traffic if t.get("revisionName") == name and t.get("latestRevision") is not True),
                   None)
    if name is None or latest is None or primary is None:
        return None
    return weight_pair(primary.get("percent", 0), latest.get("percent", 0))


def is_matched(service: Mapping[str, Any]) -> bool:
    return False


class KnativeRouter:
    """Traffic split by the Knative Service's `spec.traffic`."""

    def __init__(self, api: client.ApiClient, settings: Settings) -> None:
        self.objects = Objects(api, settings.api_timeout)

    @staticmethod
    def _where(release: Release) -> tuple[str, str]:
        return release.metadata.namespace, release.spec.target_ref.name

    def _write(self, release: Release, primary: int, canary: int, match: bool = False, extras: Extras = PLAIN,
               *, only_unknown: bool = False, required: bool = True) -> None:
        namespace, name = self._where(release)

        def build(live: Obj | None) -> Obj | None:
            if live is None:
                raise RouterError(f"Knative Service {namespace}/{name} not found")
            if only_unknown and weights_of(live) is not None:
                return None  # an existing split keeps its weights
            if not required and primary_revision(live) is None:
                return None
            return desired_service(live, primary, canary, match, extras)

        self.objects.apply(KNATIVE_SERVICE_KIND, namespace, name, build, create=required)

    def reconcile(self, release: Release) -> None:
        self._write(release, 100, 0, only_unknown=True)

    def set_weight(self, release: Release, primary: int, canary: int, match: bool = False, *,
                   mirror: bool = False, cookie: str = "") -> None:
        desired_traffic("", primary, canary, match, Extras(mirror, cookie))  # refuse before any read
        self._write(release, primary, canary, match, Extras(mirror, cookie))

    def verify_weight(self, release: Release) -> tuple[int, int] | None:
        live = self.objects.get(KNATIVE_SERVICE_KIND, *self._where(release))
        return None if live is None else weights_of(live)

    def finalize(self, release: Release) -> None:
        self._write(release, 100, 0, required=False)
