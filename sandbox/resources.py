"""The kinds the sandbox serves, and the API rules that differ between them.

A real API server's behaviour differs per kind: which have a `status` subresource,
which count `metadata.generation`, which accept strategic merge patches (built-ins) and
which do not (custom resources). This module holds those facts: built-in kinds are
picked from kmock's bundled discovery data, the traffic providers' kinds are declared
as the custom resources they are on a real cluster, and CustomResourceDefinition
objects (the repository's `crds/` or any created through the API) become served kinds.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kmock
import yaml

__all__ = [
    "AUTOSCALER_KINDS",
    "BUILTIN_KINDS",
    "PROVIDER_KINDS",
    "ResourceSpec",
    "builtin_specs",
    "load_crd_documents",
    "spec_from_crd",
    "version_priority",
]

_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceSpec:
    """One served resource (all its versions share one storage, as on a real server)."""

    group: str
    versions: tuple[str, ...]  # served versions; objects are stored once under `storage_version`
    storage_version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    status: bool = False  # has the /status subresource
    scale: bool = False  # has the /scale subresource
    custom: bool = False  # served from a CRD: no strategic merge patch
    generation: bool = True  # maintains metadata.generation
    generation_on_annotations: bool = False  # Deployments: annotation changes bump generation too
    verbs: frozenset[str] = field(default=frozenset(_VERBS))

    @property
    def storage_key(self) -> kmock.resource:
        return kmock.resource(self.group, self.storage_version, self.plural)

    @property
    def group_resource(self) -> str:
        """`deployments.apps`, `services`: the name the API uses in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def preferred_version(self) -> str:
        return sorted(self.versions, key=version_priority)[0]

    def api_version(self, version: str | None = None) -> str:
        version = version or self.preferred_version
        return f"{self.group}/{version}" if self.group else version

    def info(self) -> kmock.ResourceInfo:
        subresources = {name for name, on in (("status", self.status), ("scale", self.scale)) if on}
        return kmock.ResourceInfo(
            namespaced=self.namespaced,
            kind=self.kind,
            singular=self.singular or self.kind.lower(),
            verbs=set(self.verbs),
            shortnames=set(self.short_names),
            categories=set(self.categories),
            subresources=subresources,
        )


_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key of Kubernetes version priority: v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > others."""
    m = _VERSION_RE.match(version)
    if not m:
        return (3, 0, 0, version)
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    return (stage, -int(m.group(1)), -int(m.group(3) or 0), version)


# (group, version, plural) -> (generation?, generation on annotation changes?)
BUILTIN_KINDS: dict[tuple[str, str, str], tuple[bool, bool]] = {
    ("", "v1", "namespaces"): (False, False),
    ("", "v1", "configmaps"): (False, False),
    ("", "v1", "secrets"): (False, False),
    ("", "v1", "services"): (False, False),
    ("", "v1", "serviceaccounts"): (False, False),
    ("", "v1", "endpoints"): (False, False),
    ("", "v1", "events"): (False, False),
    ("", "v1", "pods"): (False, False),
    ("apps", "v1", "deployments"): (True, True),
    ("apps", "v1", "replicasets"): (True, False),
    ("apps", "v1", "statefulsets"): (True, False),
    ("apps", "v1", "daemonsets"): (True, False),
    ("autoscaling", "v2", "horizontalpodautoscalers"): (True, False),
    ("coordination.k8s.io", "v1", "leases"): (False, False),
    ("events.k8s.io", "v1", "events"): (False, False),
    ("networking.k8s.io", "v1", "ingresses"): (True, False),
    ("networking.k8s.io", "v1", "ingressclasses"): (True, False),
    ("apiextensions.k8s.io", "v1", "customresourcedefinitions"): (True, False),
}


def builtin_specs() -> list[ResourceSpec]:
    """The built-in kinds the sandbox serves, described by kmock's bundled discovery data."""
    bundled = kmock.ResourcesArray()
    with warnings.catch_warnings():  # kmock 0.8 reads its data with a deprecated importlib call
        warnings.simplefilter("ignore", DeprecationWarning)
        bundled.load_bundled()
    specs: list[ResourceSpec] = []
    for (group, version, plural), (generation, on_annotations) in BUILTIN_KINDS.items():
        info = bundled[kmock.resource(group, version, plural)]
        specs.append(
            ResourceSpec(
                group=group,
                versions=(version,),
                storage_version=version,
                plural=plural,
                kind=info.kind or plural.capitalize(),
                namespaced=bool(info.namespaced),
                singular=info.singular or "",
                short_names=frozenset(info.shortnames),
                categories=frozenset(info.categories),
                status="status" in info.subresources,
                scale="scale" in info.subresources,
                custom=False,
                generation=generation,
                generation_on_annotations=on_annotations,
                verbs=frozenset(info.verbs) or frozenset(_VERBS),
            )
        )
    return specs


def _provider(
    group: str, versions: tuple[str, ...], storage: str, plural: str, kind: str, *, status: bool,
    namespaced: bool = True,
) -> ResourceSpec:
    return ResourceSpec(
        group=group,
        versions=versions,
        storage_version=storage,
        plural=plural,
        kind=kind,
        namespaced=namespaced,
        singular=kind.lower(),
        status=status,
        custom=True,
    )


# The traffic providers' kinds, which a real cluster gets from their projects' CRDs.
PROVIDER_KINDS: tuple[ResourceSpec, ...] = (
    _provider("gateway.networking.k8s.io", ("v1", "v1beta1"), "v1", "httproutes", "HTTPRoute", status=True),
    _provider("gateway.networking.k8s.io", ("v1", "v1beta1"), "v1", "gateways", "Gateway", status=True),
    _provider(
        "networking.istio.io",
        ("v1", "v1beta1", "v1alpha3"),
        "v1",
        "virtualservices",
        "VirtualService",
        status=True,
    ),
    _provider(
        "networking.istio.io",
        ("v1", "v1beta1", "v1alpha3"),
        "v1",
        "destinationrules",
        "DestinationRule",
        status=True,
    ),
    _provider(
        "policy.linkerd.io", ("v1beta2", "v1beta3"), "v1beta2", "httproutes", "HTTPRoute", status=True,
    ),
    _provider(
        "split.smi-spec.io",
        ("v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"),
        "v1alpha2",
        "trafficsplits",
        "TrafficSplit",
        status=False,
    ),
    # Kuma's TrafficRoute is cluster-scoped (its `mesh` is a top-level field, as on Kuma's CRD).
    _provider("kuma.io", ("v1alpha1",), "v1alpha1", "trafficroutes", "TrafficRoute", status=False, namespaced=False),
    _provider("appmesh.k8s.aws", ("v1beta2",), "v1beta2", "virtualnodes", "VirtualNode", status=True),
    _provider("appmesh.k8s.aws", ("v1beta2",), "v1beta2", "virtualrouters", "VirtualRouter", status=True),
    _provider("appmesh.k8s.aws", ("v1beta2",), "v1beta2", "virtualservices", "VirtualService", status=True),
    # Knative Serving: the Service a knative release targets and the Revisions Knative makes of it.
    _provider("serving.knative.dev", ("v1",), "v1", "services", "Service", status=True),
    _provider("serving.knative.dev", ("v1",), "v1", "revisions", "Revision", status=True),
    _provider("traefik.io", ("v1alpha1",), "v1alpha1", "ingressroutes", "IngressRoute", status=False),
    _provider("traefik.io", ("v1alpha1",), "v1alpha1", "traefikservices", "TraefikService", status=False),
    _provider("apisix.apache.org", ("v2",), "v2", "apisixroutes", "ApisixRoute", status=True),
)
# Contour's HTTPProxy, and Gloo Edge's RouteTable and VirtualService (gateway.solo.io) and Upstream.
PROVIDER_KINDS += (
    _provider("projectcontour.io", ("v1",), "v1", "httpproxies", "HTTPProxy", status=True),
    _provider("gateway.solo.io", ("v1",), "v1", "routetables", "RouteTable", status=True),
    _provider("gateway.solo.io", ("v1",), "v1", "virtualservices", "VirtualService", status=True),
    _provider("gloo.solo.io", ("v1",), "v1", "upstreams", "Upstream", status=True),
)


# KEDA's ScaledObject, which a real cluster gets from KEDA's CRD (keda.sh/v1alpha1, with /status).
AUTOSCALER_KINDS: tuple[ResourceSpec, ...] = (
    _provider("keda.sh", ("v1alpha1",), "v1alpha1", "scaledobjects", "ScaledObject", status=True),
)


def spec_from_crd(crd: Mapping[str, Any]) -> ResourceSpec:
    """The served resource that a CustomResourceDefinition object declares."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    versions = [v for v in spec.get("versions") or [] if v.get("served", True)]
    if not spec.get("group") or not names.get("plural") or not names.get("kind") or not versions:
        raise ValueError(
            "a CustomResourceDefinition needs spec.group, spec.names.plural/kind and a served version"
        )
    storage = next((v for v in versions if v.get("storage")), versions[0])
    return ResourceSpec(
        group=spec["group"],
        versions=tuple(v["name"] for v in versions),
        storage_version=storage["name"],
        plural=names["plural"],
        kind=names["kind"],
        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        singular=names.get("singular") or names["kind"].lower(),
        short_names=frozenset(names.get("shortNames") or ()),
        categories=frozenset(names.get("categories") or ()),
        status="status" in (storage.get("subresources") or {}),
        scale="scale" in (storage.get("subresources") or {}),
        custom=True,
    )


def load_crd_documents(paths: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """CustomResourceDefinition documents from YAML files (other documents are skipped)."""
    for path in sorted(paths):
        with path.open(encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    yield doc
